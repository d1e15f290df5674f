"""A plain folder of audio: mixed rates and formats, sibling texts, metadata.csv, faults."""

from pathlib import Path

import pytest
from lhotse import CutSet

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from tests.helpers import (
    assert_reported,
    make_unreadable,
    plant_empty,
    plant_garbage,
    plant_truncated,
    write_audio,
)


def test_folder_with_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    written = make_folder(src, 9)  # wav/flac/ogg at 16k/22.05k/44.1k; even ones have .txt
    mp3 = src / "extra" / "song.mp3"
    mp3_frames = write_audio(mp3, 1.0, 22050)
    (src / "extra" / "song.lab").write_text("label text")
    lj = src / "LJSpeech-1.1"
    lj_frames = [write_audio(lj / "wavs" / f"LJ001-000{i}.wav", 0.6, 22050) for i in (1, 2)]
    (lj / "metadata.csv").write_text(
        "LJ001-0001|Printing, 1st|Printing, first\nLJ001-0002|In being|\nLJ001-0009|gone|gone\n"
    )
    (src / "README.md").write_text("not audio")
    (src / "spk0" / "cover.png").write_bytes(b"\x89PNG")
    empty = plant_empty(src / "bad" / "empty.wav")
    truncated = plant_truncated(src / "bad" / "cut.flac", 16000)
    garbage = plant_garbage(src / "bad" / "noise.ogg")
    stereo = src / "bad" / "stereo.wav"
    stereo_frames = write_audio(stereo, 1.0, 44100, channels=2)
    orphan = src / "bad" / "lonely.txt"
    orphan.write_text("transcript without audio")
    hidden = src / "locked"
    write_audio(hidden / "x.wav", 0.5, 16000)
    make_unreadable(hidden, monkeypatch)

    report = prepare("folder", src, tmp_path / "out").to_dict()
    split = report["splits"]["all"]
    assert (split["recordings"], split["supervisions"], split["cuts"]) == (13, 13, 13)
    assert split["without_text"] == 4 + 1  # odd clips of make_folder, and stereo.wav
    assert report["ignored"]["non_audio"] == 2
    good = (
        sum(w.duration for w in written)
        + mp3_frames / 22050
        + sum(lj_frames) / 22050
        + stereo_frames / 44100
    )
    assert split["seconds"] == pytest.approx(good, rel=0.01)

    assert_reported(
        report,
        {
            empty: "empty",
            truncated: "truncated",
            garbage: "unreadable audio header",
            orphan: "without audio",
            f"{lj / 'metadata.csv'}:LJ001-0009": "without audio",
            hidden: "unreadable directory",
            stereo: "2 channels",
        },
    )
    assert report["num_skipped"] == 6

    cuts = CutSet.from_file(tmp_path / "out" / "src_cuts_all.jsonl.gz").to_eager()
    assert cuts["src-extra-song"].supervisions[0].text == "label text"
    assert cuts["src-LJSpeech-1_1-wavs-LJ001-0001"].supervisions[0].text == "Printing, first"
    assert cuts["src-LJSpeech-1_1-wavs-LJ001-0002"].supervisions[0].text == "In being"
    rates = {c.recording.sampling_rate for c in cuts}
    assert {16000, 22050, 44100} <= rates
    assert cuts[written[0].id].supervisions[0].text == written[0].text


def test_same_stem_different_extension_keeps_both(tmp_path: Path) -> None:
    write_audio(tmp_path / "src" / "a.wav", 0.5, 16000)
    write_audio(tmp_path / "src" / "a.flac", 0.5, 16000)
    prepare("folder", tmp_path / "src", tmp_path / "out")
    cuts = CutSet.from_file(tmp_path / "out" / "src_cuts_all.jsonl.gz")
    assert sorted(c.id for c in cuts) == ["src-a_flac", "src-a_wav"]


def test_verify_decodes_everything(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_audio(src / "ok.flac", 0.5, 16000)
    plant_truncated(src / "cut.flac", 16000, seconds=2.0)
    report = prepare("folder", src, tmp_path / "out", verify=True)
    assert [Path(f.path).name for f in report.skipped] == ["cut.flac"]


def test_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.md").write_text("x")
    with pytest.raises(UserError, match="holds no audio"):
        prepare("folder", tmp_path / "src", tmp_path / "out")

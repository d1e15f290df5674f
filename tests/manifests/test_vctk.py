"""VCTK 0.92 (FLAC, two mics) and 0.80 (WAV): mic choice, speaker info, faults."""

from pathlib import Path

import pytest
from lhotse import CutSet

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_vctk
from tests.helpers import (
    assert_reported,
    make_unreadable,
    plant_empty,
    plant_garbage,
    plant_truncated,
    write_audio,
)


def test_vctk_092_with_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "VCTK-Corpus-0.92"
    written = make_vctk(root, speakers=2, utterances=3)
    audio = root / "wav48_silence_trimmed"
    empty = plant_empty(audio / "p225" / "p225_010_mic1.flac")
    truncated = plant_truncated(audio / "p225" / "p225_011_mic1.flac", 48000)
    garbage = plant_garbage(audio / "p226" / "p226_012_mic1.flac")
    stereo = audio / "p226" / "p226_013_mic1.flac"
    stereo_frames = write_audio(stereo, 1.0, 48000, channels=2)
    (root / "txt" / "p226" / "p226_013.txt").write_text("Stereo.\n")
    no_text = audio / "p315" / "p315_001_mic1.flac"  # p315 has no transcripts in 0.92
    no_text_frames = write_audio(no_text, 0.7, 48000)
    orphan = root / "txt" / "p225" / "p225_099.txt"
    orphan.write_text("No audio for this.\n")
    hidden = audio / "p227"
    write_audio(hidden / "p227_001_mic1.flac", 0.5, 48000)
    make_unreadable(hidden, monkeypatch)

    report = prepare("vctk", tmp_path, tmp_path / "out").to_dict()
    split = report["splits"]["all"]
    assert (split["recordings"], split["supervisions"], split["cuts"]) == (8, 8, 8)
    assert split["without_text"] == 1
    assert report["ignored"]["other_microphone"] == 6
    good = sum(w.duration for w in written) + (stereo_frames + no_text_frames) / 48000
    assert split["seconds"] == pytest.approx(good, rel=0.01)

    assert_reported(
        report,
        {
            empty: "empty",
            truncated: "truncated",
            garbage: "unreadable audio header",
            orphan: "no audio",
            hidden: "unreadable directory",
            stereo: "2 channels",
            no_text: "no transcript",
        },
    )
    assert report["num_skipped"] == 5

    cuts = CutSet.from_file(tmp_path / "out" / "vctk_cuts_all.jsonl.gz").to_eager()
    first = cuts[written[0].id]
    assert first.supervisions[0].text == written[0].text
    assert first.supervisions[0].gender == "F"
    assert first.supervisions[0].custom["accent"] == "English"
    assert first.custom["corpus"] == "vctk"


def test_vctk_mic2(tmp_path: Path) -> None:
    make_vctk(tmp_path / "VCTK", speakers=1, utterances=2)
    report = prepare("vctk", tmp_path / "VCTK", tmp_path / "out", mic="mic2")
    cuts = CutSet.from_file(tmp_path / "out" / "vctk_cuts_all.jsonl.gz")
    assert sorted(c.id for c in cuts) == ["p225_001_mic2", "p225_002_mic2"]
    assert report.ignored["other_microphone"] == 2
    with pytest.raises(UserError, match="--mic"):
        prepare("vctk", tmp_path / "VCTK", tmp_path / "out", mic="mic3")
    with pytest.raises(UserError, match="--mic does not apply to corpus 'folder'"):
        prepare("folder", tmp_path / "VCTK", tmp_path / "out", mic="mic2")


def test_vctk_080_layout(tmp_path: Path) -> None:
    written = make_vctk(tmp_path / "VCTK-Corpus", speakers=2, utterances=2, layout="0.80")
    prepare("vctk", tmp_path, tmp_path / "out")
    cuts = CutSet.from_file(tmp_path / "out" / "vctk_cuts_all.jsonl.gz").to_eager()
    assert sorted(c.id for c in cuts) == sorted(w.id for w in written)
    # speaker-info.txt of 0.80 says "225", the folders "p225"
    assert cuts["p225_001"].supervisions[0].gender == "F"
    assert cuts["p226_001"].supervisions[0].gender == "M"


def test_not_a_vctk_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a VCTK directory"):
        prepare("vctk", tmp_path, tmp_path / "out")

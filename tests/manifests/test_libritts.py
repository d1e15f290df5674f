"""LibriTTS: parts present are inferred, faults are reported, metadata is carried."""

import json
from pathlib import Path

import pytest
from lhotse import CutSet, load_manifest

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_libritts
from tests.helpers import (
    assert_reported,
    make_unreadable,
    plant_empty,
    plant_garbage,
    plant_truncated,
    write_audio,
)


@pytest.fixture
def libritts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "LibriTTS"
    written = make_libritts(root, {"dev-clean": 6, "test-clean": 4})
    chapter = root / "dev-clean" / "100" / "5000"
    planted = {}
    for name, make in (
        ("empty", lambda p: plant_empty(p)),
        ("truncated", lambda p: plant_truncated(p, 24000)),
        ("garbage", lambda p: plant_garbage(p)),
    ):
        utt = f"100_5000_0000{90 + len(planted)}_000000"
        planted[name] = make(chapter / f"{utt}.wav")
        (chapter / f"{utt}.normalized.txt").write_text("text of a broken file")
    stereo = chapter / "100_5000_000095_000000.wav"
    stereo_frames = write_audio(stereo, 1.2, 24000, channels=2)
    (chapter / "100_5000_000095_000000.normalized.txt").write_text("A stereo file.")
    no_text = chapter / "100_5000_000096_000000.wav"
    no_text_frames = write_audio(no_text, 0.8, 24000)
    orphan = chapter / "100_5000_000097_000000.normalized.txt"
    orphan.write_text("Text without audio.")
    hidden = root / "dev-clean" / "100" / "5999"
    write_audio(hidden / "100_5999_000000_000000.wav", 0.5, 24000)
    make_unreadable(hidden, monkeypatch)
    good_seconds = sum(w.duration for w in written) + (stereo_frames + no_text_frames) / 24000
    return {
        "root": tmp_path,
        "written": written,
        "planted": planted,
        "stereo": stereo,
        "no_text": no_text,
        "orphan": orphan,
        "hidden": hidden,
        "good_seconds": good_seconds,
    }


def test_counts_durations_and_every_fault_reported(libritts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = prepare("libritts", libritts["root"], out).to_dict()

    dev, test = report["splits"]["dev-clean"], report["splits"]["test-clean"]
    assert (dev["recordings"], dev["supervisions"], dev["cuts"]) == (8, 8, 8)
    assert (test["recordings"], test["supervisions"], test["cuts"]) == (4, 4, 4)
    assert dev["without_text"] == 1
    assert set(report["splits"]) == {"dev-clean", "test-clean"}  # missing parts are fine
    assert report["totals"]["seconds"] == pytest.approx(libritts["good_seconds"], rel=0.01)

    assert_reported(
        report,
        {
            libritts["planted"]["empty"]: "empty",
            libritts["planted"]["truncated"]: "truncated",
            libritts["planted"]["garbage"]: "unreadable audio header",
            libritts["orphan"]: "no audio",
            libritts["hidden"]: "unreadable directory",
            libritts["stereo"]: "2 channels",
            libritts["no_text"]: "no transcript",
        },
    )
    assert report["num_skipped"] == 5

    on_disk = json.loads((out / "prepare_report.json").read_text())
    assert on_disk == report


def test_manifests_load_with_lhotse_and_carry_metadata(libritts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare("libritts", libritts["root"], out)
    recordings = load_manifest(out / "libritts_recordings_dev-clean.jsonl.gz")
    supervisions = load_manifest(out / "libritts_supervisions_dev-clean.jsonl.gz")
    cuts = CutSet.from_file(out / "libritts_cuts_dev-clean.jsonl.gz").to_eager()
    assert len(recordings) == len(supervisions) == len(cuts) == 8

    first = libritts["written"][0]
    cut = cuts[first.id]
    supervision = cut.supervisions[0]
    assert supervision.text == first.text
    assert supervision.custom["original_text"] == first.text.upper()
    assert supervision.speaker == first.speaker
    assert supervision.gender == "F"
    assert supervision.language == "English"
    assert cut.custom == {"corpus": "libritts", "split": "dev-clean"}
    assert cut.load_audio().shape == (1, first.num_samples)

    stereo = cuts["100_5000_000095_000000"]
    assert stereo.recording.num_channels == 2  # kept, not dropped


def test_rerun_is_byte_identical_and_jobs_do_not_change_output(libritts, tmp_path: Path) -> None:
    first, second, parallel = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    prepare("libritts", libritts["root"], first)
    prepare("libritts", libritts["root"], second)
    prepare("libritts", libritts["root"], parallel, jobs=2)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        if name == "prepare_report.json":
            continue  # names its own output folder
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert (first / name).read_bytes() == (parallel / name).read_bytes(), name


def test_parts_option(libritts, tmp_path: Path) -> None:
    report = prepare("libritts", libritts["root"], tmp_path / "o", parts=["test-clean"])
    assert set(report.splits) == {"test-clean"}
    with pytest.raises(UserError, match="train-clean-100"):
        prepare("libritts", libritts["root"], tmp_path / "o", parts=["train-clean-100"])


def test_speakers_tsv_gives_gender(tmp_path: Path) -> None:
    root = tmp_path / "LibriTTS_R"
    make_libritts(root, {"dev-other": 2}, speakers=1)
    (root / "SPEAKERS.txt").unlink()
    (root / "speakers.tsv").write_text("READER\tGENDER\tSUBSET\tNAME\n100\tM\tdev-other\tX\n")
    cuts = CutSet.from_file(
        prepare("libritts", tmp_path, tmp_path / "o").output + "/libritts_cuts_dev-other.jsonl.gz"
    )
    assert {c.supervisions[0].gender for c in cuts} == {"M"}


def test_not_a_libritts_directory(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(UserError, match="not a LibriTTS directory"):
        prepare("libritts", tmp_path / "src", tmp_path / "out")


def test_lines_are_lhotse_schema(libritts, tmp_path: Path) -> None:
    """Our hand-built JSON lines are exactly what lhotse writes for the same objects."""
    import gzip

    out = tmp_path / "out"
    prepare("libritts", libritts["root"], out)
    for kind in ("recordings", "supervisions", "cuts"):
        path = out / f"libritts_{kind}_dev-clean.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        loaded = [item.to_dict() for item in load_manifest(path)]
        assert loaded == lines, kind
    cuts = CutSet.from_file(out / "libritts_cuts_dev-clean.jsonl.gz")
    assert {type(c).__name__ for c in cuts} == {"MonoCut", "MultiCut"}  # the stereo file


def test_unexpected_sample_rate_is_kept_with_a_warning(tmp_path: Path) -> None:
    make_libritts(tmp_path / "LibriTTS", {"dev-clean": 2}, speakers=1)
    odd = tmp_path / "LibriTTS" / "dev-clean" / "100" / "5000" / "100_5000_000050_000000.wav"
    write_audio(odd, 0.5, 16000)
    report = prepare("libritts", tmp_path, tmp_path / "out").to_dict()
    assert report["splits"]["dev-clean"]["recordings"] == 3
    assert_reported(report, {odd: "sample rate 16000 Hz, the corpus uses 24000 Hz"})

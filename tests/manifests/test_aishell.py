"""AISHELL-1: splits, spaces removed from Chinese text, faults."""

from pathlib import Path

import pytest
from lhotse import CutSet

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_aishell
from tests.helpers import (
    assert_reported,
    make_unreadable,
    plant_empty,
    plant_garbage,
    plant_truncated,
    write_audio,
)


def test_aishell_with_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = make_aishell(tmp_path, {"train": 4, "dev": 2, "test": 2})
    wav = tmp_path / "data_aishell" / "wav"
    transcript = tmp_path / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    empty = plant_empty(wav / "train" / "S0002" / "BAC009S0002W0900.wav")
    truncated = plant_truncated(wav / "train" / "S0002" / "BAC009S0002W0901.wav", 16000)
    garbage = plant_garbage(wav / "dev" / "S0012" / "BAC009S0012W0902.wav")
    stereo = wav / "test" / "S0022" / "BAC009S0022W0903.wav"
    stereo_frames = write_audio(stereo, 1.0, 16000, channels=2)
    no_text = wav / "train" / "S0003" / "BAC009S0003W0904.wav"
    no_text_frames = write_audio(no_text, 0.9, 16000)
    with transcript.open("a", encoding="utf-8") as f:
        for utt in ("W0900", "W0901", "W0903"):
            f.write(f"BAC009S00{'02' if utt < 'W0903' else '22'}{utt} 你好 世界\n")
        f.write("BAC009S0002W0999 没有 音频\n")
    hidden = wav / "dev" / "S0099"
    write_audio(hidden / "BAC009S0099W0001.wav", 0.5, 16000)
    make_unreadable(hidden, monkeypatch)

    report = prepare("aishell", tmp_path, tmp_path / "out").to_dict()
    splits = report["splits"]
    assert splits["train"]["recordings"] == 5 and splits["train"]["without_text"] == 1
    assert splits["dev"]["recordings"] == 2
    assert splits["test"]["recordings"] == 3
    assert all(s["recordings"] == s["supervisions"] == s["cuts"] for s in splits.values())
    good = sum(w.duration for w in written) + (stereo_frames + no_text_frames) / 16000
    assert report["totals"]["seconds"] == pytest.approx(good, rel=0.01)

    assert_reported(
        report,
        {
            empty: "empty",
            truncated: "truncated",
            garbage: "unreadable audio header",
            f"{transcript}:BAC009S0002W0999": "no audio",
            hidden: "unreadable directory",
            stereo: "2 channels",
            no_text: "no transcript",
        },
    )
    assert report["num_skipped"] == 5

    cuts = CutSet.from_file(tmp_path / "out" / "aishell_cuts_train.jsonl.gz").to_eager()
    first = next(w for w in written if w.path.parent.parent.name == "train")
    supervision = cuts[first.id].supervisions[0]
    assert supervision.text == first.text and " " not in supervision.text
    assert supervision.language == "Chinese"
    assert supervision.speaker == first.speaker
    assert supervision.gender in {"F", "M"}


def test_not_an_aishell_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not an AISHELL-1 directory"):
        prepare("aishell", tmp_path, tmp_path / "out")

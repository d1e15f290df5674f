"""bench/train_vs_original.py without the original's checkout (the suite has none: it is
public code we never copy), and its shim against the packages it stands in for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
REFERENCE = Path(__file__).parent / "fixtures" / "academicodec_original" / "shim_reference.npz"


def test_the_shim_answers_as_torchaudio_2_8_torch_2_8_and_librosa_0_9(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCH / "original"))
    import check_shim

    assert check_shim.compare(REFERENCE) == 0, capsys.readouterr().out
    result = json.loads(capsys.readouterr().out)
    assert result["reference"]["torchaudio"].startswith("2.8")
    assert len(result["relative_max_difference"]) == 11 and not result["failed"]


def test_without_a_checkout_it_says_skipped_or_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delenv("ACADEMICODEC_ORIGINAL", raising=False)
    import train_vs_original

    monkeypatch.setattr(sys, "argv", ["train_vs_original.py"])
    train_vs_original.main()  # make bench runs every script: no checkout is no failure
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["bench"] == "train_vs_original" and "git clone" in line["skipped"]
    monkeypatch.setattr(sys, "argv", ["train_vs_original.py", "--original", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"no academicodec/models/hificodec/models.py there"):
        train_vs_original.main()

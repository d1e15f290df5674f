"""bench/learning_curve.py rehearsed on CPU: a tiny preset trained for seconds on generated
audio, scored on held-out clips of another voice as it trains, one JSON line at the end."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "learning_curve.py"), *args],
        capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_curve_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On shards given with --data/--val (the generated-audio default runs in the
    gpu_check rehearsal's curve stage)."""
    monkeypatch.syspath_prepend(str(BENCH))
    from codebook_health import make_corpora

    data, val = make_corpora(tmp_path / "corpus", seed=3, clips=18)
    result = _run(
        "--device", "cpu", "--minutes", "0.12", "--every", "2", "--no-gan", "--workers", "0",
        "--val-items", "3", "--data", str(data), "--val", str(val),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["bench"] == "learning_curve" and report["device"] == "cpu"
    assert report["precision"] == "fp32" and report["gan"] is False
    curve = report["curve"]
    assert curve[0]["step"] == 0 and len(curve) >= 3, curve
    assert [p["step"] for p in curve] == sorted(p["step"] for p in curve)
    assert curve[-1]["seconds"] >= 0.12 * 60 and report["steps"] == curve[-1]["step"] > 0
    for point in curve:
        assert math.isfinite(point["mel_l1"]) and len(point["perplexity"]) == 4
        assert point["pesq_wb"] is not None and point["stoi"] is not None
        assert all(0 < used <= 1 for used in point["used"])
    assert curve[-1]["mel_l1"] < curve[0]["mel_l1"]  # it learned something in seconds
    assert report["audio_hours_per_device_hour"] == pytest.approx(
        report["steps"] * report["batch"] * report["segment_seconds"] / curve[-1]["seconds"],
        rel=1e-3,
    )
    assert set(report["goals"]) == {"mel_falls_after_first_minute", "perplexity_at_least_64"}
    assert report["goals"]["mel_falls_after_first_minute"] is False  # no point after 60 s


def test_data_without_val_is_refused() -> None:
    result = _run("--data", "somewhere")
    assert result.returncode == 2 and "--data and --val go together" in result.stderr


def test_original_needs_its_recipe_and_a_checkout(tmp_path: Path) -> None:
    """``--original`` compares the original HiFi-Codec 16k_320d trainer (its run is measured
    with the checkout, docs/benchmarks.md); other presets, no GAN or no checkout: one line."""
    result = _run("--preset", "tiny_encodec_16k", "--original", str(tmp_path))
    assert result.returncode == 2 and "give a hificodec 16 kHz, hop 320 preset" in result.stderr
    result = _run("--preset", "hificodec_16k_320d", "--no-gan", "--original", str(tmp_path))
    assert result.returncode == 2 and "no --no-gan" in result.stderr
    result = _run("--preset", "hificodec_16k_320d", "--original", str(tmp_path))
    assert result.returncode != 0 and "no academicodec/models/hificodec/models.py" in result.stderr

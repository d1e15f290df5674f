"""bench/gpu_check.py: skips without CUDA, fails loudly naming the stage, and every stage's
own logic runs (rehearsed on CPU at tiny sizes) before a GPU is ever lent."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py"), *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
    )  # fmt: skip


def test_without_cuda_it_says_skipped() -> None:
    result = _run(CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "bench": "gpu_check",
        "skipped": "no CUDA device",
    }


@pytest.mark.slow
def test_every_stage_runs_in_a_cpu_rehearsal() -> None:
    result = _run("--rehearse-on-cpu", CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["bench"] == "gpu_check" and "failed_stage" not in report
    figures = report["tokenize"]["tiny_encodec_16k"]
    for precision in ("fp32", "tf32", "bf16"):
        assert figures[precision]["audio_h_per_gpu_h"] > 0
    # on CPU, tf32 is fp32: both equal the per-clip CPU reference exactly; bf16 differs
    assert figures["fp32"]["codes_equal_cpu_fp32"] == figures["tf32"]["codes_equal_cpu_fp32"] == 1
    assert 0.5 < figures["bf16"]["codes_equal_cpu_fp32"] < 1
    for precision in ("fp32", "bf16"):  # the why: time split, shapes, encoder alone
        run = figures[precision]
        assert set(run["time_split_s"]) == {
            "first_batch", "loader_wait", "encode", "codes_back", "write", "write_wait",
            "to_device_gpu",
        }  # fmt: skip
        assert run["time_split_s"]["encode"] > 0 and run["worker_startup_s"] >= 0
        assert 1 <= run["encoder_shapes"] < run["encoder_calls"]  # a fixed grid of shapes
        assert run["end_to_end_over_encoder"] > 0 and run["steady_audio_h_per_gpu_h"] > 0
        for mode in ("eager", "compiled"):
            assert all(r > 0 for r in figures["encoder_alone"][mode][precision].values())
        assert set(figures["encoder_alone"]["eager"][precision]) == {"1", "2", "4"}
    assert figures["bf16_over_fp32"] > 0
    train = report["train"]
    assert train["fp32"]["steps_per_s"] > 0 and train["bf16_speedup"] > 0
    assert 0 <= train["bf16"]["kernels"]["bf16_share"] <= 1
    assert train["bf16"]["kernels"]["largest_not_bf16"]
    for name in ("bf16 / fp32 end to end", "bf16 end to end / encoder alone"):
        assert f"tiny_encodec_16k {name}" in report["goals"]
    ddp = report["ddp"]
    assert ddp["world_size"] == 1 and ddp["steps"] == 2 and ddp["resumed_to_step"] == 3
    assert "last.pt" in ddp["checkpoints"]
    assert report["goals"]["tiny_encodec_16k fp32 codes = CPU fp32"]["met"] is True
    curve = report["curve"]  # the learning curve, with GAN losses, on another voice
    assert curve["preset"] == "tiny_encodec_16k" and curve["gan"] is True
    assert len(curve["curve"]) >= 2 and curve["steps"] >= 1
    assert len(curve["curve"][-1]["perplexity"]) == 4
    assert "curve perplexity_at_least_64" in report["goals"]
    assert set(report["stage_seconds"]) == {
        "data", "tokenize tiny_encodec_16k", "shard", "train", "ddp", "curve",
    }  # fmt: skip


def test_a_failing_stage_is_named_and_exits_non_zero(monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import gpu_check

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gpu_check, "make_corpus", broken)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--rehearse-on-cpu"])
    assert gpu_check.main() == 1
    out, err = capsys.readouterr()
    report = json.loads(out.splitlines()[-1])
    assert report["failed_stage"] == "data" and report["error"] == "OSError: disk full"
    assert "stage 'data' failed: OSError: disk full" in err

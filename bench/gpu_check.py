"""One GPU check: does the CUDA path work, and how fast is it? (< 8 minutes on one GPU)

Generates its own speech-like corpus, then, on ``cuda:0``:

- ``tokenize``: end-to-end ``tokenize`` throughput (audio-hours per GPU-hour) for
  ``hificodec_16k_320d`` and ``encodec_24k_240d`` (random weights) at fp32, tf32 and bf16,
  one padded call a batch, batches sized to the GPU's memory; each precision's codes
  compared with CPU fp32 codes of the same clips; the encoder alone on one fixed-shape batch
  in memory, with and without ``torch.compile``.
- ``train``: ``hificodec_16k_320d`` at batch 16 (GAN losses on), fp32 vs bf16: steps/s,
  samples/s, peak GPU memory.
- ``ddp``: 20 steps of a one-rank NCCL process group (DDP wrappers and collectives on),
  a checkpoint at step 10 and the end, then a resume to step 30.

Prints one JSON line (``"bench": "gpu_check"``) with every figure, the goals of issue 13 and
whether each was met. A stage that raises is a failure: the JSON names it
(``"failed_stage"``), the traceback goes to stderr and the exit status is 1; nothing is
skipped silently. Without CUDA it prints ``{"bench": "gpu_check", "skipped": "no CUDA
device"}`` and exits 0. ``--rehearse-on-cpu`` runs every stage on CPU with tiny presets and
sizes (gloo instead of NCCL, Dynamo's eager backend instead of inductor), so the script's
own logic is tested where no GPU is (``tests/test_bench_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from common import machine

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import build_codec, load_codec, load_codec_config, save_codec
from academicodec.models.precision import PRECISIONS, numerics
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.tokenizer.readers import CodesDataset
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from academicodec.training import RunOptions, Trainer, train

# Goals (issue 13): bf16 tokenize audio-hours per GPU-hour, codes agreement, train speed-up.
TOKENIZE_GOALS = {"hificodec_16k_320d": 5000.0, "encodec_24k_240d": 20000.0}
AGREEMENT_GOALS = {"fp32": 0.999, "bf16": 0.99}
TRAIN_BF16_GOAL = 1.8
COMPILE_BUDGET_SECONDS = 330.0  # compile is measured only while the run is within this


@dataclass(frozen=True)
class Sizes:
    device: str
    presets: tuple[str, ...]
    train_preset: str
    corpus_seconds: float  # audio tokenized end to end, per preset
    agreement_clips: int
    train_batch: int
    train_steps: int
    ddp_steps: int
    ddp_backend: str
    compile_backend: str
    workers: int
    memory_fraction: float  # of the GPU's memory a tokenize batch may use


GPU = Sizes(
    "cuda",
    ("hificodec_16k_320d", "encodec_24k_240d"),
    "hificodec_16k_320d",
    corpus_seconds=3600.0,
    agreement_clips=16,
    train_batch=16,
    train_steps=20,
    ddp_steps=20,
    ddp_backend="nccl",
    compile_backend="inductor",
    workers=8,
    memory_fraction=0.3,
)
REHEARSAL = Sizes(
    "cpu",
    ("tiny_encodec_16k",),
    "tiny_encodec_16k",
    corpus_seconds=40.0,
    agreement_clips=3,
    train_batch=2,
    train_steps=1,
    ddp_steps=2,
    ddp_backend="gloo",
    compile_backend="eager",
    workers=0,
    memory_fraction=0.0,
)


class StageFailed(RuntimeError):
    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def stage(name: str, results: dict[str, Any], work: Callable[[], Any]) -> Any:
    """Run one stage, record its seconds in ``results``; any error fails the check."""
    started = time.perf_counter()
    try:
        value = work()
    except Exception as exc:
        traceback.print_exc()
        raise StageFailed(name) from exc
    results.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - started, 1)
    return value


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --- data ---------------------------------------------------------------------------------


def make_corpus(root: Path, rate: int, seconds: float) -> Path:
    """Speech-like clips of 2-14 s at ``rate`` (wav, so reading never limits the GPU)."""
    count = max(3, round(seconds / 8.0))
    source = SpeechSource(pool=8, seed=rate)
    make_folder(
        root / f"src{rate}",
        count,
        source=source,
        rates=(rate,),
        formats=("wav",),
        durations=(2.0, 14.0),
    )
    prepare("folder", root / f"src{rate}", root / f"manifests{rate}", jobs=4)
    return root / f"manifests{rate}"


def _clips(manifests: Path, count: int) -> dict[str, np.ndarray]:
    from lhotse import CutSet

    cuts = CutSet.from_file(next(manifests.glob("*_cuts_*"))).to_eager()
    return {cut.id: cut.load_audio()[0].astype(np.float32) for cut in list(cuts)[:count]}


# --- tokenize -----------------------------------------------------------------------------


def cpu_fp32_codes(model_dir: Path, clips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference: each clip alone on CPU at fp32, [F, K] as tokenize stores them."""
    model = load_codec(model_dir).eval()
    out = {}
    with torch.inference_mode(), numerics("fp32", "cpu"):
        for key, audio in clips.items():
            out[key] = model.encode(torch.from_numpy(audio)[None, None])[0].t().numpy()
    return out


def batch_seconds_for(model_dir: Path, sizes: Sizes, precision: str) -> float:
    """Padded seconds per batch so the encode peak stays within ``memory_fraction`` of the
    GPU: measured on a probe batch, scaled linearly (activations grow with the audio)."""
    if not sizes.device.startswith("cuda"):
        return 30.0
    model = load_codec(model_dir).eval().to(sizes.device)
    probe_seconds = 40.0
    wav = 0.1 * torch.randn(4, 1, int(10 * model.sample_rate), device=sizes.device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.inference_mode(), numerics(precision, sizes.device):
        model.encode(wav, torch.full((4,), wav.shape[-1], device=sizes.device), one_call=True)
    _sync(sizes.device)
    peak = torch.cuda.max_memory_allocated() - base
    del model, wav
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    return float(min(3600.0, probe_seconds * sizes.memory_fraction * total / max(peak, 1)))


def tokenize_figures(root: Path, preset: str, sizes: Sizes, started: float) -> dict[str, Any]:
    torch.manual_seed(0)
    model_dir = save_codec(build_codec(preset), root / f"model-{preset}")
    manifests = root / f"manifests{load_codec_config(preset).sample_rate}"
    clips = _clips(manifests, sizes.agreement_clips)
    reference = cpu_fp32_codes(model_dir, clips)
    figures: dict[str, Any] = {}
    for precision in PRECISIONS:
        budget = batch_seconds_for(model_dir, sizes, precision)
        settings = TokenizeSettings(
            workers=sizes.workers,
            precision=precision,
            batch_seconds=budget,
            items_per_shard=200,
            batching="one-call",
        )
        out = root / f"codes-{preset}-{precision}"
        _sync(sizes.device)
        begin = time.perf_counter()
        index = tokenize(model_dir, [manifests], out, settings, device=sizes.device)
        _sync(sizes.device)
        wall = time.perf_counter() - begin
        assert index is not None and index.precision == precision
        codes = {m["id"]: c for c, _, m in CodesDataset(out, rank=0, world_size=1)}
        equal = sum(int((codes[k] == reference[k]).sum()) for k in reference)
        total = sum(reference[k].size for k in reference)
        figures[precision] = {
            "audio_h_per_gpu_h": round(index.totals.seconds / wall, 1),
            "audio_hours": round(index.totals.seconds / 3600, 3),
            "batch_seconds": round(budget, 1),
            "codes_equal_cpu_fp32": round(equal / total, 6),
            "device_type": index.device_type,
        }
    figures["encoder_in_memory"] = encoder_in_memory(model_dir, sizes, started)
    return figures


def encoder_in_memory(model_dir: Path, sizes: Sizes, started: float) -> dict[str, Any]:
    """The encoder alone on one fixed batch (8 x 10 s) at bf16: eager, then compiled."""
    model = load_codec(model_dir).eval().to(sizes.device)
    rows = 8
    wav = 0.1 * torch.randn(rows, 1, int(10 * model.sample_rate), device=sizes.device)
    lengths = torch.full((rows,), wav.shape[-1], device=sizes.device)
    seconds = rows * 10.0

    def throughput(repeats: int = 5) -> float:
        with torch.inference_mode(), numerics("bf16", sizes.device):
            model.encode(wav, lengths, one_call=True)  # warm-up (and compile)
            _sync(sizes.device)
            begin = time.perf_counter()
            for _ in range(repeats):
                model.encode(wav, lengths, one_call=True)
            _sync(sizes.device)
        return seconds * repeats / (time.perf_counter() - begin)

    result: dict[str, Any] = {"batch": f"{rows} x 10 s", "precision": "bf16"}
    result["eager_audio_h_per_gpu_h"] = round(throughput(), 1)
    if time.perf_counter() - started > COMPILE_BUDGET_SECONDS:
        result["compiled"] = f"not measured: the check passed {COMPILE_BUDGET_SECONDS:g} s"
        return result
    model.compile_encoder(sizes.compile_backend)
    begin = time.perf_counter()
    with torch.inference_mode(), numerics("bf16", sizes.device):
        model.encode(wav, lengths, one_call=True)
        _sync(sizes.device)
    result["compile_seconds"] = round(time.perf_counter() - begin, 1)
    result["compiled_audio_h_per_gpu_h"] = round(throughput(), 1)
    result["compile_backend"] = sizes.compile_backend
    return result


# --- train --------------------------------------------------------------------------------


def train_overrides(sizes: Sizes) -> dict[str, Any]:
    return {
        "train.batch_size": sizes.train_batch,
        "train.segment_length": 16000,
        "train.disc_start_step": 0,
    }


def train_figures(shards: Path, sizes: Sizes) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    config = load_codec_config(sizes.train_preset, train_overrides(sizes))
    for precision in ("fp32", "bf16"):
        options = RunOptions(
            out=Path("unused"), data=shards, workers=2, device=sizes.device, precision=precision
        )
        trainer = Trainer(config, options, torch.device(sizes.device))
        cached = _two_batches(trainer)
        for i in range(3):  # warm-up: cuDNN autotune, the codebooks' k-means initialisation
            trainer.train_step(cached[i % 2])
        if sizes.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        _sync(sizes.device)
        begin = time.perf_counter()
        for i in range(sizes.train_steps):
            trainer.train_step(cached[i % 2])
        _sync(sizes.device)
        rate = sizes.train_steps / (time.perf_counter() - begin)
        peak = torch.cuda.max_memory_allocated() / 2**30 if sizes.device.startswith("cuda") else 0
        figures[precision] = {
            "steps_per_s": round(rate, 3),
            "samples_per_s": round(rate * sizes.train_batch, 1),
            "peak_gpu_gb": round(peak, 2),
        }
        del trainer, cached
        if sizes.device.startswith("cuda"):
            torch.cuda.empty_cache()
    figures["bf16_speedup"] = round(
        figures["bf16"]["steps_per_s"] / figures["fp32"]["steps_per_s"], 2
    )
    figures["batch"] = sizes.train_batch
    return figures


def _two_batches(trainer: Trainer) -> list[dict[str, torch.Tensor]]:
    """Two batches from the trainer's own loader, kept in memory (the loader is measured by
    bench/train_speed.py; here the GPU is)."""
    batches: list[dict[str, torch.Tensor]] = []
    while len(batches) < 2:
        batches += list(trainer.loader)[: 2 - len(batches)]
    return batches


def ddp_figures(root: Path, shards: Path, sizes: Sizes) -> dict[str, Any]:
    """A one-member process group: DDP wrappers and collectives run as on many GPUs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if sizes.device.startswith("cuda"):
        torch.cuda.set_device(0)
    dist.init_process_group(
        sizes.ddp_backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1
    )
    try:
        out = root / "ddp-run"
        half = sizes.ddp_steps // 2
        options = RunOptions(
            out=out,
            data=shards,
            max_steps=sizes.ddp_steps,
            device=sizes.device,
            ckpt_every=half,
            val_every=half,
            workers=2,
            val_items=2,
        )
        begin = time.perf_counter()
        first = train(sizes.train_preset, options, train_overrides(sizes))
        wall = time.perf_counter() - begin
        resumed = train(sizes.train_preset, _more(options, half), train_overrides(sizes))
        assert first.step == sizes.ddp_steps, f"stopped at step {first.step}"
        assert resumed.step == sizes.ddp_steps + half, f"resume stopped at step {resumed.step}"
        checkpoints = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
        return {
            "backend": sizes.ddp_backend,
            "world_size": dist.get_world_size(),
            "steps": first.step,
            "steps_per_s": round(first.step / wall, 3),
            "resumed_to_step": resumed.step,
            "checkpoints": checkpoints,
        }
    finally:
        dist.destroy_process_group()


def _more(options: RunOptions, steps: int) -> RunOptions:
    from dataclasses import replace

    return replace(options, max_steps=options.max_steps + steps)


# --- the check ----------------------------------------------------------------------------


def goals(results: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for preset, goal in TOKENIZE_GOALS.items():
        if preset in results.get("tokenize", {}):
            measured = results["tokenize"][preset]["bf16"]["audio_h_per_gpu_h"]
            checks[f"{preset} bf16 audio-h/GPU-h"] = {
                "goal": goal,
                "measured": measured,
                "met": measured >= goal,
            }
    for preset, figures in results.get("tokenize", {}).items():
        for precision, goal in AGREEMENT_GOALS.items():
            measured = figures[precision]["codes_equal_cpu_fp32"]
            checks[f"{preset} {precision} codes = CPU fp32"] = {
                "goal": goal,
                "measured": measured,
                "met": measured >= goal,
            }
    if "train" in results:
        measured = results["train"]["bf16_speedup"]
        checks["train bf16 / fp32 steps/s"] = {
            "goal": TRAIN_BF16_GOAL,
            "measured": measured,
            "met": measured >= TRAIN_BF16_GOAL,
        }
    return checks


def run_check(sizes: Sizes) -> tuple[dict[str, Any], int]:
    started = time.perf_counter()
    results: dict[str, Any] = {"bench": "gpu_check", "device": sizes.device}
    if sizes.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name(0)
    results["torch"] = torch.__version__
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            rates = sorted({load_codec_config(p).sample_rate for p in sizes.presets})
            stage(
                "data", results, lambda: [make_corpus(root, r, sizes.corpus_seconds) for r in rates]
            )
            results["tokenize"] = {}
            for preset in sizes.presets:
                results["tokenize"][preset] = stage(
                    f"tokenize {preset}",
                    results,
                    lambda p=preset: tokenize_figures(root, p, sizes, started),
                )
            shard_rate = load_codec_config(sizes.train_preset).sample_rate
            shards = root / "shards"
            stage(
                "shard",
                results,
                lambda: write_shards(
                    [root / f"manifests{shard_rate}"],
                    shards,
                    ShardSettings(shard_rate, samples_per_shard=100),
                    jobs=4,
                ),
            )
            results["train"] = stage("train", results, lambda: train_figures(shards, sizes))
            results["ddp"] = stage("ddp", results, lambda: ddp_figures(root, shards, sizes))
        except StageFailed as failure:
            results["failed_stage"] = failure.stage
            results["error"] = f"{type(failure.__cause__).__name__}: {failure.__cause__}"
            status = 1
    results["goals"] = goals(results, sizes)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"] = machine()
    return results, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rehearse-on-cpu",
        action="store_true",
        help="Every stage on CPU at tiny sizes (tests the script itself).",
    )
    args = parser.parse_args()
    if args.rehearse_on_cpu:
        sizes = REHEARSAL
    elif torch.cuda.is_available():
        sizes = GPU
    else:
        print(json.dumps({"bench": "gpu_check", "skipped": "no CUDA device"}))
        return 0
    results, status = run_check(sizes)
    print(json.dumps(results))
    if status:
        print(
            f"gpu_check: stage {results['failed_stage']!r} failed: {results['error']}",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())

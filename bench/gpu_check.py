"""One GPU check: does the CUDA path work, and how fast is it? (< 11 minutes on one GPU)

Generates its own speech-like corpus, then, on ``cuda:0``:

- ``tokenize``: end-to-end ``tokenize`` throughput (audio-hours per GPU-hour) for
  ``hificodec_16k_320d``, ``encodec_24k_240d`` and ``meta_encodec_24khz`` (random weights)
  at fp32, tf32 and bf16, one-call batches on the shape grid at the accelerator default
  (300 s of audio a batch), on a corpus of >= 20 batches: the whole run and its steady
  state (worker start-up reported apart), where the time went (waiting for the loader,
  host->device copies, encode, codes back, writing), the distinct encoder input shapes,
  the encoder alone at the same batch (end to end / encoder alone), and each precision's
  codes compared with CPU fp32 codes of the same clips; then the encoder alone at batch
  8 / 64 / 256 (10 s rows), fp32 and bf16, eager and ``torch.compile``d.
- ``train``: ``hificodec_16k_320d`` at batch 16 (GAN losses on), fp32 vs bf16: steps/s,
  samples/s, peak GPU memory, and from ``torch.profiler`` the share of GPU kernel time
  spent in bf16 kernels (with the largest kernels that are not).
- ``ddp``: 20 steps of a one-rank NCCL process group (DDP wrappers and collectives on),
  a checkpoint at step 10 and the end, then a resume to step 30.
- ``curve``: ``bench/learning_curve.py`` for ``hificodec_16k_320d`` at batch 16, GAN
  losses on, bf16, 3 minutes of training on 600 generated clips, scored every 20 s on 8
  clips of another voice generator (mel L1, PESQ-WB, STOI, every codebook's perplexity):
  whether validation mel L1 falls after the first minute and every codebook stays >= 64.
  With ``ACADEMICODEC_ORIGINAL=CHECKOUT`` (a clone of the original AcademiCodec), the
  original trainer too, for the same minutes on the same GPU (``learning_curve.py
  --original``): ours must train >= 3x its audio per second and reach its mel L1 in no
  more steps.

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
import os
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
from learning_curve import CurveSettings, generated_curve

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import build_codec, load_codec, load_codec_config, save_codec
from academicodec.models.precision import PRECISIONS, numerics
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.tokenizer.index import REPORT_NAME, TokenizeReport
from academicodec.tokenizer.readers import CodesDataset
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from academicodec.training import RunOptions, Trainer, train

# Goals (issue 21): bf16 tokenize audio-hours per GPU-hour, bf16 over fp32 end to end, end
# to end over the encoder alone, codes agreement, train speed-up.
TOKENIZE_GOALS = {
    "hificodec_16k_320d": 5000.0,
    "encodec_24k_240d": 20000.0,
    "meta_encodec_24khz": 20000.0,
}
BF16_OVER_FP32_GOAL = 1.8
OVER_ENCODER_GOAL = 0.8
AGREEMENT_GOALS = {"fp32": 0.999, "bf16": 0.99}
TRAIN_BF16_GOAL = 1.8
COMPILE_BUDGET_SECONDS = 330.0  # compile is measured only while the run is within this
ROW_SECONDS = 10.0  # the encoder-alone rows
# Kernel names that compute in bf16 (cuDNN/cutlass "bf16", ATen's "BFloat16" templates).
BF16_MARKERS = ("bf16", "bfloat16")


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
    batch_seconds: float  # tokenize's batch budget (the accelerator default)
    encoder_batches: tuple[int, ...]  # rows of the encoder-alone figures
    row_seconds: float
    curve_minutes: float  # the learning-curve stage's training time
    curve_every: float
    curve_clips: int


GPU = Sizes(
    "cuda",
    ("hificodec_16k_320d", "encodec_24k_240d", "meta_encodec_24khz"),
    "hificodec_16k_320d",
    corpus_seconds=6300.0,  # >= 20 batches of 300 s
    agreement_clips=16,
    train_batch=16,
    train_steps=20,
    ddp_steps=20,
    ddp_backend="nccl",
    compile_backend="inductor",
    workers=12,
    batch_seconds=300.0,
    encoder_batches=(8, 64, 256),
    row_seconds=ROW_SECONDS,
    curve_minutes=3.0,
    curve_every=20.0,
    curve_clips=600,
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
    batch_seconds=2.0,
    encoder_batches=(1, 2, 4),
    row_seconds=0.5,
    curve_minutes=0.05,
    curve_every=1.0,
    curve_clips=12,
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


def tokenize_figures(root: Path, preset: str, sizes: Sizes, started: float) -> dict[str, Any]:
    torch.manual_seed(0)
    model_dir = save_codec(build_codec(preset), root / f"model-{preset}")
    manifests = root / f"manifests{load_codec_config(preset).sample_rate}"
    clips = _clips(manifests, sizes.agreement_clips)
    reference = cpu_fp32_codes(model_dir, clips)
    model = load_codec(model_dir).eval().to(sizes.device)
    figures: dict[str, Any] = {}
    for precision in PRECISIONS:
        settings = TokenizeSettings(
            workers=sizes.workers,
            precision=precision,
            batch_seconds=sizes.batch_seconds,
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
        timing = TokenizeReport.read(out / REPORT_NAME).timing or {}
        spans = timing["seconds"]
        codes = {m["id"]: c for c, _, m in CodesDataset(out, rank=0, world_size=1)}
        equal = sum(int((codes[k] == reference[k]).sum()) for k in reference)
        total = sum(reference[k].size for k in reference)
        audio = index.totals.seconds
        steady = audio / max(wall - spans["first_batch"], 1e-9)
        # the grid's rows at the rows' length: the batch end to end ran at most often
        rows = max(1, int(sizes.batch_seconds // sizes.row_seconds))
        alone = encoder_rate(model, rows, sizes, precision)
        figures[precision] = {
            "audio_h_per_gpu_h": round(audio / wall, 1),
            "steady_audio_h_per_gpu_h": round(steady, 1),
            "worker_startup_s": round(spans["first_batch"], 2),
            "audio_hours": round(audio / 3600, 3),
            "encoder_calls": timing["encoder_calls"],
            "batch_seconds": sizes.batch_seconds,
            "time_split_s": spans,
            "share_of_wall": timing["share_of_wall"],
            "encoder_shapes": timing["encoder_shapes"],
            "encoder_alone_same_batch": {
                "batch": f"{rows} x {sizes.row_seconds:g} s",
                "audio_h_per_gpu_h": round(alone, 1),
            },
            "end_to_end_over_encoder": round(steady / alone, 3),
            "codes_equal_cpu_fp32": round(equal / total, 6),
            "device_type": index.device_type,
        }
    figures["bf16_over_fp32"] = round(
        figures["bf16"]["audio_h_per_gpu_h"] / figures["fp32"]["audio_h_per_gpu_h"], 2
    )
    figures["encoder_alone"] = encoder_alone(model_dir, sizes, started)
    return figures


def encoder_rate(model: Any, rows: int, sizes: Sizes, precision: str, repeats: int = 3) -> float:
    """Audio seconds per second (= audio-h per GPU-h) of the encoder alone on ``rows`` x
    ``row_seconds`` in device memory, one-call, after a warm-up (tuning, compiling)."""
    length = int(sizes.row_seconds * model.sample_rate) // model.hop_length * model.hop_length
    wav = 0.1 * torch.randn(rows, 1, length, device=sizes.device)
    lengths = torch.full((rows,), length, device=sizes.device)
    with torch.inference_mode(), numerics(precision, sizes.device, autotune=True):
        model.encode(wav, lengths, one_call=True)
        _sync(sizes.device)
        begin = time.perf_counter()
        for _ in range(repeats):
            model.encode(wav, lengths, one_call=True)
        _sync(sizes.device)
    return rows * length / model.sample_rate * repeats / (time.perf_counter() - begin)


def encoder_alone(model_dir: Path, sizes: Sizes, started: float) -> dict[str, Any]:
    """The encoder alone at each batch of ``encoder_batches``, fp32 and bf16, eager then
    compiled (compiling only while the check is within its time budget)."""
    result: dict[str, Any] = {"row_seconds": sizes.row_seconds}
    for mode in ("eager", "compiled"):
        model = load_codec(model_dir).eval().to(sizes.device)
        if mode == "compiled":
            if time.perf_counter() - started > COMPILE_BUDGET_SECONDS:
                result[mode] = f"not measured: the check passed {COMPILE_BUDGET_SECONDS:g} s"
                continue
            model.compile_encoder(sizes.compile_backend)
            result["compile_backend"] = sizes.compile_backend
        for precision in ("fp32", "bf16"):
            for rows in sizes.encoder_batches:
                try:
                    rate = round(encoder_rate(model, rows, sizes, precision), 1)
                except torch.OutOfMemoryError:
                    rate = "out of memory"
                result.setdefault(mode, {}).setdefault(precision, {})[str(rows)] = rate
        del model
        if sizes.device.startswith("cuda"):
            torch.cuda.empty_cache()
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
            "kernels": kernel_share(trainer, cached, sizes.device),
        }
        del trainer, cached
        if sizes.device.startswith("cuda"):
            torch.cuda.empty_cache()
    figures["bf16_speedup"] = round(
        figures["bf16"]["steps_per_s"] / figures["fp32"]["steps_per_s"], 2
    )
    figures["batch"] = sizes.train_batch
    return figures


def kernel_share(trainer: Trainer, batches: list[dict[str, Any]], device: str) -> dict[str, Any]:
    """Three steps under ``torch.profiler``: the share of device kernel time (CPU op time in
    a CPU rehearsal) in kernels whose names say bf16, and the five largest that do not."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        for i in range(3):
            trainer.train_step(batches[i % 2])
        _sync(device)
    times: dict[str, float] = {}
    for event in prof.key_averages():
        spent = event.self_device_time_total if cuda else event.self_cpu_time_total
        if spent > 0 and (not cuda or event.device_type.name == "CUDA"):
            times[event.key] = times.get(event.key, 0.0) + spent
    total = sum(times.values()) or 1.0
    bf16 = sum(t for k, t in times.items() if any(m in k.lower() for m in BF16_MARKERS))
    others = sorted(
        ((t, k) for k, t in times.items() if not any(m in k.lower() for m in BF16_MARKERS)),
        reverse=True,
    )[:5]
    return {
        "measured_on": "GPU kernels" if cuda else "CPU ops (rehearsal: names rarely say bf16)",
        "bf16_share": round(bf16 / total, 3),
        "largest_not_bf16": [{"name": k[:120], "share": round(t / total, 3)} for t, k in others],
    }


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


def curve_figures(root: Path, sizes: Sizes) -> dict[str, Any]:
    """``bench/learning_curve.py`` for the train preset (GAN losses on, bf16 on CUDA), on
    generated audio scored on another voice: what a few GPU-minutes of training buy."""
    # The original beside ours, if a checkout is given (its recipe is the full preset's).
    checkout = os.environ.get("ACADEMICODEC_ORIGINAL")
    if sizes.train_preset != "hificodec_16k_320d":  # the CPU rehearsal's tiny preset
        checkout = None
    settings = CurveSettings(
        sizes.train_preset, sizes.device, sizes.curve_minutes, sizes.curve_every,
        val_items=8, batch=sizes.train_batch, workers=sizes.workers,
        original=Path(checkout).resolve() if checkout else None,
    )  # fmt: skip
    return generated_curve(settings, root / "curve", sizes.curve_clips)


def _more(options: RunOptions, steps: int) -> RunOptions:
    from dataclasses import replace

    return replace(options, max_steps=options.max_steps + steps)


# --- the check ----------------------------------------------------------------------------


def _check(goal: float, measured: float) -> dict[str, Any]:
    return {"goal": goal, "measured": measured, "met": measured >= goal}


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
        checks[f"{preset} bf16 / fp32 end to end"] = _check(
            BF16_OVER_FP32_GOAL, figures["bf16_over_fp32"]
        )
        for precision in ("fp32", "bf16"):
            checks[f"{preset} {precision} end to end / encoder alone"] = _check(
                OVER_ENCODER_GOAL, figures[precision]["end_to_end_over_encoder"]
            )
        for precision, goal in AGREEMENT_GOALS.items():
            measured = figures[precision]["codes_equal_cpu_fp32"]
            checks[f"{preset} {precision} codes = CPU fp32"] = {
                "goal": goal,
                "measured": measured,
                "met": measured >= goal,
            }
    curve = results.get("curve", {})
    for name, met in {**curve.get("goals", {}), **curve.get("original_goals", {})}.items():
        checks[f"curve {name}"] = {"met": met}
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
            results["curve"] = stage("curve", results, lambda: curve_figures(root, sizes))
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

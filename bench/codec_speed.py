"""Codec speed: encode/decode real-time factors at batch 1 and 16 (5 s clips), peak memory
for one 60 s clip, per preset, at ``--precision`` (fp32 by default, as ``tokenize``); CPU by
default, CUDA with --device cuda. Each preset also encodes at batch 16 under bf16 autocast
(``encode_rtf_b16_bf16``, ``bf16_speedup``): CPUs with AVX-512 BF16/AMX may encode faster so.

The last line's ``ratio`` is batch-16 over batch-1 encode throughput for
``hificodec_16k_320d``: batching must never make a clip slower to encode (target >= 1.0 on
CPU, >= 8 on a GPU). The original HiFi-Codec drops to 0.73 on CPU at batch 8.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from common import report

from academicodec.memory import RssSampler
from academicodec.models import build_codec
from academicodec.models.layers import remove_weight_norm
from academicodec.models.precision import numerics
from academicodec.models.scheduling import GroupRunner

DEFAULT_PRESETS = [
    "tiny_hificodec_16k",
    "tiny_encodec_16k",
    "hificodec_16k_320d",
    "encodec_16k_320d",
]
CLIP_SECONDS = 5.0


def _model(name: str, device: str):
    model = build_codec(name).eval()
    remove_weight_norm(model)
    return model.to(device)


def _rtf(run, audio_seconds: float, device: str, repeats: int) -> float:
    """Best-of-``repeats`` real-time factor (audio seconds per wall second)."""
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return audio_seconds / best


def measure(name: str, device: str, repeats: int, precision: str) -> dict:
    """Batch 1 = the 16 clips encoded one call each; batch 16 = one call for all 16."""
    model = _model(name, device)
    samples = int(CLIP_SECONDS * model.sample_rate)
    seconds = 16 * CLIP_SECONDS
    wav = 0.1 * torch.randn(16, 1, samples, device=device)
    lengths = torch.full((16,), samples, device=device)
    results: dict = {"preset": name, "parameters": model.generator_parameters()}
    with torch.inference_mode(), numerics(precision, device), GroupRunner() as runner:
        codes = model.encode(wav, lengths, runner=runner)  # warm-up

        def one_by_one(run) -> None:
            for i in range(16):
                run(i)

        results["encode_rtf_b1"] = _rtf(
            lambda: one_by_one(lambda i: model.encode(wav[i : i + 1], lengths[i : i + 1])),
            seconds, device, repeats,
        )  # fmt: skip
        results["encode_rtf_b16"] = _rtf(
            lambda: model.encode(wav, lengths, runner=runner), seconds, device, repeats
        )
        results["decode_rtf_b1"] = _rtf(
            lambda: one_by_one(lambda i: model.decode(codes[i : i + 1])), seconds, device, repeats
        )
        results["decode_rtf_b16"] = _rtf(
            lambda: model.decode(codes, runner=runner), seconds, device, repeats
        )
    with torch.inference_mode(), numerics("bf16", device), GroupRunner() as runner:
        model.encode(wav, lengths, runner=runner)  # warm-up
        results["encode_rtf_b16_bf16"] = _rtf(
            lambda: model.encode(wav, lengths, runner=runner), seconds, device, repeats
        )
    results = {k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}
    results["encode_batch_ratio"] = round(results["encode_rtf_b16"] / results["encode_rtf_b1"], 2)
    results["bf16_speedup"] = round(results["encode_rtf_b16_bf16"] / results["encode_rtf_b16"], 2)
    return results


def peak_memory_mb(name: str, device: str, precision: str) -> float:
    """Peak RSS growth (CPU) or peak allocated memory (CUDA) for one 60 s clip."""
    model = _model(name, device)
    wav = 0.1 * torch.randn(1, 1, 60 * model.sample_rate, device=device)
    with torch.inference_mode(), numerics(precision, device):
        model.encode(wav[..., : model.sample_rate])
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with RssSampler() as rss:
            model.decode(model.encode(wav))
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return rss.growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="*", default=DEFAULT_PRESETS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32")
    parser.add_argument("--peak", help=argparse.SUPPRESS)  # child mode: one preset's memory
    args = parser.parse_args()
    if args.peak:
        print(json.dumps({"peak_mb": peak_memory_mb(args.peak, args.device, args.precision)}))
        return
    rows = []
    for name in args.presets:
        row = measure(name, args.device, args.repeats, args.precision)
        child = subprocess.run(
            [sys.executable, __file__, "--peak", name, "--device", args.device,
             "--precision", args.precision],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        row["peak_mb_60s"] = round(json.loads(child.stdout.splitlines()[-1])["peak_mb"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    key = next((r for r in rows if r["preset"] == "hificodec_16k_320d"), rows[0])
    report(
        {
            "bench": "codec",
            "device": args.device,
            "precision": args.precision,
            "ratio": key["encode_batch_ratio"],
            "ratio_preset": key["preset"],
            "presets": rows,
        }
    )


if __name__ == "__main__":
    main()

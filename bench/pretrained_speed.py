"""Imported codecs vs their reference implementations: encode throughput, same weights, same
clips, one process (issue 12).

For Meta EnCodec 24 kHz and DAC (44.1 kHz by default; full released widths, random weights):
- batch 1: one 5 s clip, ``encode`` each;
- batch 8: eight clips of 1.5-7 s. The reference runs them the only way that gives each
  clip its own codes, one call per clip ("loop"), and also as one zero-padded call
  ("padded", what batching tools do; its codes differ from the lone ones for DAC, see
  docs/models.md). Ours runs one ``encode(wav, lengths)`` call, exact.
- peak RSS growth of ours tokenizing one 10-minute file (the tokenizer's chunked path).

The reference packages are not dependencies: point ``ACADEMICODEC_REFERENCE_SITE`` at the
site-packages of the throwaway venv made for the fixtures (tests/fixtures/pretrained). Without
them the script prints a "skipped" line and exits 0.

    ACADEMICODEC_REFERENCE_SITE=/tmp/refvenv/lib/python3.11/site-packages \
        .venv/bin/python bench/pretrained_speed.py

Last line: ratios ``batch1`` and ``batch8`` (reference time / ours; >= 1.0 and >= 1.5 are
the targets), per model.

``--device cuda``: on a GPU, both models' encoders at batch 1 / 8 / 64 of 5 s clips, fp32
and bf16 (autocast for the references, ``--precision bf16``'s numerics for ours), one-call;
ratios reference time / ours per batch and precision (goal at batch 64: >= 2). Wheels it
needs beyond the project's own dependencies (Python 3.12 manylinux, installed with
``--no-deps`` into the same target): ``encodec``, ``descript-audio-codec``,
``descript-audiotools``, ``einops``, ``argbind``, ``flatten-dict``, ``julius``, ``ffmpy``,
``importlib-resources``, ``randomname``, ``docstring-parser``, ``fire``, ``markdown2``,
``pyloudnorm``, ``scipy``, and a ``torchaudio`` stub (as ``_references`` makes).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
from common import best_time, report

from academicodec.memory import RssSampler
from academicodec.models.export import load_codec, save_codec
from academicodec.models.scheduling import GroupRunner

CLIP_SECONDS = 5.0
MIXED_SECONDS = (7.0, 1.5, 4.2, 2.6, 6.1, 3.3, 5.4, 2.0)


def _references() -> tuple[types.ModuleType, types.ModuleType] | str:
    site = os.environ.get("ACADEMICODEC_REFERENCE_SITE")
    if site:
        sys.path.append(site)  # after ours: our torch stays the one imported
    stub = types.ModuleType("torchaudio")  # encodec imports it, never calls it here
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules.setdefault("torchaudio", stub)
    try:
        import encodec
        from dac.model import dac
    except ImportError as exc:
        return f"reference packages not importable ({exc}); set ACADEMICODEC_REFERENCE_SITE"
    return encodec, dac


def _clip(seconds: float, rate: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voiced = np.sin(2 * np.pi * (120 + 20 * np.sin(3 * t)) * t) * (0.5 + 0.5 * np.sin(5 * t))
    return torch.from_numpy((0.3 * voiced + 0.01 * rng.standard_normal(len(t))).astype("float32"))


def _padded(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(c) for c in clips)
    wav = torch.stack([torch.nn.functional.pad(c, (0, longest - len(c))) for c in clips])
    return wav[:, None], torch.tensor([len(c) for c in clips])


def _compare(name: str, reference_encode, ours, rate: int, hop: int, repeats: int) -> dict:
    one = _clip(CLIP_SECONDS, rate, 0)[None, None]
    clips = [_clip(s, rate, i) for i, s in enumerate(MIXED_SECONDS)]
    wav, lengths = _padded(clips)

    def pad_to_hop(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, -x.shape[-1] % hop))

    with torch.no_grad(), GroupRunner() as runner:
        ref_one = best_time(lambda: reference_encode(pad_to_hop(one)), repeats)
        ours_one = best_time(lambda: ours.encode(one, runner=runner), repeats)
        ref_loop = best_time(
            lambda: [reference_encode(pad_to_hop(c[None, None])) for c in clips], repeats
        )
        ref_padded = best_time(lambda: reference_encode(pad_to_hop(wav)), repeats)
        ours_batch = best_time(lambda: ours.encode(wav, lengths, runner=runner), repeats)
    audio = sum(MIXED_SECONDS)
    return {
        "model": name,
        "batch1_rtf": {"reference": CLIP_SECONDS / ref_one, "ours": CLIP_SECONDS / ours_one},
        "batch8_rtf": {
            "reference_loop": audio / ref_loop,
            "reference_padded": audio / ref_padded,
            "ours": audio / ours_batch,
        },
        "batch1": ref_one / ours_one,
        "batch8": ref_loop / ours_batch,
        "batch8_vs_padded": ref_padded / ours_batch,
    }


GPU_BATCHES = (1, 8, 64)


def _gpu_compare(name: str, reference_encode, ours, rate: int, hop: int, device: str) -> dict:
    """Reference vs ours on ``device`` at each of ``GPU_BATCHES`` x 5 s, fp32 and bf16."""
    from academicodec.models.precision import numerics

    length = int(CLIP_SECONDS * rate) // hop * hop
    clip = _clip(CLIP_SECONDS, rate, 0)[:length].to(device)
    row: dict = {"model": name, "device": torch.cuda.get_device_name(0)}

    def timed(run) -> float:  # best of 3 after a warm-up, synchronised
        run()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(3):
            begin = time.perf_counter()
            run()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - begin)
        return best

    for precision in ("fp32", "bf16"):
        for batch in GPU_BATCHES:
            wav = clip.expand(batch, length)[:, None].contiguous()
            lengths = torch.full((batch,), length, device=device)
            with torch.inference_mode():
                with torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16"):
                    reference = timed(lambda: reference_encode(wav))  # noqa: B023
                with numerics(precision, device, autotune=True):
                    mine = timed(lambda: ours.encode(wav, lengths, one_call=True))  # noqa: B023
            audio = batch * length / rate
            row[f"{precision}_batch{batch}"] = {
                "reference_audio_s_per_s": round(audio / reference, 1),
                "ours_audio_s_per_s": round(audio / mine, 1),
                "ratio": round(reference / mine, 2),
            }
    return row


def _meta_encodec(encodec, folder: Path, repeats: int, device: str = "cpu") -> dict:
    reference = encodec.EncodecModel.encodec_model_24khz(pretrained=False).eval()
    reference.set_target_bandwidth(6.0)
    path = folder / "encodec_24khz.th"
    torch.save(reference.state_dict(), path)
    ours = load_codec(path)
    n_q = ours.resolve_n_q(kbps=6.0)

    def reference_encode(x: torch.Tensor) -> torch.Tensor:
        return reference.encode(x)[0][0]

    class Ours:  # 6 kbps, as the reference is set
        @staticmethod
        def encode(x, lengths=None, runner=None, one_call=None):
            return ours.encode(x, lengths, n_q, runner, one_call=one_call)

    if device != "cpu":
        reference.to(device)
        ours.to(device)
        return _gpu_compare("meta_encodec_24khz@6kbps", reference_encode, Ours, 24000, 320, device)
    return _compare("meta_encodec_24khz@6kbps", reference_encode, Ours, 24000, 320, repeats)


def _dac(dac, folder: Path, rate: int, repeats: int, device: str = "cpu") -> dict:
    kwargs = {
        44100: {},
        24000: {"encoder_rates": [2, 4, 5, 8], "decoder_rates": [8, 5, 4, 2], "n_codebooks": 32},
        16000: {"encoder_rates": [2, 4, 5, 8], "decoder_rates": [8, 5, 4, 2], "n_codebooks": 12},
    }[rate]
    reference = dac.DAC(sample_rate=rate, **kwargs).eval()
    path = folder / f"weights_{rate}.pth"
    reference.save(str(path), package=False)
    ours = load_codec(path)

    def reference_encode(x: torch.Tensor) -> torch.Tensor:
        return reference.encode(x)[1]

    if device != "cpu":
        reference.to(device)
        ours.to(device)
        hop = reference.hop_length
        return _gpu_compare(f"dac_{rate}", reference_encode, ours, rate, hop, device)
    return _compare(f"dac_{rate}", reference_encode, ours, rate, reference.hop_length, repeats)


def _ten_minutes(folder: Path, model: Path) -> dict:
    """Peak RSS growth while the tokenizer encodes one 10-minute file (chunked), and the
    part of it due to the length: minus the peak of a 10-second file (model loading, the
    allocator's pools). Each in a fresh process: measured one after the other in one
    process, the second reused the first's freed pages, and the figure moved by hundreds
    of MB with the order (569 MB one run, 378 MB another)."""
    import subprocess

    import soundfile as sf

    peaks = {}
    for name, repeats in (("short", 1), ("long", 60)):
        audio = folder / name / "talk.wav"
        audio.parent.mkdir()
        sf.write(audio, np.tile(_clip(10.0, 24000, 3).numpy(), repeats), 24000, subtype="PCM_16")
        command = [sys.executable, __file__, "--rss-of-tokenize", str(model), str(audio.parent),
                   str(folder / f"codes_{name}")]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        peaks[name] = float(done.stdout.split()[-1])
    return {
        "ten_minute_file_peak_rss_growth_mb": round(peaks["long"], 1),
        "ten_minute_file_growth_beyond_10s_file_mb": round(peaks["long"] - peaks["short"], 1),
    }


def _rss_of_tokenize(model: str, folder: str, out: str) -> None:
    """(A child of ``_ten_minutes``.) Prints the peak RSS growth of one tokenize call, MB."""
    from academicodec.tokenizer.run import TokenizeSettings, tokenize

    with RssSampler() as rss:
        tokenize(model, [Path(folder)], Path(out), TokenizeSettings(workers=0))
    print(rss.growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dac-rate", type=int, default=44100, choices=(16000, 24000, 44100))
    parser.add_argument("--skip-long", action="store_true", help="no 10-minute file")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: batch 1/8/64, bf16")
    parser.add_argument("--rss-of-tokenize", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of_tokenize:
        _rss_of_tokenize(*args.rss_of_tokenize)
        return
    torch.manual_seed(0)
    found = _references()
    if isinstance(found, str):
        report({"bench": "pretrained_speed", "skipped": found})
        return
    encodec, dac = found
    if args.device != "cpu":
        with tempfile.TemporaryDirectory() as tmp:
            rows = [
                _meta_encodec(encodec, Path(tmp), args.repeats, args.device),
                _dac(dac, Path(tmp), args.dac_rate, args.repeats, args.device),
            ]
        ratios = {
            f"{row['model']}_{key}": value["ratio"]
            for row in rows
            for key, value in row.items()
            if isinstance(value, dict)
        }
        for row in rows:
            print(json.dumps(row))
        report({"bench": "pretrained_speed", "device": args.device, **ratios})
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [_meta_encodec(encodec, folder, args.repeats)]
        memory = {}
        if not args.skip_long:  # from the export, as tokenize is run (docs/models.md)
            save_codec(load_codec(folder / "encodec_24khz.th"), folder / "encodec24k")
            memory = _ten_minutes(folder, folder / "encodec24k")
        rows.append(_dac(dac, folder, args.dac_rate, args.repeats))
    for row in rows:
        print(json.dumps(row))
    ratios = {f"{row['model']}_{k}": round(row[k], 3) for row in rows for k in ("batch1", "batch8")}
    report({"bench": "pretrained_speed", **ratios, **memory})


if __name__ == "__main__":
    main()

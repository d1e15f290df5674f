"""Evaluation plots (matplotlib, no display): log-mel spectrograms of originals and
reconstructions, per-codebook usage histograms, metric-vs-n_q curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from academicodec.evaluation.summary import EvalSummary
from academicodec.ids import key_safe
from academicodec.models import CodecModel
from academicodec.models.mel import MelSpectrogram

USAGE_BARS = 256  # a codebook's usage plot: codes summed into at most this many bars


def write_plots(
    folder: Path,
    model: CodecModel,
    examples: list[tuple[str, np.ndarray, np.ndarray]],
    codes_by_level: dict[int, list[np.ndarray]],
    summary: EvalSummary,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    mel = MelSpectrogram(model.sample_rate, 1024, 256, n_mels=80)
    for item_id, original, reconstruction in examples:
        fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        for axis, audio, title in ((axes[0], original, "original"),
                                   (axes[1], reconstruction, "reconstruction")):  # fmt: skip
            spec = mel(torch.from_numpy(np.ascontiguousarray(audio))[None])[0].numpy()
            axis.imshow(spec, origin="lower", aspect="auto", cmap="magma")
            axis.set_title(f"{item_id}: {title} (log-mel)")
            axis.set_ylabel("mel bin")
        axes[1].set_xlabel("frame")
        fig.tight_layout()
        written.append(_save(fig, folder / f"mel_{key_safe(item_id)}.png", plt))
    top = max(codes_by_level)
    codes = np.concatenate(codes_by_level[top])
    fig, axes = plt.subplots(1, codes.shape[1], figsize=(3 * codes.shape[1], 3), squeeze=False)
    for k in range(codes.shape[1]):
        counts = np.bincount(codes[:, k].astype(np.int64), minlength=model.codebook_size)
        # One filled outline of at most USAGE_BARS bars (codes summed in runs): a bar per
        # code is a matplotlib patch each (X-Codec2's 65,536 took 86 s to draw) and thinner
        # than a pixel at this size.
        width = -(-len(counts) // USAGE_BARS)
        summed = np.add.reduceat(counts, np.arange(0, len(counts), width))
        axes[0][k].stairs(summed, np.arange(len(summed) + 1) * width - 0.5, fill=True)
        used = (counts > 0).mean()
        axes[0][k].set_title(f"codebook {k}: {used:.0%} used" if used >= 0.1 else
                             f"codebook {k}: {used:.2%} used")  # fmt: skip
        axes[0][k].set_xlabel("code" if width == 1 else f"code ({width} a bar)")
    fig.tight_layout()
    written.append(_save(fig, folder / "codebook_usage.png", plt))
    if len(summary.levels) > 1:
        levels = sorted(summary.levels.items(), key=lambda kv: int(kv[0]))
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        for axis, metric in zip(axes, ("pesq_wb", "stoi", "si_sdr"), strict=True):
            points = [
                (int(n), level.overall[metric].mean)
                for n, level in levels
                if level.overall[metric].count
            ]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o")
            axis.set_xlabel("n_q (codebooks)")
            axis.set_title(metric)
        fig.tight_layout()
        written.append(_save(fig, folder / "metrics_vs_n_q.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

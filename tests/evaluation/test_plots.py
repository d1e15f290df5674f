"""Eval's plots stay one drawing per codebook whatever its size (X-Codec2: 65,536 codes)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from academicodec.evaluation import plots
from academicodec.evaluation.summary import EvalSummary


def test_a_large_codebooks_usage_is_summed_into_a_few_bars(tmp_path: Path, monkeypatch) -> None:
    drawn = []

    def keep(fig, path, plt):  # type: ignore[no-untyped-def]
        drawn.append((path.name, [axis for axis in fig.axes]))
        return path

    monkeypatch.setattr(plots, "_save", keep)
    model = SimpleNamespace(sample_rate=16000, codebook_size=65536)
    codes = np.array([[0], [1], [1], [65535], [40000]])  # [frames, codebooks]
    summary = EvalSummary.__new__(EvalSummary)
    object.__setattr__(summary, "levels", {"1": None})
    plots.write_plots(tmp_path, model, [], {1: [codes]}, summary)

    ((name, axes),) = drawn
    assert name == "codebook_usage.png"
    outline = axes[0].patches
    assert len(outline) == 1, "one filled outline, not a patch per code"
    heights, edges = outline[0].get_data().values, outline[0].get_data().edges
    assert len(heights) == plots.USAGE_BARS and heights.sum() == len(codes)
    assert edges[0] == -0.5 and edges[-1] >= 65535
    assert heights[0] == 3  # codes 0, 1, 1 share the first bar of 256 codes
    assert "0.01% used" in axes[0].get_title() and "256 a bar" in axes[0].get_xlabel()

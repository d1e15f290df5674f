"""An imported Meta EnCodec model through the stages a VALL-E user runs (issue 12):
``import`` -> ``tokenize --bandwidth`` (all three formats) -> ``eval``."""

import json
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet

from academicodec.models import load_codec
from academicodec.tokenizer.readers import CodesDataset, iter_parquet, iter_shar
from tests.helpers import REPO, run_cli

META = REPO / "tests" / "fixtures" / "pretrained" / "meta_encodec_small.th"


def test_imported_encodec_tokenizes_every_format_and_evaluates(
    corpus: Path, tmp_path: Path
) -> None:
    model_dir, codes_dir, eval_dir = tmp_path / "encodec", tmp_path / "codes", tmp_path / "eval"
    steps = [
        ("import", str(META), str(model_dir)),
        ("tokenize", str(corpus), str(codes_dir), "-m", str(model_dir),
         "--format", "webdataset,shar,parquet", "--bandwidth", "1.8"),
        ("eval", str(corpus), str(eval_dir), "-m", str(model_dir), "--bandwidth", "1.8",
         "--n-q", "8", "--max-items", "4"),
    ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, f"{step[0]}: {result.stderr}"

    index = json.loads((codes_dir / "index.json").read_text())
    assert index["num_codebooks"] == 4 and index["frame_rate"] == 75
    assert set(index["formats"]) == {"webdataset", "shar", "parquet"}
    expected_ids = {c.id for c in CutSet.from_file(next(corpus.glob("*_cuts_*")))}
    web = {meta["id"]: codes for codes, _, meta in CodesDataset(codes_dir, rank=0, world_size=1)}
    shar = {meta["id"]: codes for codes, _, meta in iter_shar(codes_dir)}
    parquet = {meta["id"]: codes for codes, _, meta in iter_parquet(codes_dir)}
    assert set(web) == set(shar) == set(parquet) == expected_ids
    model = load_codec(model_dir)
    for item_id, codes in web.items():
        assert codes.shape[1] == 4 and codes.min() >= 0 and codes.max() < model.codebook_size
        assert np.array_equal(codes, shar[item_id]) and np.array_equal(codes, parquet[item_id])

    summary = json.loads((eval_dir / "summary.json").read_text())
    assert set(summary["levels"]) == {"4", "8"}
    for level in summary["levels"].values():
        overall = level["overall"]
        assert np.isfinite(overall["pesq_wb"]["mean"]) and np.isfinite(overall["stoi"]["mean"])
    assert summary["levels"]["4"]["kbps"] == pytest.approx(1.8)


def test_bad_bandwidth_and_n_q_are_one_line_errors(corpus: Path, tmp_path: Path) -> None:
    for extra, message in [
        (("--bandwidth", "6"), "--bandwidth 6: not a bitrate of this model"),
        (("--n-q", "9"), "--n-q 9: this model takes 1..8 codebooks"),
        (("--n-q", "2", "--bandwidth", "0.9"), "not both"),
    ]:
        result = run_cli("tokenize", str(corpus), str(tmp_path / "o"), "-m", str(META), *extra)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr

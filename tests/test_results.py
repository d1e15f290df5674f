"""Typed results (issue 14): written and read through one place, round-trip exactly, and a
format_version this version cannot read is a one-line error naming the file."""

import json
from pathlib import Path

import pytest

from academicodec.errors import UserError
from academicodec.evaluation.summary import (
    CodebookStats,
    EvalSummary,
    LevelSummary,
    MetricStats,
)
from academicodec.pipelines.index import ShardIndex, ShardRecord
from academicodec.tokenizer.index import CodesIndex, CodesShard, CodesTotals, TokenizeReport
from tests.helpers import run_cli

SHARDS = ShardIndex(16000, "flac", 2, "plan", [ShardRecord("shard-000000.tar", 2, 1.5, 10, "ab")])
CODES = CodesIndex(
    model="m", preset="tiny", checkpoint_sha256="cd", num_codebooks=4, codebook_size=64,
    frame_rate=50.0, sample_rate=16000, hop_length=320, plan="p",
    formats={"webdataset": [CodesShard(0, "webdataset/a.tar", ["webdataset/a.tar"], 2, 9, "ef")]},
    totals=CodesTotals(2, 1.5, 1), skipped=[{"id": "x", "reason": "empty audio"}],
    precision="bf16", compile=False, device_type="cpu", torch_version="2.13.0",
)  # fmt: skip
LEVEL = LevelSummary(
    kbps=2.0, codes_equal_to_fp32=1.0, entropy_bits_per_frame=20.0, entropy_coded_kbps=1.0,
    codebooks=CodebookStats([5.0], [32.0], [0.5]),
    overall={"stoi": MetricStats(2, 0.9, 0.9, 0.01), "pesq_wb": MetricStats(0)},
    by_corpus={"folder": {"stoi": MetricStats(2, 0.9, 0.9, 0.01)}},
)  # fmt: skip
SUMMARY = EvalSummary("tiny", "fp32", 16000, 50.0, 64, 2, {"4": LEVEL}, [])


@pytest.mark.parametrize(
    "result", [SHARDS, CODES, TokenizeReport([], 1.0, 2.0), SUMMARY], ids=lambda r: r.KIND
)
def test_round_trip_and_unknown_versions(result, tmp_path: Path) -> None:
    path = result.write(tmp_path / "r.json") if not isinstance(result, ShardIndex) else (
        result.write(tmp_path)
    )  # fmt: skip
    data = json.loads(path.read_text())
    assert data["format_version"] == result.FORMAT_VERSION
    assert type(result).read(path) == result
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as error:
        type(result).read(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "format_version 99" in message
    path.write_text("{not json")
    with pytest.raises(UserError, match=f"is not a valid {result.KIND}"):
        type(result).read(path)


def test_statistics_keep_their_json_shape() -> None:
    """summary.json stays as documented: a metric defined nowhere is {"count": 0}."""
    overall = SUMMARY.to_dict()["levels"]["4"]["overall"]
    assert overall["pesq_wb"] == {"count": 0}
    assert overall["stoi"] == {"count": 2, "mean": 0.9, "median": 0.9, "ci95": 0.01}
    assert LEVEL.overall["pesq_wb"].mean_or_nan() != LEVEL.overall["pesq_wb"].mean_or_nan()


def test_a_version_one_codes_index_still_reads(tmp_path: Path) -> None:
    """Indexes written before precision was recorded read with it unknown."""
    data = {"format_version": 1, **CODES.to_dict()}
    for key in ("precision", "compile", "device_type", "torch_version"):
        del data[key]
    (tmp_path / "index.json").write_text(json.dumps(data))
    index = CodesIndex.read(tmp_path / "index.json")
    assert index.precision is None and index.totals.items == 2


def test_info_on_an_unreadable_version_is_one_line(tmp_path: Path) -> None:
    data = {**json.loads(CODES.to_json()), "format_version": 7}
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "index.json").write_text(json.dumps(data))
    (tmp_path / "codes" / "webdataset").mkdir()
    result = run_cli("info", str(tmp_path / "codes"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "format_version 7" in result.stderr


def test_prepare_commands_list_only_their_own_options() -> None:
    own = {
        "libritts": {"--parts"},
        "vctk": {"--mic"},
        "aishell": set(),
        "folder": {"--language"},
        "hf": {"--audio-column", "--text-column", "--id-column", "--language"},
    }
    every = set().union(*own.values())
    for corpus, options in own.items():
        text = run_cli("prepare", corpus, "--help").stdout
        assert "--jobs" in text and "--overwrite" in text, corpus
        assert {o for o in every if o in text} == options, corpus

"""The CLI end to end, in subprocesses, as a user runs it."""

import json
from pathlib import Path

import pytest

from academicodec.manifests.synthetic import make_libritts
from tests.helpers import plant_garbage, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_libritts(root / "LibriTTS", {"dev-clean": 4})
    plant_garbage(root / "LibriTTS" / "dev-clean" / "100" / "5000" / "100_5000_000099_000000.wav")
    return root


def test_prepare_then_shard(corpus: Path, tmp_path: Path) -> None:
    prepared = run_cli("prepare", "libritts", str(corpus), str(tmp_path / "m"), "--jobs", "2")
    assert prepared.returncode == 0, prepared.stderr
    assert "dev-clean" in prepared.stdout and "skipped 1 file" in prepared.stdout
    report = json.loads((tmp_path / "m" / "prepare_report.json").read_text())
    assert report["splits"]["dev-clean"]["recordings"] == 4

    strict = run_cli("prepare", "libritts", str(corpus), str(tmp_path / "m2"), "--strict")
    assert strict.returncode == 1

    sharded = run_cli(
        "shard", str(tmp_path / "m"), str(tmp_path / "s"), "--sample-rate", "16000",
        "--samples-per-shard", "3", "--jobs", "2",
    )  # fmt: skip
    assert sharded.returncode == 0, sharded.stderr
    assert "2 shard(s), 4 samples" in sharded.stdout
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert [s["samples"] for s in index["shards"]] == [3, 1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["prepare", "libritts", "{tmp}/missing", "{tmp}/out"], "{tmp}/missing does not exist"),
        (["prepare", "timit", "{corpus}", "{tmp}/out"], "unknown corpus 'timit'"),
        (["prepare", "vctk", "{corpus}", "{tmp}/out"], "is not a VCTK directory"),
        (["prepare", "libritts", "{corpus}", "{tmp}/afile/out"], "is not a writable directory"),
        (["prepare", "libritts", "{corpus}", "{tmp}/o", "--jobs", "0"], "--jobs"),
        (["shard", "{tmp}/none.jsonl.gz", "{tmp}/s", "-r", "16000"], "none.jsonl.gz does not"),
        (["shard", "{corpus}", "{tmp}/s", "-r", "16000"], "holds no cut manifests"),
        (["shard", "{tmp}/s", "-r", "16000"], "at least one MANIFEST"),
        (["shard", "{tmp}/x", "{tmp}/s", "-r", "16000", "--format", "ogg"], "--format"),
    ],
)
def test_bad_arguments_give_one_line(
    corpus: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "afile").write_text("a file, not a folder")
    (tmp_path / "x").mkdir()
    values = {"tmp": str(tmp_path), "corpus": str(corpus)}
    result = run_cli(*[a.format(**values) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected.format(**values) in lines[0]
    assert "Traceback" not in result.stderr


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("academicodec ")
    listing = run_cli("--help").stdout
    for command in ("prepare", "shard", "demo"):
        assert command in listing


@pytest.mark.slow
def test_demo(tmp_path: Path) -> None:
    wide = {"COLUMNS": "200"}  # the table's cells on one line each
    result = run_cli("demo", str(tmp_path / "demo"), "--no-espeak", "--train-steps", "20", env=wide)
    assert result.returncode == 0, result.stderr
    stages = (
        "corpus",
        "prepare libritts",
        "prepare folder",
        "shard",
        "train",
        "export",
        "tokenize",
        "decode",
        "codebooks",
    )
    for stage in stages:
        assert stage in result.stdout
    assert "used " in result.stdout and "perplexity " in result.stdout  # per-codebook use
    # Every output path printed whole on one line (the export is what --model needs next).
    lines = result.stdout.splitlines()
    assert f"  export: {tmp_path / 'demo' / 'model'}" in lines
    assert "The corpus is synthetic voiced signals." in result.stdout
    # The table says what was sharded and what eval scored.
    assert "28 samples of libritts dev-clean, folder all (test-clean held out)" in result.stdout
    assert "on held-out test-clean (8 clips the model never saw)" in result.stdout
    # Trained on the training splits (16 dev-clean + 12 folder clips) only ...
    index = json.loads((tmp_path / "demo" / "shards" / "index.json").read_text())
    assert index["totals"]["samples"] == 28
    assert (tmp_path / "demo" / "manifests" / "folder" / "prepare_report.json").is_file()
    codes = json.loads((tmp_path / "demo" / "codes" / "index.json").read_text())
    assert codes["totals"]["items"] == 28 and set(codes["formats"]) == {
        "webdataset",
        "shar",
        "parquet",
    }
    # named by item id; a folder corpus id's "/" is a sub-folder
    assert len(list((tmp_path / "demo" / "decoded").rglob("*.wav"))) == 28
    assert (tmp_path / "demo" / "run" / "checkpoints" / "last.pt").is_file()
    assert (tmp_path / "demo" / "model" / "model.safetensors").is_file()
    assert "eval" in result.stdout and "PESQ-WB" in result.stdout
    assert (tmp_path / "demo" / "eval" / "report.md").is_file()
    # ... and evaluated on held-out test-clean: no overlap with its training data.
    summary = json.loads((tmp_path / "demo" / "eval" / "summary.json").read_text())
    assert summary["items"] == 8 and summary["training_data_overlap"] is None
    # A re-run (espeak-ng asked for this time) reports the corpus it really has.
    again = run_cli("demo", str(tmp_path / "demo"), "--train-steps", "20")
    assert again.returncode == 0, again.stderr
    assert "The corpus is synthetic voiced signals." in again.stdout
    # A demo folder of an earlier layout is refused in one line, not resumed into.
    (tmp_path / "demo" / ".demo-layout").unlink()
    old = run_cli("demo", str(tmp_path / "demo"), "--train-steps", "20")
    assert old.returncode == 2 and "holds a demo of an earlier version" in old.stderr
    assert len(old.stderr.strip().splitlines()) == 1

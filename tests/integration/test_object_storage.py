"""Corpora and outputs on object storage (issue 14), against a real S3-compatible server that
the test starts on 127.0.0.1 (moto's threaded server; s3fs talks HTTP to it): shard ->
train -> tokenize with 2 ranks, all on the bucket, a rank killed mid-run and re-run gives
the uninterrupted run's objects byte for byte; eval reads and writes there; mistakes are one
line."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs
import torch

from academicodec.errors import UserError
from academicodec.evaluation import evaluate
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.pipelines.index import ShardIndex
from academicodec.tokenizer.index import CodesIndex
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from academicodec.training import RunOptions, export_run, train
from tests.helpers import run_cli
from tests.s3server import BUCKET, local_s3, put_corpus

ROOT = f"s3://{BUCKET}"


@pytest.fixture(scope="module")
def bucket() -> Iterator[s3fs.S3FileSystem]:
    with local_s3():
        yield s3fs.S3FileSystem()


@pytest.fixture(scope="module")
def corpus(bucket: s3fs.S3FileSystem, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus entirely in the bucket: audio under corpus/, manifests under manifests/
    whose recordings point at the audio's s3:// URLs. Returns the local twin's manifests."""
    root = tmp_path_factory.mktemp("bucket-corpus")
    make_folder(root / "src", 36, durations=(0.4, 1.0), rates=(16000,))
    prepare("folder", root / "src", root / "manifests")
    put_corpus(root / "src", root / "manifests")
    stored = gzip.decompress(bucket.cat_file(f"{BUCKET}/manifests/src_cuts_all.jsonl.gz"))
    assert f"{ROOT}/corpus/".encode() in stored and str(root).encode() not in stored
    return root / "manifests"


def _objects(bucket: s3fs.S3FileSystem, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` but the report (it holds wall-clock times)."""
    base = f"{BUCKET}/{prefix}"
    bucket.invalidate_cache()
    return {
        key[len(base) + 1 :]: bucket.cat_file(key)
        for key in bucket.find(base)
        if not key.endswith("tokenize_report.json")
    }


def _tokenize_rank(rank: int, out: str) -> subprocess.Popen:
    args = ["tokenize", f"{ROOT}/shards", out, "-m", f"{ROOT}/model", "--format",
            "webdataset,shar,parquet", "--items-per-shard", "3", "--workers", "0",
            "--batch-seconds", "2"]  # fmt: skip
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "academicodec", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def _both_ranks(out: str) -> None:
    processes = [_tokenize_rank(rank, out) for rank in (0, 1)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()[-3000:]


@pytest.mark.slow
def test_shard_train_tokenize_on_a_bucket_and_a_killed_rank_resumes(
    bucket: s3fs.S3FileSystem, corpus: Path, tmp_path: Path
) -> None:
    # shard, from manifests and audio in the bucket into the bucket (the CLI, as a user)
    result = run_cli("shard", f"{ROOT}/manifests", f"{ROOT}/shards", "-r", "16000",
                     "--samples-per-shard", "4")  # fmt: skip
    assert result.returncode == 0, result.stderr
    shards = ShardIndex.load(f"{ROOT}/shards")
    assert shards.total_samples == 36 and not shards.skipped
    local = write_shards([corpus], tmp_path / "shards", ShardSettings(16000, samples_per_shard=4))
    assert [s.sha256 for s in shards.shards] == [s.sha256 for s in local.shards]  # same bytes

    # train 5 steps reading the bucket (a forked DataLoader worker reads it too)
    torch.manual_seed(0)
    options = RunOptions(out=tmp_path / "run", data=f"{ROOT}/shards", max_steps=5, workers=1,
                         ckpt_every=0, val_every=5, val_items=2, device="cpu")  # fmt: skip
    assert train("tiny_encodec_16k", options).step == 5
    bucket.put(str(export_run(tmp_path / "run", tmp_path / "model")), f"{BUCKET}/model",
               recursive=True)  # fmt: skip

    # tokenize with 2 ranks, uninterrupted
    _both_ranks(f"{ROOT}/whole")
    whole = _objects(bucket, "whole")
    index = CodesIndex.read(f"{ROOT}/whole/index.json")
    assert index.totals.items == 36 and {s.rank for s in index.formats["shar"]} == {0, 1}
    assert {name for name in whole if not name.startswith(".progress/")} == index.files() | {
        "index.json",
        ".plan.json",
    }

    # rank 1 killed (SIGKILL) once its first shard is recorded, then both ranks re-run
    killed = _tokenize_rank(1, f"{ROOT}/killed")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and killed.poll() is None:
        bucket.invalidate_cache()
        if bucket.glob(f"{BUCKET}/killed/.progress/*.json"):
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    partial = _objects(bucket, "killed")
    assert "index.json" not in partial and len(partial) < len(whole)
    _both_ranks(f"{ROOT}/killed")
    assert _objects(bucket, "killed") == whole
    assert not [key for key in bucket.find(BUCKET) if key.endswith(".tmp")]

    # the same OUT with other settings is refused, as on a disk
    with pytest.raises(UserError, match="other inputs or settings"):
        tokenize(f"{ROOT}/model", [f"{ROOT}/shards"], f"{ROOT}/whole",
                 TokenizeSettings(n_q=1, workers=0))  # fmt: skip


def test_windows_of_long_files_in_the_bucket_give_the_local_shards(
    bucket: s3fs.S3FileSystem, tmp_path: Path
) -> None:
    make_folder(tmp_path / "src", 4, durations=(2.5, 3.5), rates=(16000,))
    prepare("folder", tmp_path / "src", tmp_path / "manifests")
    put_corpus(tmp_path / "src", tmp_path / "manifests", f"{BUCKET}/long")
    settings = ShardSettings(16000, samples_per_shard=3, max_duration=0.7)
    local = write_shards([tmp_path / "manifests"], tmp_path / "shards", settings)
    remote = write_shards([f"{ROOT}/long/manifests"], f"{ROOT}/long/shards", settings)
    assert local.total_samples >= 16 and not remote.skipped  # every file cut into windows
    assert [s.sha256 for s in remote.shards] == [s.sha256 for s in local.shards]


def test_eval_reads_and_writes_the_bucket(
    bucket: s3fs.S3FileSystem, corpus: Path, tmp_path: Path
) -> None:
    from academicodec.models import build_codec, save_codec

    torch.manual_seed(0)
    save_codec(build_codec("tiny_encodec_16k"), tmp_path / "model")
    bucket.put(str(tmp_path / "model"), f"{BUCKET}/eval-model", recursive=True)
    summary = evaluate(f"{ROOT}/eval-model", [f"{ROOT}/manifests"], f"{ROOT}/eval", max_items=2)
    stored = json.loads(bucket.cat_file(f"{BUCKET}/eval/summary.json"))
    assert stored["items"] == summary.items == 2
    names = {key.rsplit("/", 1)[-1] for key in bucket.find(f"{BUCKET}/eval")}
    assert {"items.csv", "report.md", "summary.json", "codebook_usage.png"} <= names


def test_bucket_mistakes_are_one_line(bucket: s3fs.S3FileSystem, corpus: Path) -> None:
    settings = ShardSettings(16000)
    cases = [
        (lambda: write_shards([f"{ROOT}/manifests"], "s3://no-such-bucket/shards", settings),
         "could not write s3://no-such-bucket/shards/"),
        (lambda: write_shards([f"{ROOT}/nothing"], f"{ROOT}/out", settings),
         f"manifest {ROOT}/nothing does not exist"),
        (lambda: write_shards([f"{ROOT}/manifests"], f"{ROOT}/manifests", settings),
         "overlaps the input"),
        (lambda: write_shards([f"{ROOT}/manifests"], "nosuchscheme://x/y", settings),
         "nosuchscheme://x/y"),
        (lambda: prepare("folder", corpus, f"{ROOT}/prepared"),
         "prepare writes to a local folder"),
    ]  # fmt: skip
    for call, expected in cases:
        with pytest.raises(UserError) as error:
            call()
        assert expected in str(error.value) and "\n" not in str(error.value)

"""Faults at scale (issue 14): a rank killed with SIGKILL mid-shard/mid-tokenize leaves nothing
a re-run mistakes for complete (the re-run's output is the uninterrupted one), and a full
disk is a one-line error naming the file, with no completion record written."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec, save_codec
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.pipelines.tario import HashingWriter
from academicodec.tokenizer.run import TokenizeSettings, tokenize


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("faults")
    make_folder(root / "src", 48, durations=(0.4, 1.0), rates=(16000,))
    prepare("folder", root / "src", root / "manifests")
    torch.manual_seed(0)
    return root / "manifests", save_codec(build_codec("tiny_encodec_16k"), root / "model")


def _killed_after_first_record(args: list[str], out: Path) -> None:
    """Start ``academicodec ARGS``, SIGKILL it as soon as one unit is recorded."""
    process = subprocess.Popen(
        [sys.executable, "-m", "academicodec", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if list((out / ".progress").glob("*.json")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    assert not (out / "index.json").exists()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".progress" not in p.parts and ".inputs" not in p.parts
        and p.name not in ("tokenize_report.json",)
    }  # fmt: skip


def test_sigkill_mid_tokenize_then_rerun_gives_the_uninterrupted_output(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    manifests, model = data
    settings = TokenizeSettings(formats=("webdataset", "shar", "parquet"), items_per_shard=3,
                                workers=0, batch_seconds=2)  # fmt: skip
    tokenize(model, [manifests], tmp_path / "whole", settings)
    args = ["tokenize", str(manifests), str(tmp_path / "killed"), "-m", str(model),
            "--format", "webdataset,shar,parquet", "--items-per-shard", "3", "--workers", "0",
            "--batch-seconds", "2"]  # fmt: skip
    _killed_after_first_record(args, tmp_path / "killed")
    tokenize(model, [manifests], tmp_path / "killed", settings)
    assert _files(tmp_path / "killed") == _files(tmp_path / "whole")
    assert not list((tmp_path / "killed").rglob(".*.tmp"))  # no write left half-done


def test_sigkill_mid_shard_then_rerun_gives_the_uninterrupted_output(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    manifests, _ = data
    write_shards([manifests], tmp_path / "whole", ShardSettings(16000, samples_per_shard=2))
    args = ["shard", str(manifests), str(tmp_path / "killed"), "-r", "16000",
            "--samples-per-shard", "2"]  # fmt: skip
    _killed_after_first_record(args, tmp_path / "killed")
    write_shards([manifests], tmp_path / "killed", ShardSettings(16000, samples_per_shard=2))
    assert _files(tmp_path / "killed") == _files(tmp_path / "whole")


def _disk_full(self: HashingWriter, data: bytes) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_is_one_line_naming_the_file_and_records_nothing(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    manifests, model = data
    monkeypatch.setattr(HashingWriter, "write", _disk_full)
    with pytest.raises(UserError) as shard_error:
        write_shards([manifests], tmp_path / "shards", ShardSettings(16000, samples_per_shard=8))
    message = str(shard_error.value)
    assert "\n" not in message and "No space left on device" in message
    assert str(tmp_path / "shards" / "shard-000000.tar") in message
    # No completion record, no index (the plan's description, .plan.json, is no record).
    assert not list((tmp_path / "shards").rglob(".progress/*.json"))
    assert not (tmp_path / "shards" / "index.json").exists()
    assert not list((tmp_path / "shards").rglob("*.tmp"))

    with pytest.raises(UserError) as codes_error:
        tokenize(model, [manifests], tmp_path / "codes", TokenizeSettings(workers=0))
    message = str(codes_error.value)
    assert "\n" not in message and "No space left on device" in message
    assert "webdataset/codes-0-000000.tar" in message
    assert not list((tmp_path / "codes").rglob(".progress/*.json"))
    assert not (tmp_path / "codes" / "index.json").exists()

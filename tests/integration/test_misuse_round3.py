"""Issue 35's numbered cases, run through the CLI as a user would: exit 2 and one line
naming the file, option or key, nothing outside OUT changed, no half-made OUT (the helpers
of ``test_misuse``)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import checkpoint
from tests.helpers import REPO, run_cli
from tests.integration.test_misuse import refused, run

# world["shards"] holds 5 clips: batches of 2 (the preset's 8 would give no full batch)
TRAIN = ("train", "--preset", "tiny_hificodec_16k", "--workers", "0", "--max-steps", "1",
         "--set", "train.batch_size=2")  # fmt: skip


def test_a_single_value_option_given_twice_is_refused(capsys, world, tmp_path) -> None:  # 4
    out = tmp_path / "eval"
    line = refused(capsys, world, out, "eval", world["a"], out, "-m", world["model_a"],
                   "--model", world["model_b"], names="-m / --model is given 2 times")  # fmt: skip
    assert "give it once" in line
    refused(capsys, world, out, "tokenize", world["shards"], out, "-m", world["model_a"],
            "--n-q=2", "--n-q", "4", names="--n-q is given 2 times")  # fmt: skip
    # repeatable options stay repeatable
    sets = ("--set", "train.segment_length=3200")
    code, _, err = run(capsys, *TRAIN, "--data", world["shards"], "--out", tmp_path / "run", *sets)
    assert code == 0, err


def test_data_without_a_full_batch_is_refused_not_looped_over(capsys, world, tmp_path) -> None:
    out = tmp_path / "run"
    line = refused(capsys, world, out, *TRAIN[:-2], "--data", world["shards"], "--out", out,
                   names="gives no full batch: 5 samples an epoch per rank")  # fmt: skip
    assert "train.batch_size 8" in line


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("train.batch_size=0", "train.batch_size must be >= 1, not 0"),
        ("train.segment_length=0", "train.segment_length must be >= 1, not 0"),
        ("train.segment_length=100", "train.segment_length must be >= the hop (320"),
        ("train.lr=-1", "train.lr must be in (0, inf), not -1"),
        ("train.lr_decay=1.5", "train.lr_decay must be in (0, 1], not 1.5"),
        ("train.betas=[0.5,1.0]", "train.betas must be in [0, 1)"),
        ("train.mel_loss.hops=[0]", "train.mel_loss.hops must be >= 1"),
        ("train.loss_weights.mel=-2", "train.loss_weights.mel must be in [0, inf)"),
        ("train.discriminator.periods=[2,0]", "train.discriminator.periods must be >= 1"),
    ],
)
def test_preset_values_out_of_range_are_one_line_before_the_run(  # 6
    capsys, world, tmp_path, setting, names
) -> None:
    out = tmp_path / "run"
    line = refused(capsys, world, out, *TRAIN, "--data", world["shards"], "--out", out,
                   "--set", setting, names=names)  # fmt: skip
    assert line.startswith("error: --set ") and setting.split("=")[0] in line.split(": ")[1]


def test_chunks_and_buckets_out_of_range_are_refused(capsys, world, tmp_path) -> None:  # 2, 7
    out = tmp_path / "codes"
    refused(capsys, world, out, "tokenize", world["shards"], out, "-m", world["model_a"],
            "--max-chunk-seconds", "0.001",
            names="--max-chunk-seconds 0.001 is under 1 s")  # fmt: skip
    refused(capsys, world, out, "tokenize", world["shards"], out, "-m", world["model_a"],
            "--batching", "one-call", "--bucket-seconds", "1e6",
            names="--bucket-seconds 1e+06 is longer than --max-chunk-seconds 20")  # fmt: skip


def test_missing_bucket_credentials_are_one_line(world, tmp_path) -> None:  # 5
    env = {
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }  # fmt: skip
    done = run_cli("shard", str(world["a"]), "s3://nobody-bucket/x", "-r", "16000", env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: no credentials for s3://nobody"), lines
    assert "AWS_ACCESS_KEY_ID" in lines[0]


def test_launches_outside_torchrun_and_ranks_outside_the_world(  # 9, 11
    capsys, world, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "run"
    line = refused(capsys, world, out, *TRAIN, "--data", world["shards"], "--out", out,
                   names="MASTER_ADDR and MASTER_PORT are not set")  # fmt: skip
    assert "torchrun" in line
    monkeypatch.setenv("RANK", "3")
    out = tmp_path / "shards"
    refused(capsys, world, out, "shard", world["a"], out, "-r", "16000",
            names="rank 3 (RANK / SLURM_PROCID) is not in 0..1")  # fmt: skip


def test_info_on_audio_and_export_of_a_damaged_run(capsys, world, tmp_path) -> None:  # 10
    wav = next((world["root"] / "src_a").rglob("*.wav"))
    refused(capsys, world, None, "info", wav, names="is an audio file: info reads our outputs")
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, *TRAIN, "--data", world["shards"], "--out", run_dir)
    assert code == 0, err
    for path in (run_dir / "checkpoints").glob("*.pt"):
        path.write_bytes(path.read_bytes()[:1000])  # cut off while writing
    out = tmp_path / "model"
    line = refused(capsys, world, out, "export", run_dir, out, names="is damaged or unreadable")
    assert "last.pt" in line and "step_00000001.pt" in line


def test_two_corpora_under_one_name_are_refused_not_halved(capsys, world, tmp_path) -> None:  # 12
    for parent, seed in (("x", 0), ("y", 1)):
        make_folder(tmp_path / parent / "corpus", 3, seed=seed, durations=(0.4, 0.6))
        prepare("folder", tmp_path / parent / "corpus", tmp_path / f"m_{parent}")
    out = tmp_path / "shards"
    line = refused(capsys, world, out, "shard", tmp_path / "m_x", tmp_path / "m_y", out,
                   "-r", "16000", names="--name")  # fmt: skip
    assert "m_x" in line and "m_y" in line
    # the same manifests given twice are the same items: skipped as duplicates, as before
    code, _, err = run(capsys, "shard", tmp_path / "m_x", tmp_path / "m_x", out, "-r", "16000")
    assert code == 0, err


def test_a_file_moved_since_prepare_is_file_not_found(capsys, tmp_path) -> None:  # 13
    make_folder(tmp_path / "corpus", 3, durations=(0.4, 0.6))
    prepare("folder", tmp_path / "corpus", tmp_path / "manifests")
    moved = sorted((tmp_path / "corpus").rglob("*.wav"))[0]
    shutil.move(moved, tmp_path / moved.name)
    write_shards([tmp_path / "manifests"], tmp_path / "shards", ShardSettings(16000))
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    reasons = [s["reason"] for s in index["skipped"]]
    assert len(reasons) == 1 and f"file not found: {moved}" in reasons[0], reasons


def _state(step: int) -> checkpoint.TrainState:
    empty: dict = {}
    return checkpoint.TrainState(step, 0, 0, {"w": torch.ones(2)}, *[empty] * 7)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:  # 8
    checkpoint.save_state(_state(1), tmp_path, keep=3)
    before = (tmp_path / "last.pt").read_bytes()

    def full(*_: object, **__: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda _: usage(10, 10, 0))
    with pytest.raises(UserError, match=r"step_00000002.pt: No space left on device .*resume"):
        checkpoint.save_state(_state(2), tmp_path, keep=3)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_00000001.pt"]


def test_nan_audio_is_refused_per_item_by_every_stage(capsys, world, tmp_path) -> None:  # 1
    make_folder(tmp_path / "corpus", 3, durations=(0.4, 0.6))
    prepare("folder", tmp_path / "corpus", tmp_path / "manifests")
    victim = sorted((tmp_path / "corpus").rglob("*.wav"))[0]
    audio, rate = sf.read(victim, dtype="float32")
    audio[100:110] = np.nan
    sf.write(victim, audio, rate, subtype="FLOAT")  # float WAV: the one kind that holds NaN
    reason = "NaN or infinite samples (10 of"
    report = prepare("folder", tmp_path / "corpus", tmp_path / "again")
    assert [f.reason for f in report.skipped if f.path == str(victim)][0].startswith(reason)
    manifests = tmp_path / "manifests"  # made before: the NaN file is listed there
    code, _, err = run(capsys, "shard", manifests, tmp_path / "shards", "-r", "16000")
    assert code == 0, err
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    code, _, err = run(capsys, "tokenize", manifests, tmp_path / "codes", "-m", world["model_a"])
    assert code == 0, err
    codes = json.loads((tmp_path / "codes" / "index.json").read_text())
    code, _, err = run(capsys, "eval", manifests, tmp_path / "eval", "-m", world["model_a"])
    assert code == 0, err
    evaluation = json.loads((tmp_path / "eval" / "summary.json").read_text())
    for stage, skipped in (("shard", index), ("tokenize", codes), ("eval", evaluation)):
        reasons = [s["reason"] for s in skipped["skipped"]]
        assert len(reasons) == 1 and reason in reasons[0], (stage, reasons)
    assert index["totals"]["samples"] == 2


# --- 14: one live writer per OUT and rank ------------------------------------------------

HOLDER = """
import sys, time
from academicodec.outputs import claim_folder
claim_folder(sys.argv[1], sys.argv[2])
print("held", flush=True)
time.sleep(120)
"""


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for(path: Path, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not (path.is_file() and path.stat().st_size):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"no {what} after 120 s"
        time.sleep(0.1)


def test_a_second_live_train_on_one_run_is_refused(capsys, world, tmp_path) -> None:  # 14
    run_dir = tmp_path / "run"
    first = _start("-m", "academicodec", *TRAIN[:-4], "--max-steps", "100000",
                   "--data", str(world["shards"]), "--out", str(run_dir),
                   "--set", "train.batch_size=2", "--ckpt-every", "1")  # fmt: skip
    try:
        _wait_for(run_dir / "checkpoints" / "last.pt", first, "checkpoint")
        live = "is being written by another live process"
        line = refused(capsys, world, run_dir, *TRAIN, "--data", world["shards"],
                       "--out", run_dir, names=live)  # fmt: skip
        assert f"pid {first.pid}" in line and "academicodec train" in line, line
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()


def test_a_live_writer_blocks_its_rank_and_a_dead_ones_lock_is_taken_over(  # 14
    capsys, world, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "codes"
    holder = _start("-c", HOLDER, str(out), "tokenize")
    lock = out / ".writer-rank0.lock"
    try:
        _wait_for(lock, holder, "lock")
        tokenize = ("tokenize", world["shards"], out, "-m", world["model_a"])
        live = f"is being written by another live process (pid {holder.pid}"
        line = refused(capsys, world, out, *tokenize, names=live)
        assert "tokenize since" in line and "give this tokenize another OUT" in line
        # Another rank of the same OUT is a writer of its own (multi-rank tokenize).
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "1")
        code, _, err = run(capsys, *tokenize)
        assert code == 0, err
        monkeypatch.setenv("RANK", "0")
        refused(capsys, world, out, *tokenize, names=f"pid {holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without releasing anything
        holder.wait()
    assert lock.is_file()  # left behind by the killed holder
    code, _, err = run(capsys, *tokenize)
    assert code == 0, err
    assert not lock.exists()  # taken over, then released when tokenize returned


# --- framing of imported codecs --------------------------------------------------------------

FIXTURES = REPO / "tests" / "fixtures" / "pretrained"


@pytest.mark.parametrize(
    ("fixture", "default", "compat"),
    [
        ("meta_encodec_small.th", "zeros to a whole hop, ceil(T / hop) frames",
         "the encodec package's and transformers' framing"),
        ("hf_mimi_small", "moshi's framing", "transformers' framing"),
    ],
)  # fmt: skip
def test_import_and_info_say_which_framing_and_what_compat_changes(
    capsys, tmp_path, fixture, default, compat
) -> None:
    out = tmp_path / "model"
    code, said, err = run(capsys, "import", FIXTURES / fixture, out)
    assert code == 0, err
    line = next(x for x in said.splitlines() if x.startswith("framing: "))
    assert line.startswith(f"framing: {default}") and f"--set compat=true gives {compat}" in line
    code, said, err = run(capsys, "info", out, "--json")
    assert code == 0, err
    assert json.loads(said)["framing"] == line.removeprefix("framing: ")
    code, said, err = run(capsys, "import", FIXTURES / fixture, tmp_path / "compat",
                          "--set", "compat=true")  # fmt: skip
    assert code == 0, err
    assert f"framing: compat: {compat}" in said and "each item encoded alone" in said

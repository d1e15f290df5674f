"""The trainer: checkpoints, TensorBoard tags, export, exact resume, DDP on uneven shards."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import load_codec
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, export_run, train
from academicodec.training.checkpoint import load_state_file
from tests.helpers import run_cli

TINY = {"train.batch_size": 4, "train.segment_length": 4800}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 clips at 16 kHz in uneven shards of 5, 5, 4."""
    root = tmp_path_factory.mktemp("train-data")
    make_folder(root / "src", 14, durations=(0.5, 1.2))
    prepare("folder", root / "src", root / "manifests")
    write_shards([root / "manifests"], root / "shards", ShardSettings(16000, samples_per_shard=5))
    return root / "shards"


def _options(out: Path, shards: Path, **changes) -> RunOptions:
    values = dict(out=out, data=shards, max_steps=30, ckpt_every=10, val_every=15,
                  workers=0, val_items=2, device="cpu")  # fmt: skip
    values.update(changes)
    return RunOptions(**values)


def _tags(run: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return set(events.Tags()["scalars"]) | set(events.Tags()["audio"])


def test_thirty_steps_checkpoints_tensorboard_export(shards: Path, tmp_path: Path) -> None:
    state = train("tiny_hificodec_16k", _options(tmp_path / "run", shards), TINY)
    assert state.step == 30
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last.pt", "step_00000010.pt", "step_00000020.pt", "step_00000030.pt"]
    tags = _tags(tmp_path / "run")
    for tag in ("train/mel", "train/generator", "train/discriminator", "train/quantizer",
                "codebook/perplexity_0", "codebook/usage_3", "lr/generator", "val/mel_l1",
                "val/si_sdr", "perf/steps_per_s", "perf/data_wait_fraction"):  # fmt: skip
        assert tag in tags, tag
    assert any(t.startswith("val/") and t.endswith("/reconstruction") for t in tags)
    assert (tmp_path / "run" / "train.log").read_text().count("validation step") == 2

    export_run(tmp_path / "run", tmp_path / "export")
    model = load_codec(tmp_path / "export")
    with torch.no_grad():
        codes = model.encode(torch.randn(1, 1, 3200) * 0.1)
        assert model.decode(codes).shape == (1, 1, 3200)


def test_resume_is_exact(shards: Path, tmp_path: Path) -> None:
    """2N steps in one go == N steps, stop, N more steps (same RUN)."""
    whole = train("tiny_hificodec_16k", _options(tmp_path / "a", shards, max_steps=8), TINY)
    train("tiny_hificodec_16k", _options(tmp_path / "b", shards, max_steps=4), TINY)
    resumed = train("tiny_hificodec_16k", _options(tmp_path / "b", shards, max_steps=8), TINY)
    assert (resumed.step, resumed.epoch, resumed.batches_in_epoch) == (
        whole.step,
        whole.epoch,
        whole.batches_in_epoch,
    )
    assert resumed.scheduler_g == whole.scheduler_g
    for key, value in whole.generator.items():
        torch.testing.assert_close(resumed.generator[key], value, atol=1e-5, rtol=0, msg=key)


def _rank(rank: int, port: int, shards: str, out: str, result: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    options = _options(Path(out), Path(shards), max_steps=6, ckpt_every=3, val_every=0)
    state = train("tiny_encodec_16k", options, TINY)
    torch.save(state.generator, f"{result}.{rank}")


def test_two_gloo_ranks_on_uneven_shards(shards: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = (port, str(shards), str(tmp_path / "run"), str(tmp_path / "weights"))
    mp.start_processes(_rank, args=args, nprocs=2, start_method="spawn")  # a hang fails here
    first = torch.load(f"{tmp_path}/weights.0")
    second = torch.load(f"{tmp_path}/weights.1")
    for key in first:  # generator weights and EMA codebooks alike
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    assert load_state_file(tmp_path / "run" / "checkpoints" / "last.pt").step == 6


class Payload:  # a pickled object that weights-only loading must refuse
    pass


def test_checkpoints_with_pickled_objects_are_refused(tmp_path: Path) -> None:
    torch.save({"step": 1, "payload": Payload()}, tmp_path / "last.pt")
    with pytest.raises(UserError, match="cannot be loaded weights-only"):
        load_state_file(tmp_path / "last.pt")


def test_cli_train_and_export(shards: Path, tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    result = run_cli(
        "train", "--preset", "tiny_hificodec_16k", "--data", str(shards), "--out", run,
        "--max-steps", "3", "--workers", "0", "--set", "train.batch_size=2",
        "--set", "train.segment_length=3200", "--val-every", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "step 3" in result.stdout
    assert run_cli("export", run, str(tmp_path / "export")).returncode == 0
    missing = run_cli("train", "--preset", "tiny_hificodec_16k", "--data", str(shards),
                      "--out", str(tmp_path / "new"), "--resume")  # fmt: skip
    assert missing.returncode == 2 and "--resume" in missing.stderr


@pytest.mark.slow
def test_validation_mel_falls_in_300_steps(shards: Path, tmp_path: Path) -> None:
    """Generator-only (disc_start_step beyond the run) keeps this CPU test short."""
    from academicodec.models import build_codec, load_codec_config
    from academicodec.training.validation import validate

    overrides = {**TINY, "train.disc_start_step": 10_000, "train.lr": 1e-3}
    options = _options(tmp_path / "run", shards, max_steps=300, val_every=300, ckpt_every=300)
    torch.manual_seed(options.seed)  # the same initial weights the run starts from
    config = load_codec_config("tiny_hificodec_16k", overrides)
    before = validate(build_codec(config), options, config, torch.device("cpu"))["mel_l1"]
    train("tiny_hificodec_16k", options, overrides)
    line = next(
        line for line in (tmp_path / "run" / "train.log").read_text().splitlines()
        if "validation step 300" in line
    )  # fmt: skip
    after = float(line.split("mel_l1=")[1].split()[0])
    assert after <= 0.7 * before, f"validation mel L1 {before:.3f} -> {after:.3f}"


def test_nan_loss_stops_with_a_checkpoint(shards: Path, tmp_path: Path, monkeypatch) -> None:
    from academicodec.models import losses
    from academicodec.training import TrainingStopped

    real = losses.MultiResolutionMelLoss.forward

    def nan_after_two(self, reconstruction, target):  # type: ignore[no-untyped-def]
        value = real(self, reconstruction, target)
        nan_after_two.calls += 1
        return value * float("nan") if nan_after_two.calls > 2 else value

    nan_after_two.calls = 0
    monkeypatch.setattr(losses.MultiResolutionMelLoss, "forward", nan_after_two)
    options = _options(tmp_path / "run", shards, max_steps=10, val_every=0, ckpt_every=100)
    with pytest.raises(TrainingStopped, match="non-finite loss at step 3"):
        train("tiny_hificodec_16k", options, TINY)
    assert load_state_file(tmp_path / "run" / "checkpoints" / "last.pt").step == 3


def test_corrupt_last_checkpoint_falls_back(
    shards: Path, tmp_path: Path, caplog, monkeypatch
) -> None:
    from academicodec.training import loop

    options = _options(tmp_path / "run", shards, max_steps=4, ckpt_every=2, val_every=0)
    train("tiny_hificodec_16k", options, TINY)
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "last.pt").write_bytes(b"truncated garbage")
    (checkpoints / "step_00000004.pt").unlink()
    steps = []
    real = loop._train_step
    monkeypatch.setattr(loop, "_train_step", lambda *a, **k: steps.append(1) or real(*a, **k))
    resumed = train("tiny_hificodec_16k", options, TINY)
    assert resumed.step == 4 and len(steps) == 2  # continued from step 2, not from scratch
    assert "unusable" in caplog.text

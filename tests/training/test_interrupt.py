"""Ctrl-C as a user gives it: SIGINT to the whole process group (the trainer and its loader
workers) at several points of a step, then the same command again. The final weights,
codebooks and optimizer states must be bit-identical to an uninterrupted run's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from academicodec.training import RunOptions, train
from academicodec.training.checkpoint import load_state_file
from tests.helpers import first_difference

STEPS = 5
KILL_STEP = 2
OVERRIDES = {"train.batch_size": 4, "train.segment_length": 4800}

# Runs the CLI; with KILL_POINT set, sends SIGINT to its own process group once, in step
# KILL_STEP: before its forward, inside the generator's optimizer step, or after the step's
# codebook upkeep.
RUNNER = """
import os, signal, sys
from academicodec.training.upkeep import CodebookUpkeep
from academicodec.training.trainer import Trainer

point, at = os.environ.get("KILL_POINT"), int(os.environ.get("KILL_STEP", "0"))
trainers, fired = [], []

def due():  # the step under way is step `at`, and no signal was sent yet
    return not fired and trainers and trainers[0].step + 1 == at

def kill():
    fired.append(True)
    os.killpg(os.getpgrp(), signal.SIGINT)

def patch(owner, name, before=None, after=False):
    real = getattr(owner, name)
    def patched(self, *args):
        if before and before(self, *args):
            kill()
        out = real(self, *args)
        if after and due():
            kill()
        return out
    setattr(owner, name, patched)

real_init = Trainer.__init__
def init(self, *args):
    real_init(self, *args)
    trainers.append(self)
Trainer.__init__ = init
if point == "before":  # before the step's forward
    patch(Trainer, "train_step", before=lambda self, batch: due())
elif point == "during":  # inside the generator's optimizer step
    def arm(self, loss, module, optimizer):
        if module is self.model and due():
            real = optimizer.step
            def step(*args, **kwargs):
                del optimizer.step
                kill()
                return real(*args, **kwargs)
            optimizer.step = step
        return False
    patch(Trainer, "_step_if_finite", before=arm)
elif point == "after":  # after the optimizer steps and the codebook upkeep
    patch(CodebookUpkeep, "update", after=True)

from academicodec.cli import main
sys.argv = ["academicodec", *sys.argv[1:]]
main()
"""


def _interrupted(shards: Path, out: Path, workers: int, point: str):
    """The CLI in its own session (so the SIGINT reaches only it and its workers)."""
    script = out.parent / "runner.py"
    script.write_text(RUNNER)
    env = {**os.environ, "KILL_STEP": str(KILL_STEP)}
    env["KILL_POINT"] = point
    command = [
        sys.executable, str(script), "train", "--preset", "tiny_hificodec_16k",
        "--data", str(shards), "--out", str(out), "--max-steps", str(STEPS),
        "--workers", str(workers), "--device", "cpu", "--val-every", "0", "--ckpt-every", "0",
        *[arg for key, value in OVERRIDES.items() for arg in ("--set", f"{key}={value}")],
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, start_new_session=True
    )


def _resume(shards: Path, out: Path, workers: int):  # type: ignore[no-untyped-def]
    """The same command again, run in this process (no signal to isolate it from)."""
    options = RunOptions(out=out, data=shards, max_steps=STEPS, workers=workers, device="cpu",
                         val_every=0, ckpt_every=0)  # fmt: skip
    return train("tiny_hificodec_16k", options, OVERRIDES)


@pytest.fixture(scope="module")
def uninterrupted(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    runs = {}
    for workers in (0, 2):
        out = tmp_path_factory.mktemp(f"whole-{workers}") / "run"
        assert _resume(shards, out, workers).step == STEPS
        runs[workers] = out / "checkpoints" / "last.pt"
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("point", ["before", "during", "after"])
def test_ctrl_c_then_the_same_command_resumes_bit_identically(
    shards: Path, uninterrupted: dict[int, Path], tmp_path: Path, point: str, workers: int
) -> None:
    out = tmp_path / "run"
    stopped = _interrupted(shards, out, workers, point)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "interrupted: a checkpoint of step" in stopped.stderr, stopped.stderr[-2000:]
    # the step under way is finished and saved, whether the loader's workers died first
    assert load_state_file(out / "checkpoints" / "last.pt").step == KILL_STEP
    assert _resume(shards, out, workers).step == STEPS
    final = load_state_file(out / "checkpoints" / "last.pt")
    whole = load_state_file(uninterrupted[workers])
    assert final.step == whole.step == STEPS
    for part in ("generator", "discriminator", "optimizer_g", "optimizer_d", "upkeep"):
        difference = first_difference(getattr(final, part), getattr(whole, part), part)
        assert difference is None, difference
    assert (final.epoch, final.batches_in_epoch) == (whole.epoch, whole.batches_in_epoch)

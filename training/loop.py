"""``train``: start or resume a codec run (one process, or ``torchrun`` for DDP).

NCCL on GPU, gloo on CPU, picked from the device. A re-run of the same RUN folder resumes
from its last checkpoint, but only with the settings it was started with: the checkpoint
stores the resolved preset and the run options that shape results, and any difference is
refused with the changed keys named, unless ``override`` is set (then applied and logged).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from academicodec import distrib
from academicodec.config import to_dict
from academicodec.errors import UserError
from academicodec.models import load_codec_config
from academicodec.models.config import IMPORT_ONLY_FAMILIES, CodecConfig, codec_config_from_dict
from academicodec.outputs import claim_output, clear_folder
from academicodec.storage import Folder, Location
from academicodec.training.checkpoint import TrainState, load_latest
from academicodec.training.logs import RunLogger
from academicodec.training.precision import resolve_precision
from academicodec.training.provenance import data_identity
from academicodec.training.trainer import Trainer, TrainingStopped
from academicodec.writer_lock import stage_scope

LOG = logging.getLogger("academicodec.training")

# Run options that shape what a run computes; the rest (how long, how often to checkpoint,
# validate or log, where) may change between a run and its resumption.
RESULT_OPTIONS = ("data", "val", "seed", "precision", "workers", "val_items")


@dataclass(frozen=True)
class RunOptions:
    out: Path
    data: Location  # a shard folder or its index.json, local or a URL
    val: Location | None = None
    max_steps: int = 1000
    device: str = "auto"
    ckpt_every: int = 500
    val_every: int = 500
    log_every: int = 10
    keep: int = 3
    val_items: int = 8
    workers: int = 2
    allow_nan: bool = False  # never stop for non-finite steps in a row (each is still skipped)
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile's backend ("eager" in CPU tests)
    # auto: bf16 on CUDA, fp32 elsewhere; bf16 runs CPU autocast on a CPU (training/precision)
    precision: str = "auto"
    seed: int = 0
    # Resume even where the preset or RESULT_OPTIONS differ from the checkpoint's.
    override: bool = False
    # Start over: remove the run in ``out`` (checkpoints, logs, TensorBoard) first.
    overwrite: bool = False

    def settings(self) -> dict[str, Any]:
        """The options a checkpoint records and a resume compares (as plain strings). The
        data is recorded by identity (``data_identity``): the same shards by another path
        resume, other shards at the same path are refused."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        recorded = {
            name: None if values[name] is None else str(values[name]) for name in RESULT_OPTIONS
        }
        for name in ("data", "val"):
            if values[name] is not None:
                recorded[name] = data_identity(values[name])
        return recorded


@stage_scope
def train(
    preset: str | Path, options: RunOptions, overrides: dict[str, Any] | None = None
) -> TrainState:
    """Train (or resume) the run in ``options.out``; returns the final state."""
    config = load_codec_config(preset, overrides)
    if config.family in IMPORT_ONLY_FAMILIES:
        raise UserError(
            f"preset {config.name}: family {config.family} is for imported weights "
            "(academicodec import); it has no training recipe here - train an encodec, "
            "soundstream or hificodec preset"
        )
    data = [options.data] + ([options.val] if options.val is not None else [])
    _init_distributed(options.device)  # a launch without torchrun is refused before OUT
    claim_output(options.out, "train", data)
    if options.overwrite:
        if distrib.is_main():
            clear_folder(Folder.of(options.out))
        distrib.barrier()  # no rank may find the old checkpoints
    device = _device(options.device)
    options = replace(options, precision=resolve_precision(options.precision, device))
    checkpoints = options.out / "checkpoints"
    resumed = load_latest(checkpoints) if checkpoints.is_dir() else None
    if resumed is not None:
        config = _resumed_config(resumed, config, options, str(checkpoints / "last.pt"))
    trainer = Trainer(config, options, device)
    if resumed is not None:
        trainer.load_state_dict(resumed)
        if to_dict(config) != resumed.config:
            trainer.apply_optimizer_settings()
    logger = RunLogger(
        options.out, enabled=distrib.is_main(), total=options.max_steps, start=trainer.step
    )
    try:
        return trainer.fit(logger)
    finally:
        logger.close()


def _resumed_config(
    state: TrainState, requested: CodecConfig, options: RunOptions, source: str
) -> CodecConfig:
    """The config to resume with: the checkpoint's, unless this run asks for another one;
    then refuse, naming each change, or (``override``) apply and log the changes."""
    stored = codec_config_from_dict(state.config, source)
    changes = _differences(_flat(to_dict(stored)), _flat(to_dict(requested)))
    if state.options:  # checkpoints record their run options since the Trainer
        changes += _differences(
            {f"--{k.replace('_', '-')}": v for k, v in _by_identity(state.options).items()},
            {f"--{k.replace('_', '-')}": v for k, v in options.settings().items()},
        )
    if not changes:
        return stored
    listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes)
    if not options.override:
        raise UserError(
            f"{options.out} was started with other settings ({listed}): re-run with the "
            "original preset, --set and options to resume, add --override to resume with "
            "the new ones, --overwrite to start over, or pick another --out"
        )
    if distrib.is_main():
        LOG.warning("resuming %s with changed settings (--override): %s", options.out, listed)
    return requested


def _by_identity(recorded: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's options with its data by identity (checkpoints before identities
    recorded the path: that path's shards, as they are now, stand in)."""
    recorded = dict(recorded)
    for name in ("data", "val"):
        value = recorded.get(name)
        if value is not None and not value.startswith("shards "):
            with contextlib.suppress(UserError):  # gone: the comparison names the old path
                recorded[name] = data_identity(value)
    return recorded


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: list(data) if isinstance(data, tuple) else data}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [
        (key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _device(requested: str) -> torch.device:
    requested = distrib.check_device(requested, allow_auto=True)
    if requested == "cuda":
        return torch.device("cuda", distrib.local_rank())
    return torch.device(requested)


def _init_distributed(requested: str) -> None:
    """torchrun sets WORLD_SIZE/RANK/MASTER_*: join the group (NCCL on GPU, gloo on CPU)."""
    if distrib.world_size() <= 1 or dist.is_initialized():
        return
    unset = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if unset:  # torch would raise "MASTER_ADDR expected, but not set" from deep inside
        raise UserError(
            f"{distrib.world_source()} asks for {distrib.world_size()} training processes, "
            f"but {' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set: start "
            "them with torchrun (torchrun --nproc-per-node N -m academicodec train ...), or "
            "unset WORLD_SIZE and RANK to train in this one process"
        )
    cuda = torch.cuda.is_available() and requested != "cpu"
    if cuda:
        torch.cuda.set_device(distrib.local_rank())
    dist.init_process_group("nccl" if cuda else "gloo")


__all__ = ["RunOptions", "TrainingStopped", "train"]

"""The DDP codec trainer: the GAN loop of each family, resumable and observable.

One process, or ``torchrun --nproc-per-node N`` (NCCL on GPU, gloo on CPU, picked from
the device). Every rank reads a fixed number of batches per epoch from the shuffled shard
stream, so no rank ever waits on another; generator/discriminator steps, losses and
schedules come from the preset; bf16 autocast on CUDA (fp16 with a grad scaler optional).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from academicodec import distrib
from academicodec.config import to_dict
from academicodec.errors import UserError
from academicodec.models import CodecModel, build_codec, load_codec_config
from academicodec.models.config import CodecConfig, codec_config_from_dict
from academicodec.models.discriminators import Discriminators
from academicodec.models.layers import length_mask
from academicodec.models.losses import (
    LossBalancer,
    MultiResolutionMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from academicodec.pipelines import ShardIndex
from academicodec.pipelines.crops import RandomCrop, collate_crops
from academicodec.pipelines.readers import TrainingStream
from academicodec.training.checkpoint import (
    TrainState,
    capture_rng_all_ranks,
    load_latest,
    restore_rng,
    save_state,
)
from academicodec.training.logs import RunLogger
from academicodec.training.validation import validate

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    out: Path
    data: Path
    val: Path | None = None
    max_steps: int = 1000
    device: str = "auto"
    ckpt_every: int = 500
    val_every: int = 500
    log_every: int = 10
    keep: int = 3
    val_items: int = 8
    workers: int = 2
    allow_nan: bool = False
    compile: bool = False
    precision: str = "bf16"
    seed: int = 0


class TrainingStopped(RuntimeError):
    """A loss went NaN/inf; a checkpoint was written before stopping."""


def train(
    preset: str | Path, options: RunOptions, overrides: dict[str, Any] | None = None
) -> TrainState:
    """Train (or resume) the run in ``options.out``; returns the final state."""
    _init_distributed(options.device)
    device = _device(options.device)
    checkpoints = options.out / "checkpoints"
    resumed = load_latest(checkpoints) if checkpoints.is_dir() else None
    if resumed is not None:
        config = codec_config_from_dict(resumed.config, str(checkpoints))
    else:
        config = load_codec_config(preset, overrides)
    torch.manual_seed(options.seed)  # identical initial weights on every rank
    model = build_codec(config).to(device)
    discriminators = Discriminators(config.train.discriminator).to(device)
    opt_g, opt_d = _optimizer(model, config), _optimizer(discriminators, config)
    sched_g, sched_d = _scheduler(opt_g, config), _scheduler(opt_d, config)
    if options.precision not in ("bf16", "fp16", "fp32"):
        raise UserError(f"--precision must be bf16, fp16 or fp32, not {options.precision!r}")
    half = device.type == "cuda" and options.precision != "fp32"
    # bf16 needs no loss scaling; fp16 does (its gradients underflow without it).
    scaler = torch.amp.GradScaler("cuda", enabled=half and options.precision == "fp16")
    step, epoch, skip = 0, 0, 0
    if resumed is not None:
        model.load_state_dict(resumed.generator)
        discriminators.load_state_dict(resumed.discriminator)
        opt_g.load_state_dict(resumed.optimizer_g)
        opt_d.load_state_dict(resumed.optimizer_d)
        sched_g.load_state_dict(resumed.scheduler_g)
        sched_d.load_state_dict(resumed.scheduler_d)
        scaler.load_state_dict(resumed.scaler)
        step, epoch, skip = resumed.step, resumed.epoch, resumed.batches_in_epoch
        restore_rng(resumed.rng, distrib.rank())
    generator: nn.Module = model
    disc: nn.Module = discriminators
    if distrib.is_distributed():
        ids = [device.index] if device.type == "cuda" else None
        # EMA codebooks are synchronised by the quantizer itself, not by buffer broadcast.
        generator = DistributedDataParallel(model, ids, broadcast_buffers=False)
        disc = DistributedDataParallel(discriminators, ids, broadcast_buffers=False)
    if options.compile:
        generator = torch.compile(generator)

    loader, stream = _loader(config, options, device)
    mel_loss = MultiResolutionMelLoss(config.sample_rate, config.train.mel_loss).to(device)
    weights = config.train.loss_weights
    balancer = (
        LossBalancer(
            {
                "mel": weights.mel,
                "adversarial": weights.adversarial,
                "feature_matching": weights.feature_matching,
            }
        )  # fmt: skip
        if config.train.use_balancer
        else None
    )
    logger = RunLogger(options.out, enabled=distrib.is_main(), total=options.max_steps, start=step)
    state = lambda: _state(  # noqa: E731 - captured lazily at save time
        model, discriminators, opt_g, opt_d, sched_g, sched_d, scaler, config, step, epoch, skip
    )
    dtype = torch.float16 if options.precision == "fp16" else torch.bfloat16
    autocast = torch.autocast("cuda", dtype=dtype, enabled=half)
    try:
        while step < options.max_steps:
            stream.set_epoch(epoch)
            batches = iter(loader)
            for _ in range(skip):  # resume inside an epoch: the same data order as before
                next(batches, None)
            wait_started = time.perf_counter()
            for batch in batches:
                data_wait = time.perf_counter() - wait_started
                wav = batch["wav"].to(device, non_blocking=True)
                lengths = batch["lengths"].to(device, non_blocking=True)
                metrics = _train_step(
                    generator, disc, model, mel_loss, opt_g, opt_d, balancer, config,
                    wav, lengths, step, autocast, scaler,
                )  # fmt: skip
                step, skip = step + 1, skip + 1
                finite = all(math.isfinite(v) for v in metrics["train"].values())
                if not finite and not options.allow_nan:
                    _save(state(), checkpoints, options.keep)
                    raise TrainingStopped(f"non-finite loss at step {step}: {metrics['train']}")
                logger.step(step, metrics, data_wait, wav.shape[0], opt_g, opt_d, device)
                if options.val_every and step % options.val_every == 0:
                    logger.validation(step, validate(model, options, config, device))
                if options.ckpt_every and step % options.ckpt_every == 0:
                    _save(state(), checkpoints, options.keep)
                if step >= options.max_steps:
                    break
                wait_started = time.perf_counter()
            else:
                epoch, skip = epoch + 1, 0
                sched_g.step()
                sched_d.step()
        _save(state(), checkpoints, options.keep)
    finally:
        logger.close()
    return state()


def _train_step(
    generator: nn.Module,
    disc: nn.Module,
    model: CodecModel,
    mel_loss: MultiResolutionMelLoss,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    balancer: LossBalancer | None,
    config: CodecConfig,
    wav: torch.Tensor,
    lengths: torch.Tensor,
    step: int,
    autocast: Any,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    train = config.train
    weights = train.loss_weights
    with autocast:
        out = generator(wav, lengths)
    mask = length_mask(lengths, out.audio.shape[-1])
    fake = out.audio.float() * mask
    real = wav * mask
    adversarial_on = step >= train.disc_start_step
    losses: dict[str, float] = {}
    if adversarial_on:
        real_logits, _ = disc(real)
        fake_logits, _ = disc(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, train.adversarial_loss)
        opt_d.zero_grad(set_to_none=True)
        _step(d_loss, disc, opt_d, train.grad_clip, scaler)
        losses["discriminator"] = d_loss.item()
    mel = mel_loss(fake, real)
    terms = {"mel": mel}
    if adversarial_on:
        fake_logits, fake_maps = disc(fake)
        with torch.no_grad():
            _, real_maps = disc(real)
        terms["adversarial"] = generator_adversarial_loss(fake_logits, train.adversarial_loss)
        terms["feature_matching"] = feature_matching_loss(real_maps, fake_maps)
    opt_g.zero_grad(set_to_none=True)
    if balancer is not None:  # the balancer normalises gradients itself: no loss scaling
        total = balancer.backward(terms, fake)
        (weights.quantizer * out.quantizer_loss).backward()
        _clip(model, train.grad_clip)
        opt_g.step()
    else:
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        total = total + weights.quantizer * out.quantizer_loss
        _step(total, model, opt_g, train.grad_clip, scaler)
    losses.update({name: float(value.item()) for name, value in terms.items()})
    losses["quantizer"] = float(out.quantizer_loss.item())
    losses["generator"] = float(total.item())
    return {
        "train": losses,
        "perplexity": out.perplexity.detach().float().cpu().tolist(),
        "usage": out.usage.detach().float().cpu().tolist(),
    }


def _step(
    loss: torch.Tensor,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    clip: float | None,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """Backward, clip, step - through the fp16 grad scaler when one is enabled."""
    if scaler is None or not scaler.is_enabled():
        loss.backward()
        _clip(module, clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    _clip(module, clip)
    scaler.step(optimizer)
    scaler.update()


def _clip(module: nn.Module, limit: float | None) -> None:
    if limit:
        torch.nn.utils.clip_grad_norm_(module.parameters(), limit)


def _optimizer(module: nn.Module, config: CodecConfig) -> torch.optim.Optimizer:
    train = config.train
    kind = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    return kind(
        module.parameters(), lr=train.lr, betas=train.betas, weight_decay=train.weight_decay
    )


def _scheduler(optimizer: torch.optim.Optimizer, config: CodecConfig) -> Any:
    gamma = config.train.lr_decay if config.train.scheduler == "exponential" else 1.0
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def _loader(config: CodecConfig, options: RunOptions, device: torch.device):
    index = ShardIndex.load(options.data)
    if index.sample_rate != config.sample_rate:
        raise UserError(
            f"--data {options.data} holds {index.sample_rate} Hz audio but {config.name} runs "
            f"at {config.sample_rate} Hz: shard again with --sample-rate {config.sample_rate}"
        )
    segment = config.train.segment_length
    stream = TrainingStream(
        options.data, seed=options.seed, shuffle_buffer=64, transform=RandomCrop(segment)
    )
    loader = DataLoader(
        stream,
        batch_size=config.train.batch_size,
        num_workers=options.workers,
        collate_fn=partial(collate_crops, segment_length=segment),
        drop_last=True,
        pin_memory=device.type == "cuda",
    )
    return loader, stream


def _state(
    model: CodecModel, discriminators: nn.Module, opt_g: Any, opt_d: Any, sched_g: Any,
    sched_d: Any, scaler: Any, config: CodecConfig, step: int, epoch: int, skip: int,
) -> TrainState:  # fmt: skip
    return TrainState(
        step=step,
        epoch=epoch,
        batches_in_epoch=skip,
        generator=model.state_dict(),
        discriminator=discriminators.state_dict(),
        optimizer_g=opt_g.state_dict(),
        optimizer_d=opt_d.state_dict(),
        scheduler_g=sched_g.state_dict(),
        scheduler_d=sched_d.state_dict(),
        scaler=scaler.state_dict(),
        config=to_dict(config),
        rng=capture_rng_all_ranks(),
    )


def _save(state: TrainState, folder: Path, keep: int) -> None:
    if distrib.is_main():
        save_state(state, folder, keep)
    distrib.barrier()


def _device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        if requested == "cuda":
            return torch.device("cuda", distrib.local_rank())
    return torch.device(requested)


def _init_distributed(requested: str) -> None:
    """torchrun sets WORLD_SIZE/RANK/MASTER_*: join the group (NCCL on GPU, gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    cuda = torch.cuda.is_available() and requested != "cpu"
    if cuda:
        torch.cuda.set_device(distrib.local_rank())
    dist.init_process_group("nccl" if cuda else "gloo")

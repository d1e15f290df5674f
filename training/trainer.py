"""``Trainer``: one object holding every piece of a codec training run's state.

In the spirit of audiocraft's solvers and DAC's ``State``: ``__init__`` sets the run up,
``train_step(batch)`` does one GAN step, ``validate()`` scores held-out utterances,
``state_dict()``/``load_state_dict()`` are what a checkpoint holds, and ``fit()`` is the loop.
The model stays pure: codebook upkeep (init, EMA, restarts) and quantizer dropout draws are
made here and passed in, and every collective is issued here, not inside ``forward``.
"""

from __future__ import annotations

import inspect
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from academicodec import distrib
from academicodec.config import to_dict
from academicodec.errors import Interrupted, UserError
from academicodec.models import build_codec
from academicodec.models.config import CodecConfig
from academicodec.models.layers import length_mask
from academicodec.pipelines import ShardIndex
from academicodec.pipelines.crops import RandomCrop, collate_crops
from academicodec.pipelines.readers import TrainingStream
from academicodec.training.checkpoint import (
    TrainState,
    capture_rng_all_ranks,
    restore_rng,
    save_state,
)
from academicodec.training.discriminators import Discriminators
from academicodec.training.logs import RunLogger
from academicodec.training.losses import (
    LossBalancer,
    MultiResolutionMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from academicodec.training.precision import resolve_precision, training_autocast
from academicodec.training.provenance import data_provenance
from academicodec.training.upkeep import CodebookUpkeep
from academicodec.training.validation import validate

if TYPE_CHECKING:
    from academicodec.training.loop import RunOptions


class TrainingStopped(UserError):
    """Too many consecutive steps had non-finite losses or gradients; the weights of the
    last good step were checkpointed before stopping."""


@dataclass
class BadSteps:
    """Steps whose updates were skipped because a loss or a gradient was not finite."""

    total: int = 0
    consecutive: int = 0
    last: bool = False  # the step just taken was skipped

    def record(self, applied: bool) -> None:
        self.last = not applied
        self.total += self.last
        self.consecutive = self.consecutive + 1 if self.last else 0


class InterruptFlag:
    requested = False


@contextmanager
def interrupt_flag() -> Iterator[InterruptFlag]:
    """SIGINT sets a flag (the loop checkpoints after the step under way) instead of
    raising mid-step, where optimizer state could be half updated; a second SIGINT
    raises at once. Only the main thread can own a signal handler: elsewhere, nothing."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    """A codec, its discriminators, optimizers, schedules, data position and logs."""

    def __init__(self, config: CodecConfig, options: RunOptions, device: torch.device) -> None:
        self.config, self.device = config, device
        self.precision = resolve_precision(options.precision, device)
        self.options = options = replace(options, precision=self.precision)
        self.data = data_provenance(options.data)
        torch.manual_seed(options.seed)  # identical initial weights on every rank
        self.model = build_codec(config).to(device)
        self.discriminators = Discriminators(config.train.discriminator).to(device)
        if device.type == "cuda":  # 2-D convs without NCHW<->NHWC transposes around them
            self.discriminators.use_channels_last()
        self.opt_g, self.opt_d = (
            _optimizer(self.model, config, device),
            _optimizer(self.discriminators, config, device),
        )
        self.sched_g, self.sched_d = _scheduler(self.opt_g, config), _scheduler(self.opt_d, config)
        # bf16 needs no loss scaling; fp16 does (its gradients underflow without it).
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.autocast = partial(training_autocast, self.precision, device)
        self.mel_loss = MultiResolutionMelLoss(config.sample_rate, config.train.mel_loss).to(device)
        weights = config.train.loss_weights
        self.balancer = (
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
        self.upkeep = CodebookUpkeep(self.model.quantizer, config.codebooks, seed=options.seed)
        self.step = self.epoch = self.batches_in_epoch = 0
        self.bad_steps = BadSteps()
        self.generator: nn.Module = self.model
        self.disc: nn.Module = self.discriminators
        if distrib.is_distributed():
            ids = [device.index] if device.type == "cuda" else None
            # Codebooks are synchronised by the upkeep, not by DDP's buffer broadcast.
            self.generator = DistributedDataParallel(self.model, ids, **_no_buffer_sync())
            self.disc = DistributedDataParallel(self.discriminators, ids, **_no_buffer_sync())
        # The discriminators as the generator's losses call them (no DDP: no gradients there).
        self.disc_for_generator: nn.Module = self.discriminators
        if options.compile:
            compile_ = partial(torch.compile, backend=options.compile_backend)
            self.generator = compile_(self.generator)
            self.disc = compile_(self.disc)
            self.disc_for_generator = compile_(self.discriminators)
        self.loader, self.stream = _loader(config, options, device)
        if not self.stream.full_batches(config.train.batch_size, options.workers):
            raise UserError(self._no_full_batch())  # else every epoch is empty, for ever

    # --- one step ---------------------------------------------------------------------

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One discriminator step (once adversarial training started), one generator step
        and the codebook upkeep; returns this step's scalars averaged over ranks."""
        train = self.config.train
        wav = batch["wav"].to(self.device, non_blocking=True)
        lengths = batch["lengths"].to(self.device, non_blocking=True)
        if not self.upkeep.initialised:
            with torch.no_grad():
                self.upkeep.initialise(*self.model.latent(wav, lengths)[:2])
        n_q = self.model.training_n_q(self.options.seed, self.step)
        with self.autocast():
            out = self.generator(wav, lengths, n_q)
        mask = length_mask(lengths, out.audio.shape[-1])
        fake, real = out.audio.float() * mask, wav * mask
        adversarial = self.step >= train.disc_start_step
        scalars: dict[str, torch.Tensor] = {}
        applied = True
        if adversarial:
            with self.autocast():
                real_logits, _ = self.disc(real)
                fake_logits, _ = self.disc(fake.detach())
                d_loss = discriminator_loss(real_logits, fake_logits, train.adversarial_loss)
            self.opt_d.zero_grad(set_to_none=True)
            applied = self._backward_and_step(d_loss, self.discriminators, self.opt_d)
            scalars["discriminator"] = d_loss.detach()
        terms = {"mel": self.mel_loss(fake, real)}  # an fp32 island (outside autocast)
        with _frozen(self.discriminators):  # generator losses: no discriminator gradients
            if adversarial:
                with self.autocast():
                    fake_logits, fake_maps = self.disc_for_generator(fake)
                    with torch.no_grad():
                        _, real_maps = self.disc_for_generator(real)
                    terms["adversarial"] = generator_adversarial_loss(
                        fake_logits, train.adversarial_loss
                    )
                    terms["feature_matching"] = feature_matching_loss(real_maps, fake_maps)
            follow = self.config.codebooks.follow_encoder
            probe = self._probe(wav, lengths) if follow else None
            total, generator_applied = self._generator_backward(terms, fake, out.quantizer_loss)
        if generator_applied:  # a skipped step leaves the codebooks' statistics alone too
            if probe is not None:
                self.upkeep.follow(probe, self._probe(wav, lengths))
            self.upkeep.update(out.codebook_inputs, out.codebook_assignments)
        else:
            self.upkeep.restarts.zero_()
        scalars.update({name: value.detach() for name, value in terms.items()})
        scalars["quantizer"] = out.quantizer_loss.detach()
        scalars["generator"] = total.detach()
        self.step += 1
        self.bad_steps.record(applied and generator_applied)
        return self._averaged(scalars, out, batch.get("skipped"))

    @torch.no_grad()
    def _probe(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The latent rows [N, D] of this rank's longest item in the batch (the most frames
        for ``CodebookUpkeep.follow``'s per-dimension fit)."""
        item = int(lengths.argmax())
        with self.autocast():
            latent, mask, _ = self.model.latent(wav[item : item + 1], lengths[item : item + 1])
        rows = latent.float()[0].t()
        if mask is not None:
            rows = rows[mask[0, 0] > 0]
        return rows

    def _generator_backward(
        self, terms: dict[str, torch.Tensor], fake: torch.Tensor, quantizer_loss: torch.Tensor
    ) -> tuple[torch.Tensor, bool]:
        """One backward through the generator (one gradient all-reduce under DDP): with the
        balancer, its gradient on the output and the quantizer term in a single call.
        Returns the total loss and whether the update was applied (finite)."""
        weights = self.config.train.loss_weights
        quantizer_term = weights.quantizer * quantizer_loss
        self.opt_g.zero_grad(set_to_none=True)
        if self.balancer is None:
            total = sum(getattr(weights, name) * value for name, value in terms.items())
            applied = self._backward_and_step(total + quantizer_term, self.model, self.opt_g)
            return total + quantizer_term.detach(), applied
        # The balancer normalises gradients itself: no loss scaling.
        output_grad = self.balancer.gradient(terms, fake)
        torch.autograd.backward(
            [fake, quantizer_term], [output_grad, torch.ones_like(quantizer_term)]
        )
        weighted = sum(
            self.balancer.weights[name] * value.detach() for name, value in terms.items()
        )
        total = weighted + quantizer_term.detach()
        return total, self._step_if_finite(total, self.model, self.opt_g)

    def _backward_and_step(self, loss: torch.Tensor, module: nn.Module, optimizer: Any) -> bool:
        """Backward, clip, step - through the fp16 grad scaler when one is enabled. Returns
        whether the update was applied: not when the loss or the gradients are not finite."""
        if not self.scaler.is_enabled():
            loss.backward()
            return self._step_if_finite(loss, module, optimizer)
        # fp16: the scaler skips steps with inf/NaN gradients and lowers its scale itself
        # (overflow while it calibrates is routine); a non-finite loss is a bad step.
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        applied = _all_finite(loss.detach())
        _clip(module, self.config.train.grad_clip)
        with self.warmup(optimizer):
            self.scaler.step(optimizer)
        self.scaler.update()
        return applied

    def _step_if_finite(self, loss: torch.Tensor, module: nn.Module, optimizer: Any) -> bool:
        """Clip (when the preset asks) and step, unless the loss or the gradient norm is not
        finite on any rank: then the gradients are dropped and nothing changes."""
        clip = self.config.train.grad_clip
        params = [p for p in module.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else loss * 0
        if not _all_finite(loss.detach(), norm):
            optimizer.zero_grad(set_to_none=True)
            return False
        if clip:
            torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
        with self.warmup(optimizer):
            optimizer.step()
        return True

    @contextmanager
    def warmup(self, optimizer: Any) -> Iterator[None]:
        """During ``train.warmup_steps`` the learning rate ramps linearly to the schedule's
        (step 1 at 1/N of it); only the update sees the ramp, so the schedule and its
        checkpointed state stay the preset's."""
        steps = self.config.train.warmup_steps
        if self.step >= steps:
            yield
            return
        factor = (self.step + 1) / steps
        scheduled = [group["lr"] for group in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr * factor
        try:
            yield
        finally:
            for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr

    def _averaged(
        self, scalars: dict[str, torch.Tensor], out: Any, skipped: torch.Tensor | None
    ) -> dict[str, Any]:
        """Every logged number averaged over ranks, in one all-reduce (with the unreadable
        samples the ranks' streams skipped for this batch, summed)."""
        names = list(scalars)
        books = out.perplexity.numel()
        shares = self.balancer.shares if self.balancer is not None else {}
        packed = torch.cat(
            [
                torch.stack([scalars[name].float() for name in names]),
                out.perplexity.detach().float(),
                out.usage.detach().float(),
                torch.tensor([shares[name] for name in shares], device=out.usage.device),
                torch.tensor([0.0 if skipped is None else float(skipped)], device=out.usage.device),
            ]
        ).to(self.device)
        values = distrib.all_reduce_mean(packed).cpu().tolist()
        skipped_total = round(values.pop() * distrib.world_size())
        return {
            "train": dict(zip(names, values[: len(names)], strict=True)),
            "perplexity": values[len(names) : len(names) + books],
            "usage": values[len(names) + books : len(names) + 2 * books],
            "balancer": dict(zip(shares, values[len(names) + 2 * books :], strict=True)),
            "restarts": self.upkeep.restarts.tolist(),
            "skipped": skipped_total,
        }

    # --- validation and state ---------------------------------------------------------

    def validate(self) -> dict[str, Any]:
        return validate(self.model, self.options, self.config, self.device)

    def state_dict(self) -> TrainState:
        return TrainState(
            step=self.step,
            epoch=self.epoch,
            batches_in_epoch=self.batches_in_epoch,
            generator=self.model.state_dict(),
            discriminator=self.discriminators.state_dict(),
            optimizer_g=self.opt_g.state_dict(),
            optimizer_d=self.opt_d.state_dict(),
            scheduler_g=self.sched_g.state_dict(),
            scheduler_d=self.sched_d.state_dict(),
            scaler=self.scaler.state_dict(),
            config=to_dict(self.config),
            rng=capture_rng_all_ranks(),
            options=self.options.settings(),
            upkeep=self.upkeep.state_dict(),
            balancer=self.balancer.state_dict() if self.balancer is not None else {},
            data=self.data,
            bad_steps={"total": self.bad_steps.total, "consecutive": self.bad_steps.consecutive},
        )

    def load_state_dict(self, state: TrainState) -> None:
        self.model.load_state_dict(state.generator)
        self.discriminators.load_state_dict(state.discriminator)
        self.opt_g.load_state_dict(state.optimizer_g)
        self.opt_d.load_state_dict(state.optimizer_d)
        self.sched_g.load_state_dict(state.scheduler_g)
        self.sched_d.load_state_dict(state.scheduler_d)
        self.scaler.load_state_dict(state.scaler)
        if state.upkeep:
            self.upkeep.load_state_dict(state.upkeep)
        else:  # a checkpoint from before the upkeep: its codebooks are long set up
            self.upkeep.initialised = True
        if self.balancer is not None and state.balancer:
            self.balancer.load_state_dict(state.balancer)
        self.step, self.epoch = state.step, state.epoch
        self.batches_in_epoch = state.batches_in_epoch
        self.bad_steps = BadSteps(**state.bad_steps)
        restore_rng(state.rng, distrib.rank())

    def apply_optimizer_settings(self) -> None:
        """After loading a checkpoint under changed settings (``--override``): the preset's
        learning rates, betas, weight decay and decay factor replace the stored ones, which
        ``load_state_dict`` of the optimizers would otherwise silently keep."""
        train = self.config.train
        gamma = train.lr_decay if train.scheduler == "exponential" else 1.0
        for optimizer, scheduler in ((self.opt_g, self.sched_g), (self.opt_d, self.sched_d)):
            scheduler.gamma = gamma
            scheduler.base_lrs = [train.lr for _ in optimizer.param_groups]
            for group in optimizer.param_groups:
                group.update(
                    lr=train.lr * gamma**scheduler.last_epoch, initial_lr=train.lr,
                    betas=train.betas, weight_decay=train.weight_decay,
                )  # fmt: skip
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

    def save(self) -> None:
        state = self.state_dict()  # every rank: RNG states are gathered collectively
        if distrib.is_main():
            save_state(state, self.options.out / "checkpoints", self.options.keep)
        distrib.barrier()

    # --- the loop ---------------------------------------------------------------------

    def fit(self, logger: RunLogger) -> TrainState:
        """Train until ``max_steps``; checkpoints, validation and logs on their schedules.
        Ctrl-C (SIGINT) finishes the step under way, writes a checkpoint and raises
        ``Interrupted`` saying so (a second Ctrl-C stops at once)."""
        with interrupt_flag() as stop:
            try:
                return self._fit(logger, stop)
            except RuntimeError:
                if not stop.requested:  # a DataLoader worker killed by the same Ctrl-C
                    raise
                self.save()
                raise Interrupted(self._saved_message()) from None

    def _saved_message(self) -> str:
        return (
            f"interrupted: a checkpoint of step {self.step} was written to "
            f"{self.options.out / 'checkpoints'}; re-run the same command to resume"
        )

    def _fit(self, logger: RunLogger, stop: InterruptFlag) -> TrainState:
        options = self.options
        while self.step < options.max_steps:
            for batch, data_wait in self._batches():
                metrics = self.train_step(batch)
                # The step and its batch are one: a checkpoint of this step resumes from
                # the next batch (a Ctrl-C right here once replayed this one).
                self.batches_in_epoch += 1
                if stop.requested:
                    self.save()
                    raise Interrupted(self._saved_message())
                logger.step(self.step, metrics, data_wait, batch["wav"].shape[0], self)
                if self.bad_steps.last:
                    self._bad_step(logger, metrics)
                if options.val_every and self.step % options.val_every == 0:
                    logger.validation(self.step, self.validate())
                if options.ckpt_every and self.step % options.ckpt_every == 0:
                    self.save()
                if self.step >= options.max_steps:
                    break
            else:
                self.epoch, self.batches_in_epoch = self.epoch + 1, 0
                self._epoch_schedules()
        self.save()
        return self.state_dict()

    def _no_full_batch(self) -> str:
        batch, workers = self.config.train.batch_size, self.options.workers
        split = f", split over {workers} loader workers" if workers > 1 else ""
        return (
            f"--data {self.options.data} gives no full batch: {len(self.stream)} samples an "
            f"epoch per rank{split}, train.batch_size {batch} (incomplete batches are "
            "dropped): lower it with --set train.batch_size=N"
            + (" or --workers" if workers > 1 else "")
            + ", or train on more data"
        )

    def _bad_step(self, logger: RunLogger, metrics: dict[str, Any]) -> None:
        """Say that this step was skipped; stop after ``train.max_bad_steps`` in a row
        (checkpointing the last good weights), unless ``--allow-nan``."""
        losses = " ".join(f"{name}={value:.4g}" for name, value in metrics["train"].items())
        logger.bad_step(self.step, losses, self.bad_steps)
        limit = self.config.train.max_bad_steps
        if self.bad_steps.consecutive < limit or self.options.allow_nan:
            return
        self.save()
        first = self.step - self.bad_steps.consecutive + 1
        raise TrainingStopped(
            f"steps {first}-{self.step}: {limit} steps in a row had non-finite losses or "
            f"gradients ({losses}), none was applied; the weights of step {first - 1} were "
            f"checkpointed (as step {self.step}) in {self.options.out / 'checkpoints'} - "
            "lower train.lr, set train.grad_clip or "
            "train.warmup_steps, check the data, or pass --allow-nan to keep skipping"
        )

    def _epoch_schedules(self) -> None:
        """Both learning rates decay by epoch, whether or not an optimizer has stepped in
        this process yet (the discriminator waits for ``disc_start_step``; a resumed run
        starts anew): torch's "scheduler before optimizer" warning is noise here."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            self.sched_g.step()
            self.sched_d.step()

    def _batches(self) -> Iterator[tuple[dict[str, torch.Tensor], float]]:
        """This epoch's batches from the current position, with the time spent waiting."""
        self.stream.set_epoch(self.epoch)
        batches = iter(self.loader)
        for _ in range(self.batches_in_epoch):  # resume inside an epoch: same order
            next(batches, None)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                return
            yield batch, time.perf_counter() - started


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """The generator's losses pass through the discriminators; their gradients are not
    needed, so autograd skips them (and DDP's discriminator hooks never fire there)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def _no_buffer_sync() -> dict[str, bool]:
    """DDP must not overwrite buffers each forward: codebook statistics are all-reduced by
    the quantizers themselves. Newer torch spells it ``forward_sync_buffers=False`` (and
    warns about ``broadcast_buffers``); the init sync it keeps is harmless, every rank
    builds the same buffers from the same seed."""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _clip(module: nn.Module, limit: float | None) -> None:
    if limit:
        torch.nn.utils.clip_grad_norm_(module.parameters(), limit)


def _all_finite(*values: torch.Tensor) -> bool:
    """Whether every value is finite on every rank (one all-reduce of a flag under DDP, so
    all ranks skip or apply the same updates)."""
    bad = sum((~torch.isfinite(v)).any().float() for v in values)
    if distrib.is_distributed():
        bad = distrib.all_reduce_sum(bad.reshape(1))[0]
    return not bool(bad)


def optimizer_kernel(device: torch.device) -> dict[str, bool]:
    """One fused kernel per step on CUDA (no launch per parameter); on CPU torch's default
    (foreach), which the CPU figures were measured with."""
    return {"fused": True} if device.type == "cuda" else {}


def _optimizer(
    module: nn.Module, config: CodecConfig, device: torch.device
) -> torch.optim.Optimizer:
    train = config.train
    kind = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    return kind(
        module.parameters(), lr=train.lr, betas=train.betas, weight_decay=train.weight_decay,
        **optimizer_kernel(device),
    )  # fmt: skip


def _scheduler(optimizer: torch.optim.Optimizer, config: CodecConfig) -> Any:
    gamma = config.train.lr_decay if config.train.scheduler == "exponential" else 1.0
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def _loader(
    config: CodecConfig, options: RunOptions, device: torch.device
) -> tuple[DataLoader, TrainingStream]:
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

"""Run observability: TensorBoard scalars (``train/``, ``val/``, ``codebook/``, ``perf/``,
``lr/``), audio examples, a plain-text log, a progress bar, and collapse/NaN warnings.
Only rank 0 writes."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from academicodec.training.trainer import BadSteps, Trainer

LOG = logging.getLogger("academicodec.training")
USAGE_WARNING = 0.10


class RunLogger:
    def __init__(self, out: Path, enabled: bool, total: int, start: int) -> None:
        self.enabled = enabled
        self.total = total
        self.last_time = time.perf_counter()
        self.last_step = start
        self.samples = 0
        self.wait = 0.0
        self.skipped = 0  # unreadable training samples since this process started
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        out.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(out / "tensorboard"))
        self.text = open(out / "train.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.bar = tqdm(total=total, initial=start, desc="training", unit="step", leave=False)

    def step(
        self,
        step: int,
        metrics: dict[str, Any],
        data_wait: float,
        batch: int,
        trainer: Trainer,
    ) -> None:
        if not self.enabled:
            return
        self.samples += batch
        self.wait += data_wait
        self.bar.update(1)
        for name, value in metrics["train"].items():
            self.writer.add_scalar(f"train/{name}", value, step)
        for k, (perplexity, usage) in enumerate(
            zip(metrics["perplexity"], metrics["usage"], strict=True)
        ):
            self.writer.add_scalar(f"codebook/perplexity_{k}", perplexity, step)
            self.writer.add_scalar(f"codebook/usage_{k}", usage, step)
        for k, restarted in enumerate(metrics["restarts"]):
            self.writer.add_scalar(f"codebook/restarts_{k}", restarted, step)
        self.skipped += metrics["skipped"]
        self.writer.add_scalar("data/skipped", self.skipped, step)
        for name, share in metrics["balancer"].items():
            self.writer.add_scalar(f"balancer/share_{name}", share, step)
        self.writer.add_scalar("lr/generator", trainer.opt_g.param_groups[0]["lr"], step)
        self.writer.add_scalar("lr/discriminator", trainer.opt_d.param_groups[0]["lr"], step)
        device = trainer.device
        elapsed = time.perf_counter() - self.last_time
        if elapsed >= 5.0 or step - self.last_step >= 50 or step >= self.total:
            steps = step - self.last_step
            self.writer.add_scalar("perf/steps_per_s", steps / elapsed, step)
            self.writer.add_scalar("perf/samples_per_s", self.samples / elapsed, step)
            self.writer.add_scalar("perf/data_wait_fraction", min(1.0, self.wait / elapsed), step)
            if device.type == "cuda":
                memory = torch.cuda.max_memory_allocated(device) / 2**20
                self.writer.add_scalar("perf/gpu_memory_mb", memory, step)
            losses = " ".join(f"{k}={v:.4f}" for k, v in metrics["train"].items())
            self._line(f"step {step} {losses} steps/s={steps / elapsed:.2f}")
            self.last_time, self.last_step, self.samples, self.wait = (
                time.perf_counter(),
                step,
                0,
                0.0,
            )

    def bad_step(self, step: int, losses: str, bad: BadSteps) -> None:
        """A step whose update was skipped (non-finite loss or gradients): a warning and
        ``train/bad_steps`` (the run's total)."""
        if not self.enabled:
            return
        self.writer.add_scalar("train/bad_steps", bad.total, step)
        message = (
            f"step {step}: non-finite loss or gradients ({losses}): update skipped, weights "
            f"and codebooks unchanged ({bad.consecutive} in a row, {bad.total} in this run)"
        )
        LOG.warning(message)
        self._line(message)

    def validation(self, step: int, results: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.writer.add_scalar("val/mel_l1", results["mel_l1"], step)
        self.writer.add_scalar("val/si_sdr", results["si_sdr"], step)
        for k, (used, perplexity) in enumerate(
            zip(results["codebook_used"], results["codebook_perplexity"], strict=True)
        ):
            self.writer.add_scalar(f"val/codebook_used_{k}", used, step)
            self.writer.add_scalar(f"val/codebook_perplexity_{k}", perplexity, step)
            if used < USAGE_WARNING:
                LOG.warning(
                    "step %d: codebook %d uses %.1f%% of its codes on validation audio "
                    "(restarts keep moving unused codes onto recent latents)",
                    step, k, 100 * used,
                )  # fmt: skip
        for key, audio, reference in results["examples"]:
            self.writer.add_audio(f"val/{key}/reconstruction", audio, step)
            if step <= 0 or not hasattr(self, "_logged_reference"):
                self.writer.add_audio(f"val/{key}/original", reference, step)
        self._logged_reference = True
        books = " ".join(
            f"{100 * used:.1f}%/{perplexity:.0f}"
            for used, perplexity in zip(
                results["codebook_used"], results["codebook_perplexity"], strict=True
            )
        )
        self._line(
            f"validation step {step} mel_l1={results['mel_l1']:.4f} si_sdr={results['si_sdr']:.2f}"
            f" codebooks(used/perplexity)={books}"
        )

    def _line(self, text: str) -> None:
        self.text.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self.text.flush()

    def close(self) -> None:
        if self.enabled and self.skipped:  # the run's summary says what it lost
            message = (
                f"{self.skipped} training sample(s) could not be read and were skipped "
                "(damaged shards: see the warnings naming them; data/skipped in TensorBoard)"
            )
            LOG.warning(message)
            self._line(message)
        if self.enabled:
            self.bar.close()
            self.writer.close()
            self.text.close()

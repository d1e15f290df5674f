"""Codebook upkeep during training: data-driven initialisation, EMA steps, dead-code restarts.

Why: with the original's settings GRVQ codebooks collapse to one code within a dozen steps
(uniform ±1/size start, no restart), and the EMA RVQ with encodec's absolute dead-code
threshold (2 assignments) treats nearly every entry as dead when a step holds ~200 frames,
refilling the codebook from the current batch every step. Here, for both quantizer kinds:

- ``init: kmeans`` fits every codebook to the first batch's latents, stage by stage (each
  stage sees what the fitted stages before it leave), as encodec does for its RVQ;
- a code whose usage, an EMA of its assignment counts, falls below ``dead_code_ratio`` of
  its codebook's mean usage is moved onto a recent latent of its own codebook (Jukebox,
  Dhariwal et al. 2020; vector-quantize-pytorch), at most one code per input row, so no two
  restarted codes share a vector; a restarted code starts at the mean usage, and usage
  starts at zero after the fit, so codes the first step leaves unused are restarted at once;
- ``follow`` moves the codebooks with the encoder's update (``follow_encoder``): early on,
  one optimizer step shifts the whole latent by more than the distance between neighbouring
  codewords, which leaves every codeword fitted to the last step's latents behind;
- the EMA RVQ's cluster statistics are stepped here rather than inside ``forward``.

Everything that crosses ranks happens here, in as few collectives as possible: one
all-reduce of every codebook's counts (and sums, for EMA codebooks) per step, and one
broadcast of rank 0's choices when codes are restarted or fitted. ``forward`` stays pure.
The upkeep's own state (usage EMAs, whether the codebooks were fitted) is checkpointed by
the trainer, not in the model weights, so exports and imports are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from academicodec import distrib
from academicodec.models.config import CodebookConfig
from academicodec.models.layers import Mask
from academicodec.models.quantizers import GroupResidualVQ, ResidualVQ, kmeans

# Spread of the extra initial codes around the k-means means, in data standard deviations.
JITTER = 0.1
# Frames (over all ranks) below which ``follow`` moves codebooks by the mean shift alone.
MIN_FOLLOW_FRAMES = 16


class CodebookUpkeep:
    """Keeps a quantizer's codebooks in use while it trains (see the module docstring)."""

    def __init__(
        self, quantizer: GroupResidualVQ | ResidualVQ, config: CodebookConfig, seed: int = 0
    ) -> None:
        self.quantizer = quantizer
        self.config = config
        self.ema = isinstance(quantizer, ResidualVQ)
        tables = quantizer.tables()
        self.size = tables[0].shape[0]
        self.usage = torch.zeros(len(tables), self.size, device=tables[0].device)
        self.initialised = config.init == "none"
        self.restarts = torch.zeros(len(tables))  # codes restarted in the last update
        # Rank 0 draws restart rows from its own generator: reproducible and resumable.
        self.generator = torch.Generator().manual_seed(seed)

    # --- initialisation ---------------------------------------------------------------

    @torch.no_grad()
    def initialise(self, latent: Tensor, mask: Mask) -> None:
        """Fit every codebook to this batch's latents [B, D, F] (rank 0's on every rank);
        once per run."""
        if self.initialised:
            return
        size, iterations = self.size, self.config.kmeans_iters

        def fit(index: int, rows: Tensor) -> Tensor:
            # A first batch can hold fewer frames than there are codes, and k-means with a
            # code per frame would leave the next stage a zero residual to fit. So k-means
            # fits at most a quarter as many means as frames; the other codes start as
            # jittered copies of those means, and restarts spread them as data arrives.
            rows = rows.float()
            clusters = max(1, min(size, rows.shape[0] // 4))
            means = kmeans(rows, clusters, iterations, self.generator)[0]
            table = means[torch.arange(size) % clusters]
            spread = rows.std(dim=0, keepdim=True) * JITTER
            noise = torch.randn(table.shape, generator=self.generator).to(table.device)
            table[clusters:] += noise[clusters:] * spread
            return distrib.broadcast(table.contiguous())

        self.quantizer.fit_codebooks(latent, mask, fit)
        # Usage starts at zero: a code that the first steps after the fit leave unused is
        # dead at once (the test is relative to the mean usage, so the EMA's start-up bias
        # cancels). Starting every code at the mean hid the dead ones for ~15 steps, the
        # time an EMA at 0.9 takes to fall under 0.2 x the mean.
        self.usage.zero_()
        self.initialised = True

    # --- one training step ------------------------------------------------------------

    @torch.no_grad()
    def update(self, inputs: list[Tensor], assigned: list[Tensor]) -> None:
        """After the optimizer step, from a training forward's per-codebook inputs and codes
        (``QuantizerResult.inputs``/``assignments``): EMA statistics, usage, and dead-code
        restarts for the codebooks this step used (the same count on every rank). All that
        crosses ranks goes in one all-reduce."""
        if not inputs:
            raise ValueError("codebook upkeep needs a training-mode forward (model.train())")
        size, books = self.size, len(inputs)
        counts = torch.stack([torch.bincount(a, minlength=size).float() for a in assigned])
        parts = [counts]
        if self.ema:
            parts.append(
                torch.stack(
                    [
                        torch.zeros(size, rows.shape[1], device=rows.device).index_add_(
                            0, a, rows.float()
                        )
                        for rows, a in zip(inputs, assigned, strict=True)
                    ]
                )
            )
        reduced = _unpack(distrib.all_reduce_sum(_pack(parts)), parts)
        counts = reduced[0]
        if self.ema:
            codebooks = self.quantizer.codebooks(books)  # type: ignore[union-attr]
            for k, codebook in enumerate(codebooks):
                codebook.ema_step(counts[k], reduced[1][k])
        decay = self.config.usage_decay
        self.usage[:books].mul_(decay).add_(counts, alpha=1 - decay)
        self.restarts.zero_()
        if self.config.dead_code_ratio > 0:
            self._restart(inputs)

    @torch.no_grad()
    def follow(self, before: Tensor, after: Tensor) -> None:
        """Move the codebooks with the encoder's update: ``before`` and ``after`` [N, D] are
        the same frames' latents around the optimizer step. Per dimension, the affine map
        ``after ~ scale * before + shift`` (least squares) is applied to the first stage's
        codewords, and its scale to the later stages' (they code residuals)."""
        before, after = before.float(), after.float()
        sums = torch.stack(
            [before.sum(0), after.sum(0), (before * before).sum(0), (before * after).sum(0)]
        )
        count = torch.full_like(sums[:1], float(before.shape[0]))
        reduced = distrib.all_reduce_sum(torch.cat([count, sums]))  # every rank's frames
        n, sum_b, sum_a, sum_bb, sum_ba = reduced
        mean_b, mean_a = sum_b / n, sum_a / n
        var = sum_bb / n - mean_b**2
        scale = (sum_ba / n - mean_b * mean_a) / var.clamp(min=1e-12)
        # Too few frames (or no spread) to fit a slope: follow the mean only.
        fitted = (var > 1e-12) & (n >= MIN_FOLLOW_FRAMES)
        scale = torch.where(fitted, scale.clamp(0.5, 2.0), torch.ones_like(scale))
        shift = mean_a - scale * mean_b
        zero = torch.zeros_like(shift)
        quantizer = self.quantizer
        if self.ema:
            for k, codebook in enumerate(quantizer.codebooks()):  # type: ignore[union-attr]
                codebook.transform(scale, shift if k == 0 else zero)
            return
        width = shift.shape[0] // quantizer.groups  # type: ignore[union-attr]
        for stage in range(quantizer.stages):  # type: ignore[union-attr]
            for g, module in enumerate(quantizer.stage(stage)):  # type: ignore[union-attr]
                if module.factorised:
                    continue
                part = slice(g * width, (g + 1) * width)
                weight = module.embedding.weight
                weight.mul_(scale[part])
                if stage == 0:
                    weight.add_(shift[part])

    def _restart(self, inputs: list[Tensor]) -> None:
        usage = self.usage[: len(inputs)]
        mean = usage.mean(dim=1, keepdim=True)
        dead = usage < self.config.dead_code_ratio * mean
        if not bool(dead.any()):  # the same answer on every rank: usage is all-reduced
            return
        tables = self.quantizer.tables()
        changed = []
        for k, rows in enumerate(inputs):
            candidates = torch.nonzero(dead[k]).flatten()
            if not len(candidates):
                continue
            if distrib.is_main():
                self._move(k, candidates, rows, tables[k], float(mean[k]))
            changed.append(k)
        self._share(changed, tables)

    def _move(self, k: int, candidates: Tensor, rows: Tensor, table: Tensor, mean: float) -> None:
        """Rank 0: the least-used dead codes onto distinct random input rows."""
        count = min(len(candidates), rows.shape[0])
        if count == 0:
            return
        order = torch.argsort(self.usage[k, candidates])[:count].to(candidates.device)
        codes = candidates[order]
        picks = torch.randperm(rows.shape[0], generator=self.generator)[:count]
        vectors = rows[picks.to(rows.device)].to(table.dtype)
        if self.ema:
            codebook = self.quantizer.codebooks()[k]  # type: ignore[union-attr]
            codebook.set_codewords(codes, vectors, float(codebook.cluster_size.mean()))
        else:
            table[codes] = vectors
        self.usage[k, codes] = mean
        self.restarts[k] = count

    def _share(self, changed: list[int], tables: list[Tensor]) -> None:
        """Rank 0's restarted codebooks (and usage) to every rank, in one broadcast."""
        if not changed or not distrib.is_distributed():
            return
        parts = [self.usage[changed], self.restarts[changed].to(self.usage.device)]
        for k in changed:
            parts.append(tables[k])
            if self.ema:
                codebook = self.quantizer.codebooks()[k]  # type: ignore[union-attr]
                parts.extend([codebook.embed_avg, codebook.cluster_size])
        chunks = _unpack(distrib.broadcast(_pack(parts)), parts)
        self.usage[changed] = chunks[0]
        self.restarts[changed] = chunks[1].cpu()
        for part, chunk in zip(parts[2:], chunks[2:], strict=True):  # tables and EMA stats
            part.copy_(chunk)

    # --- checkpointing ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "usage": self.usage.cpu(),
            "initialised": self.initialised,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.usage.copy_(state["usage"])
        self.initialised = bool(state["initialised"])
        self.generator.set_state(state["generator"])


def _pack(parts: list[Tensor]) -> Tensor:
    """Tensors as one flat float tensor, so one collective carries them all."""
    return torch.cat([part.detach().reshape(-1).float() for part in parts])


def _unpack(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    """``flat`` cut back into views shaped as ``like``."""
    chunks, offset = [], 0
    for part in like:
        chunks.append(flat[offset : offset + part.numel()].view_as(part))
        offset += part.numel()
    return chunks

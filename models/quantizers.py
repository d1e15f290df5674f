"""Quantizers: Encodec's EMA residual VQ and HiFi-Codec's group-residual VQ (GRVQ).

Both take a latent ``[B, D, F]`` with an optional frame mask and return a ``QuantizerResult``
with straight-through quantized latents, codes ``[B, K, F]``, the quantizer loss and
per-codebook statistics (perplexity, fraction of codes used), so collapse shows in training
logs. Only valid frames feed losses, statistics and codebook updates.

``forward`` is pure: it runs no collective and changes no codebook. What a training step
does to the codebooks (data-driven initialisation, EMA steps, dead-code restarts, all
synchronised over ranks) lives in ``training/upkeep.py`` and is called by the trainer with
the per-codebook inputs and assignments that ``forward`` reports in training mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.layers import Mask, weight_norm

# Fits one codebook to its input rows during initialisation: (codebook index, rows) -> table.
Fit = Callable[[int, Tensor], Tensor]


@dataclass
class QuantizerResult:
    quantized: Tensor  # [B, D, F], straight-through: gradients reach the encoder
    codes: Tensor  # [B, K, F] int64
    loss: Tensor  # scalar, the quantizer's own weighting
    perplexity: Tensor  # [K]
    usage: Tensor  # [K], fraction of the codebook used in this batch
    # Training mode only, per codebook in code order: the valid input rows [N, d] (detached)
    # and their assigned codes [N], for the trainer's codebook upkeep.
    inputs: list[Tensor] = field(default_factory=list)
    assignments: list[Tensor] = field(default_factory=list)


def codebook_stats(codes: Tensor, mask: Mask, codebook_size: int) -> tuple[Tensor, Tensor]:
    """Per-codebook perplexity and fraction of entries used, over valid frames."""
    batch, books, frames = codes.shape
    flat = codes.permute(1, 0, 2).reshape(books, -1)
    weights = torch.ones_like(flat, dtype=torch.float32)
    if mask is not None:
        weights = mask[:, 0, :].reshape(1, -1).expand(books, -1).float()
    counts = torch.zeros(books, codebook_size, device=codes.device)
    counts.scatter_add_(1, flat, weights)
    probs = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    entropy = -(probs * torch.log(probs.clamp(min=1e-10))).sum(dim=1)
    return entropy.exp(), (counts > 0).float().mean(dim=1)


def _masked_mean(values: Tensor, mask: Mask) -> Tensor:
    """Mean of ``values`` [B, D, F] over valid frames (all frames without a mask)."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / (mask.sum() * values.shape[1]).clamp(min=1)


def _row_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """Mean of ``values`` [N, d] over valid rows (``weights`` [N, 1] of 0/1, or all)."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / (weights.sum() * values.shape[1]).clamp(min=1)


def _nearest(vectors: Tensor, codebook: Tensor) -> Tensor:
    """Index of the closest codeword (squared L2), first on ties; vectors [N, D]."""
    distances = (
        vectors.pow(2).sum(1, keepdim=True)
        - 2 * vectors @ codebook.t()
        + codebook.pow(2).sum(1)[None, :]
    )
    return distances.argmin(dim=1)


def _to_rows(x: Tensor) -> Tensor:
    """[B, D, F] -> [B * F, D]."""
    return x.transpose(1, 2).reshape(-1, x.shape[1])


def _from_rows(rows: Tensor, batch: int) -> Tensor:
    """[B * F, D] -> [B, D, F]."""
    return rows.reshape(batch, -1, rows.shape[1]).transpose(1, 2)


def _valid(rows: Tensor, mask: Mask) -> Tensor:
    """The rows ([B * F, ...]) of valid frames."""
    return rows if mask is None else rows[mask[:, 0, :].reshape(-1) > 0]


class _Recorder:
    """Collects each codebook's valid inputs and assignments in training mode."""

    def __init__(self, active: bool, mask: Mask) -> None:
        self.active, self.mask = active, mask
        self.inputs: list[Tensor] = []
        self.assignments: list[Tensor] = []

    def add(self, rows: Tensor, indices: Tensor) -> None:
        if self.active:
            self.inputs.append(_valid(rows.detach(), self.mask))
            self.assignments.append(_valid(indices, self.mask))

    def result(
        self, quantized: Tensor, codes: list[Tensor], losses: list[Tensor], size: int
    ) -> QuantizerResult:
        stacked = torch.stack(codes, dim=1)
        perplexity, usage = codebook_stats(stacked, self.mask, size)
        return QuantizerResult(
            quantized, stacked, torch.stack(losses).mean(), perplexity, usage,
            self.inputs, self.assignments,
        )  # fmt: skip


# --- HiFi-Codec: group-residual VQ --------------------------------------------------------


class CodebookEmbedding(nn.Module):
    """One learned codebook (``embedding.weight``), as AcademiCodec's ``Quantizer_module``.

    With ``code_dim`` > 0 the lookup is DAC's (Kumar et al., 2023, §3.2): the input is
    projected to ``code_dim`` dimensions and matched by cosine similarity (both sides
    L2-normalised), and the code projected back. The match does not depend on the latent's
    scale, which drifts faster than gradient-trained codewords early in training - the
    drift that collapses the original's codebooks within a dozen steps.
    """

    def __init__(self, size: int, dim: int, code_dim: int = 0) -> None:
        super().__init__()
        self.factorised = code_dim > 0
        self.embedding = nn.Embedding(size, code_dim if self.factorised else dim)
        self.embedding.weight.data.uniform_(-1.0 / size, 1.0 / size)
        if self.factorised:
            self.in_proj = weight_norm(nn.Linear(dim, code_dim))
            self.out_proj = weight_norm(nn.Linear(code_dim, dim))

    def code_space(self, rows: Tensor) -> Tensor:
        """What the lookup compares with the codewords: the rows, or their projection."""
        return self.in_proj(rows) if self.factorised else rows

    def nearest(self, vectors: Tensor) -> Tensor:
        if not self.factorised:
            return _nearest(vectors, self.embedding.weight)
        similarity = F.normalize(vectors, dim=1) @ F.normalize(self.embedding.weight, dim=1).t()
        return similarity.argmax(dim=1)

    def decode(self, indices: Tensor) -> Tensor:
        codes = self.embedding(indices)
        return self.out_proj(codes) if self.factorised else codes

    def forward(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        indices = self.nearest(self.code_space(rows))
        return self.decode(indices), indices


class GroupResidualVQ(nn.Module):
    """The latent is split into ``groups`` channel groups; each is quantized by a residual
    stack of ``stages`` codebooks trained by gradient (codebook + commitment loss).

    Codes are stage-major across groups, ``[g0s0, g1s0, g0s1, g1s1]``: the first
    ``groups`` codes are the coarse stage (what a VALL-E AR model predicts first), and any
    ``n_q`` that is a multiple of ``groups`` gives a prefix of the full codes.
    """

    def __init__(
        self,
        dim: int,
        size: int,
        groups: int,
        stages: int,
        codebook_weight: float = 1.0,
        commitment_weight: float = 0.25,
        code_dim: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.size, self.groups, self.stages = dim, size, groups, stages
        self.codebook_weight, self.commitment_weight = codebook_weight, commitment_weight
        # Attribute names of the original: stage 0 "quantizer_modules", stage 1 "...2".
        for stage in range(stages):
            modules = nn.ModuleList(
                CodebookEmbedding(size, dim // groups, code_dim) for _ in range(groups)
            )
            setattr(self, self._stage_name(stage), modules)

    @staticmethod
    def _stage_name(stage: int) -> str:
        return "quantizer_modules" if stage == 0 else f"quantizer_modules{stage + 1}"

    def stage(self, index: int) -> nn.ModuleList:
        return getattr(self, self._stage_name(index))

    @property
    def num_codebooks(self) -> int:
        return self.groups * self.stages

    def tables(self) -> list[Tensor]:
        """Every codebook's ``[size, d]`` codewords, in code order (learned parameters)."""
        return [
            module.embedding.weight
            for stage in range(self.stages)
            for module in self.stage(stage)
        ]  # fmt: skip

    def _stages_for(self, n_q: int | None) -> int:
        if n_q is None:
            return self.stages
        if n_q % self.groups or not 0 < n_q <= self.num_codebooks:
            raise ValueError(f"n_q must be a multiple of {self.groups} up to {self.num_codebooks}")
        return n_q // self.groups

    def forward(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> QuantizerResult:
        batch = latent.shape[0]
        width = self.dim // self.groups
        weights = None if mask is None else mask[:, 0, :].reshape(-1, 1)
        residual = _to_rows(latent)
        quantized_out = torch.zeros_like(residual)
        codes, losses = [], []
        recorder = _Recorder(self.training, mask)
        for stage in range(self._stages_for(n_q)):
            parts, stage_losses = [], []
            for g, module in enumerate(self.stage(stage)):
                encoded = module.code_space(residual[:, g * width : (g + 1) * width])
                indices = module.nearest(encoded.detach())
                chosen = module.embedding(indices)
                recorder.add(encoded, indices)
                stage_losses.append(
                    self.codebook_weight * _row_mean((chosen - encoded.detach()) ** 2, weights)
                    + self.commitment_weight * _row_mean((chosen.detach() - encoded) ** 2, weights)
                )
                straight = encoded + (chosen - encoded).detach()  # straight-through
                parts.append(module.out_proj(straight) if module.factorised else straight)
                codes.append(indices.reshape(batch, -1))
            quantized = torch.cat(parts, dim=-1)
            losses.append(torch.stack(stage_losses).mean())
            residual = residual - quantized
            quantized_out = quantized_out + quantized
        return recorder.result(_from_rows(quantized_out, batch), codes, losses, self.size)

    @torch.no_grad()
    def fit_codebooks(self, latent: Tensor, mask: Mask, fit: Fit) -> None:
        """Replace every codebook by ``fit`` of its inputs, stage by stage (each stage's
        inputs are what the freshly fitted stages before it leave)."""
        residual = _to_rows(latent)
        width = self.dim // self.groups
        for stage in range(self.stages):
            parts = []
            for g, module in enumerate(self.stage(stage)):
                part = residual[:, g * width : (g + 1) * width]
                encoded = _valid(module.code_space(part), mask)
                module.embedding.weight.copy_(fit(stage * self.groups + g, encoded))
                parts.append(module(part)[0])
            residual = residual - torch.cat(parts, dim=-1)

    def encode(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> Tensor:
        return self.forward(latent, mask, n_q).codes

    def decode(self, codes: Tensor) -> Tensor:
        batch, books, frames = codes.shape
        if books % self.groups:
            raise ValueError(f"GRVQ codes come in multiples of {self.groups}, got {books}")
        latent = None
        for stage in range(books // self.groups):
            parts = [
                module.decode(codes[:, stage * self.groups + g])  # [B, F, d]
                for g, module in enumerate(self.stage(stage))
            ]
            stage_latent = torch.cat(parts, dim=-1).transpose(1, 2)
            latent = stage_latent if latent is None else latent + stage_latent
        assert latent is not None
        return latent


# --- Encodec / SoundStream: residual VQ with EMA codebooks ----------------------------------


class EuclideanCodebook(nn.Module):
    """An EMA codebook (encodec's core_vq buffers); the trainer's upkeep initialises it,
    steps its EMA and restarts its dead codes."""

    def __init__(self, dim: int, size: int, decay: float = 0.99, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.size, self.decay, self.epsilon = size, decay, epsilon
        # Encodec's flag: 0 until the codebook was fitted to data (k-means on a first batch).
        self.register_buffer("inited", torch.zeros(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        embed = nn.init.kaiming_uniform_(torch.empty(size, dim))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def quantize(self, rows: Tensor) -> Tensor:
        return _nearest(rows, self.embed)

    @torch.no_grad()
    def set_codewords(self, rows: Tensor, codewords: Tensor, count: float) -> None:
        """Put ``codewords`` at the entries ``rows`` (a bool mask or indices), with EMA
        statistics worth ``count`` assignments, so the next EMA step keeps them in place.

        Encodec restarts only ``embed``, and its next EMA step recomputes ``embed`` from
        ``embed_avg / cluster_size``, undoing the restart; vector-quantize-pytorch resets
        all three, as we do.
        """
        self.embed[rows] = codewords
        self.embed_avg[rows] = codewords * count
        self.cluster_size[rows] = count

    def _smoothed_sizes(self) -> Tensor:
        """Laplace-smoothed cluster sizes: what ``embed_avg`` is divided by."""
        total = self.cluster_size.sum()
        return (self.cluster_size + self.epsilon) / (total + self.size * self.epsilon) * total

    @torch.no_grad()
    def ema_step(self, counts: Tensor, sums: Tensor) -> None:
        """One EMA step on the (all-reduced) assignment counts [size] and sums [size, d]."""
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.embed.copy_(self.embed_avg / self._smoothed_sizes()[:, None])

    @torch.no_grad()
    def transform(self, scale: Tensor, shift: Tensor) -> None:
        """Map every codeword ``c`` to ``scale * c + shift`` ([d] each), the EMA sums with
        them (the next EMA step starts from the moved codewords)."""
        self.embed.mul_(scale.to(self.embed.dtype)).add_(shift.to(self.embed.dtype))
        self.embed_avg.copy_(self.embed * self._smoothed_sizes()[:, None])


class VectorQuantization(nn.Module):
    def __init__(self, codebook: EuclideanCodebook) -> None:
        super().__init__()
        self._codebook = codebook


class _Layers(nn.Module):
    def __init__(self, layers: list[VectorQuantization]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)


class ResidualVQ(nn.Module):
    """``n_q`` EMA codebooks, each quantizing what the previous ones left (encodec's RVQ).

    Parameter names (``vq.layers.N._codebook.embed``) follow encodec's, so AcademiCodec
    checkpoints map directly.
    """

    def __init__(
        self,
        dim: int,
        size: int,
        num_quantizers: int,
        decay: float = 0.99,
        commitment_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.size = size
        self.commitment_weight = commitment_weight
        self.vq = _Layers(
            [VectorQuantization(EuclideanCodebook(dim, size, decay)) for _ in range(num_quantizers)]
        )

    @property
    def num_codebooks(self) -> int:
        return len(self.vq.layers)

    def codebooks(self, n_q: int | None = None) -> list[EuclideanCodebook]:
        n_q = self.num_codebooks if n_q is None else n_q
        if not 0 < n_q <= self.num_codebooks:
            raise ValueError(f"n_q must be in 1..{self.num_codebooks}, got {n_q}")
        return [layer._codebook for layer in self.vq.layers[:n_q]]  # type: ignore[union-attr]

    def tables(self) -> list[Tensor]:
        """Every codebook's ``[size, d]`` codewords, in code order (EMA buffers)."""
        return [codebook.embed for codebook in self.codebooks()]

    def forward(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> QuantizerResult:
        batch = latent.shape[0]
        residual = latent
        quantized_out = torch.zeros_like(latent)
        codes, losses = [], []
        recorder = _Recorder(self.training, mask)
        for codebook in self.codebooks(n_q):
            rows = _to_rows(residual.detach())
            indices = codebook.quantize(rows)
            recorder.add(rows, indices)
            quantized = _from_rows(codebook.embed[indices], batch)
            losses.append(
                self.commitment_weight * _masked_mean((quantized.detach() - residual) ** 2, mask)
            )
            quantized = residual + (quantized - residual).detach()
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            codes.append(indices.reshape(batch, -1))
        return recorder.result(quantized_out, codes, losses, self.size)

    @torch.no_grad()
    def fit_codebooks(self, latent: Tensor, mask: Mask, fit: Fit) -> None:
        """Replace every codebook by ``fit`` of its inputs, layer by layer."""
        residual = _to_rows(latent)
        for k, codebook in enumerate(self.codebooks()):
            valid = _valid(residual, mask)
            # EMA statistics worth the average assignment count of the fitted batch.
            codebook.set_codewords(slice(None), fit(k, valid), max(1.0, valid.shape[0] / self.size))
            codebook.inited.fill_(1.0)
            residual = residual - codebook.embed[codebook.quantize(residual)]

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> Tensor:
        batch = latent.shape[0]
        residual = latent
        codes = []
        for codebook in self.codebooks(n_q):
            indices = codebook.quantize(_to_rows(residual))
            residual = residual - _from_rows(codebook.embed[indices], batch)
            codes.append(indices.reshape(batch, -1))
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        latent = None
        for k, codebook in enumerate(self.codebooks(codes.shape[1])):
            part = codebook.embed[codes[:, k]].transpose(1, 2)  # [B, D, F]
            latent = part if latent is None else latent + part
        assert latent is not None
        return latent


def sample_vectors(samples: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` rows of ``samples``: a random subset, or with repeats when there are fewer."""
    total = samples.shape[0]
    if total >= count:
        indices = torch.randperm(total, generator=generator)[:count].to(samples.device)
    else:
        indices = torch.randint(0, total, (count,), generator=generator).to(samples.device)
    return samples[indices]


def kmeans(
    samples: Tensor, clusters: int, iterations: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from randomly sampled data points; empty clusters keep their point."""
    means = sample_vectors(samples, clusters, generator)
    bins = torch.zeros(clusters, device=samples.device, dtype=torch.long)
    for _ in range(iterations):
        buckets = _nearest(samples, means)
        bins = torch.bincount(buckets, minlength=clusters)
        sums = torch.zeros_like(means).index_add_(0, buckets, samples)
        empty = bins == 0
        means = torch.where(empty[:, None], means, sums / bins.clamp(min=1)[:, None])
    return means, bins

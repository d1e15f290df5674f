"""Quantizers: Encodec's EMA residual VQ and HiFi-Codec's group-residual VQ (GRVQ).

Both take a latent ``[B, D, F]`` with an optional frame mask and return a ``QuantizerResult``
with straight-through quantized latents, codes ``[B, K, F]``, the quantizer loss and
per-codebook statistics (perplexity, fraction of codes used), so collapse shows in training
logs. Only valid frames feed losses, statistics and codebook updates.

The EMA codebooks are DDP-correct: cluster counts and sums are all-reduced before the EMA
step, and the k-means initialisation and dead-code restarts are computed on rank 0 and
broadcast, so every rank holds identical codebooks after every step (AcademiCodec's copy of
encodec updated them from each rank's own data, so replicas drifted apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from academicodec import distrib
from academicodec.models.layers import Mask


@dataclass
class QuantizerResult:
    quantized: Tensor  # [B, D, F], straight-through: gradients reach the encoder
    codes: Tensor  # [B, K, F] int64
    loss: Tensor  # scalar, the quantizer's own weighting
    perplexity: Tensor  # [K]
    usage: Tensor  # [K], fraction of the codebook used in this batch


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


def _result(
    quantized: Tensor, codes: list[Tensor], losses: list[Tensor], mask: Mask, size: int
) -> QuantizerResult:
    stacked = torch.stack(codes, dim=1)
    perplexity, usage = codebook_stats(stacked, mask, size)
    return QuantizerResult(quantized, stacked, torch.stack(losses).mean(), perplexity, usage)


def _masked_mean(values: Tensor, mask: Mask) -> Tensor:
    """Mean of ``values`` [B, D, F] over valid frames (all frames without a mask)."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / (mask.sum() * values.shape[1]).clamp(min=1)


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


def _valid_rows(x: Tensor, mask: Mask) -> Tensor:
    rows = _to_rows(x)
    return rows if mask is None else rows[mask[:, 0, :].reshape(-1) > 0]


# --- HiFi-Codec: group-residual VQ --------------------------------------------------------


class CodebookEmbedding(nn.Module):
    """One learned codebook (``embedding.weight``), as AcademiCodec's ``Quantizer_module``."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(size, dim)
        self.embedding.weight.data.uniform_(-1.0 / size, 1.0 / size)

    def forward(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        indices = _nearest(rows, self.embedding.weight)
        return self.embedding(indices), indices


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
    ) -> None:
        super().__init__()
        self.dim, self.size, self.groups, self.stages = dim, size, groups, stages
        self.codebook_weight, self.commitment_weight = codebook_weight, commitment_weight
        # Attribute names of the original: stage 0 "quantizer_modules", stage 1 "...2".
        for stage in range(stages):
            modules = nn.ModuleList(CodebookEmbedding(size, dim // groups) for _ in range(groups))
            setattr(self, self._stage_name(stage), modules)

    @staticmethod
    def _stage_name(stage: int) -> str:
        return "quantizer_modules" if stage == 0 else f"quantizer_modules{stage + 1}"

    def stage(self, index: int) -> nn.ModuleList:
        return getattr(self, self._stage_name(index))

    @property
    def num_codebooks(self) -> int:
        return self.groups * self.stages

    def _stages_for(self, n_q: int | None) -> int:
        if n_q is None:
            return self.stages
        if n_q % self.groups or not 0 < n_q <= self.num_codebooks:
            raise ValueError(f"n_q must be a multiple of {self.groups} up to {self.num_codebooks}")
        return n_q // self.groups

    def forward(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> QuantizerResult:
        batch = latent.shape[0]
        residual = latent
        quantized_out = torch.zeros_like(latent)
        codes, losses = [], []
        for stage in range(self._stages_for(n_q)):
            rows = _to_rows(residual).split(self.dim // self.groups, dim=-1)
            parts, indices = zip(
                *(module(part) for module, part in zip(self.stage(stage), rows, strict=True)),
                strict=True,
            )
            quantized = _from_rows(torch.cat(parts, dim=-1), batch)
            losses.append(
                self.codebook_weight * _masked_mean((quantized - residual.detach()) ** 2, mask)
                + self.commitment_weight * _masked_mean((quantized.detach() - residual) ** 2, mask)
            )
            quantized = residual + (quantized - residual).detach()
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            codes.extend(index.reshape(batch, -1) for index in indices)
        return _result(quantized_out, codes, losses, mask, self.size)

    def encode(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> Tensor:
        return self.forward(latent, mask, n_q).codes

    def decode(self, codes: Tensor) -> Tensor:
        batch, books, frames = codes.shape
        if books % self.groups:
            raise ValueError(f"GRVQ codes come in multiples of {self.groups}, got {books}")
        latent = None
        for stage in range(books // self.groups):
            parts = [
                module.embedding(codes[:, stage * self.groups + g])  # [B, F, d]
                for g, module in enumerate(self.stage(stage))
            ]
            stage_latent = torch.cat(parts, dim=-1).transpose(1, 2)
            latent = stage_latent if latent is None else latent + stage_latent
        assert latent is not None
        return latent


# --- Encodec / SoundStream: residual VQ with EMA codebooks ----------------------------------


class EuclideanCodebook(nn.Module):
    """An EMA codebook with k-means initialisation and dead-code restart (encodec's core_vq)."""

    def __init__(
        self,
        dim: int,
        size: int,
        decay: float = 0.99,
        kmeans_iters: int = 50,
        dead_code_threshold: float = 2.0,
        epsilon: float = 1e-5,
    ) -> None:
        super().__init__()
        self.size, self.decay, self.epsilon = size, decay, epsilon
        self.kmeans_iters, self.dead_code_threshold = kmeans_iters, dead_code_threshold
        self.register_buffer("inited", torch.tensor([kmeans_iters == 0], dtype=torch.float32))
        self.register_buffer("cluster_size", torch.zeros(size))
        embed = (
            torch.zeros(size, dim)
            if kmeans_iters
            else nn.init.kaiming_uniform_(torch.empty(size, dim))
        )
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def quantize(self, rows: Tensor) -> Tensor:
        return _nearest(rows, self.embed)

    @torch.no_grad()
    def initialise(self, samples: Tensor) -> None:
        """k-means on rank 0's first batch, broadcast to every rank."""
        if self.inited.item() or samples.numel() == 0:
            return
        means, bins = kmeans(samples.float(), self.size, self.kmeans_iters)
        self.embed.copy_(means)
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(bins.float())
        self.inited.fill_(1.0)
        for buffer in (self.embed, self.embed_avg, self.cluster_size):
            distrib.broadcast(buffer)

    @torch.no_grad()
    def update(self, samples: Tensor, indices: Tensor) -> None:
        """One EMA step on the (all-reduced) assignments ``indices`` of ``samples``."""
        onehot = torch.zeros(samples.shape[0], self.size, device=samples.device)
        onehot.scatter_(1, indices[:, None], 1.0)
        counts = distrib.all_reduce_sum(onehot.sum(0))
        sums = distrib.all_reduce_sum(samples.float().t() @ onehot).t()
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.size * self.epsilon) * total
        self.embed.copy_(self.embed_avg / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, samples: Tensor) -> None:
        """Move codes whose EMA usage fell below the threshold onto random batch vectors.

        Encodec replaces only ``embed``, after the batch was already assigned, and the EMA
        step right after recomputes ``embed`` from ``embed_avg / cluster_size`` - undoing
        the restart. We restart before assigning, and reset those two as well (to the
        threshold's worth of the new vector, as vector-quantize-pytorch does) so it sticks.
        """
        if self.dead_code_threshold <= 0 or samples.shape[0] == 0:
            return
        expired = self.cluster_size < self.dead_code_threshold
        if not expired.any():
            return
        replacement = sample_vectors(samples.float(), self.size)
        rows = expired[:, None]
        self.embed.copy_(torch.where(rows, replacement, self.embed))
        self.embed_avg.copy_(
            torch.where(rows, replacement * self.dead_code_threshold, self.embed_avg)
        )
        self.cluster_size.masked_fill_(expired, self.dead_code_threshold)
        for buffer in (self.embed, self.embed_avg, self.cluster_size):
            distrib.broadcast(buffer)


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
        kmeans_iters: int = 50,
        dead_code_threshold: float = 2.0,
        commitment_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.size = size
        self.commitment_weight = commitment_weight
        self.vq = _Layers(
            [
                VectorQuantization(
                    EuclideanCodebook(dim, size, decay, kmeans_iters, dead_code_threshold)
                )
                for _ in range(num_quantizers)
            ]
        )

    @property
    def num_codebooks(self) -> int:
        return len(self.vq.layers)

    def _codebooks(self, n_q: int | None) -> list[EuclideanCodebook]:
        n_q = self.num_codebooks if n_q is None else n_q
        if not 0 < n_q <= self.num_codebooks:
            raise ValueError(f"n_q must be in 1..{self.num_codebooks}, got {n_q}")
        return [layer._codebook for layer in self.vq.layers[:n_q]]  # type: ignore[union-attr]

    def forward(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> QuantizerResult:
        batch = latent.shape[0]
        residual = latent
        quantized_out = torch.zeros_like(latent)
        codes, losses = [], []
        for codebook in self._codebooks(n_q):
            if self.training:
                samples = _valid_rows(residual.detach(), mask)
                codebook.initialise(samples)
                codebook.restart_dead_codes(samples)
            indices = codebook.quantize(_to_rows(residual.detach()))
            quantized = _from_rows(codebook.embed[indices], batch)
            if self.training:
                valid = None if mask is None else mask[:, 0, :].reshape(-1) > 0
                rows = _to_rows(residual.detach())
                codebook.update(
                    rows if valid is None else rows[valid],
                    indices if valid is None else indices[valid],
                )
            losses.append(
                self.commitment_weight * _masked_mean((quantized.detach() - residual) ** 2, mask)
            )
            quantized = residual + (quantized - residual).detach()
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            codes.append(indices.reshape(batch, -1))
        return _result(quantized_out, codes, losses, mask, self.size)

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Mask = None, n_q: int | None = None) -> Tensor:
        batch = latent.shape[0]
        residual = latent
        codes = []
        for codebook in self._codebooks(n_q):
            indices = codebook.quantize(_to_rows(residual))
            residual = residual - _from_rows(codebook.embed[indices], batch)
            codes.append(indices.reshape(batch, -1))
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        latent = None
        for k, codebook in enumerate(self._codebooks(codes.shape[1])):
            part = codebook.embed[codes[:, k]].transpose(1, 2)  # [B, D, F]
            latent = part if latent is None else latent + part
        assert latent is not None
        return latent


def sample_vectors(samples: Tensor, count: int) -> Tensor:
    """``count`` rows of ``samples``: a random subset, or with repeats when there are fewer."""
    total = samples.shape[0]
    if total >= count:
        indices = torch.randperm(total, device=samples.device)[:count]
    else:
        indices = torch.randint(0, total, (count,), device=samples.device)
    return samples[indices]


def kmeans(samples: Tensor, clusters: int, iterations: int) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from randomly sampled data points; empty clusters keep their point."""
    means = sample_vectors(samples, clusters)
    bins = torch.zeros(clusters, device=samples.device, dtype=torch.long)
    for _ in range(iterations):
        buckets = _nearest(samples, means)
        bins = torch.bincount(buckets, minlength=clusters)
        sums = torch.zeros_like(means).index_add_(0, buckets, samples)
        empty = bins == 0
        means = torch.where(empty[:, None], means, sums / bins.clamp(min=1)[:, None])
    return means, bins

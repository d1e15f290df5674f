"""Validation on a fixed subset of full utterances: mel L1, SI-SDR, codebook perplexity and
usage over all their frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from academicodec.models import CodecModel
from academicodec.models.config import CodecConfig
from academicodec.models.measures import si_sdr
from academicodec.models.quantizers import codebook_stats
from academicodec.pipelines.readers import ExactOnceSamples
from academicodec.training.losses import MultiResolutionMelLoss

if TYPE_CHECKING:
    from academicodec.training.loop import RunOptions


@torch.no_grad()
def validate(
    model: CodecModel, options: RunOptions, config: CodecConfig, device: torch.device
) -> dict[str, Any]:
    """Metrics over the first ``val_items`` utterances of ``--val`` (default: ``--data``),
    the same items every time (rank 0's exact-once slice of a one-process view)."""
    source = options.val or options.data
    items = []
    for sample in ExactOnceSamples(source, rank=0, world_size=1):
        items.append(sample)
        if len(items) >= options.val_items:
            break
    was_training = model.training
    model.eval()
    mel_loss = MultiResolutionMelLoss(config.sample_rate, config.train.mel_loss).to(device)
    mels, sdrs, usage, examples = [], [], [], []
    for sample in items:
        wav = torch.from_numpy(sample["audio"]).to(device)[None, None]
        codes = model.encode(wav)
        audio = model.decode(codes)[..., : wav.shape[-1]]
        mels.append(float(mel_loss(audio, wav)))
        sdrs.append(float(si_sdr(audio, wav)[0]))
        usage.append(codes)
        if len(examples) < 2:
            examples.append((sample["key"], audio[0].float().cpu(), wav[0].float().cpu()))
    if was_training:
        model.train()
    perplexity, used = _codebook_health(usage, model.codebook_size)
    return {
        "mel_l1": sum(mels) / max(1, len(mels)),
        "si_sdr": sum(sdrs) / max(1, len(sdrs)),
        "codebook_used": used,
        "codebook_perplexity": perplexity,
        "examples": examples,
    }


def _codebook_health(codes: list[torch.Tensor], size: int) -> tuple[list[float], list[float]]:
    """Per codebook over every validation frame: perplexity and fraction of codes used.
    A batch's figures flatter a codebook (few frames, recent restarts); these do not."""
    if not codes:
        return [], []
    joined = torch.cat([c[0] for c in codes], dim=-1)  # [K, all frames]
    perplexity, used = codebook_stats(joined[None], None, size)
    return perplexity.tolist(), used.tolist()

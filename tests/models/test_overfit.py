"""A tiny preset overfits one clip: the multi-resolution mel L1 falls by half (slow)."""

import pytest
import torch

from academicodec.models import build_codec
from academicodec.models.losses import MultiResolutionMelLoss
from academicodec.synth import voiced_signal


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_tiny_preset_overfits_one_clip(name: str) -> None:
    torch.manual_seed(0)
    model = build_codec(name).train()
    config = model.config.train
    clip = torch.from_numpy(voiced_signal(1.0, model.sample_rate, seed=3))[None, None]
    mel_loss = MultiResolutionMelLoss(model.sample_rate, config.mel_loss)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.8, 0.99))
    losses = []
    for _ in range(300):
        out = model(clip)
        mel = mel_loss(out.audio, clip)
        loss = config.loss_weights.mel * mel + config.loss_weights.quantizer * out.quantizer_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(mel.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last <= 0.5 * first, f"mel L1 {first:.3f} -> {last:.3f}"

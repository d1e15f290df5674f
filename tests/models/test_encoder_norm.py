"""The SEANet encoder's per-channel norm (``encodec.encoder_norm: instance_norm``, the tiny
Encodec/SoundStream presets' choice) makes its latent independent of the input's level:
why the EMA RVQ's codebooks now cover quiet, unseen voices (docs/training.md)."""

import pytest
import torch

from academicodec.models import build_codec, load_codec_config
from academicodec.synth import formant_speech


def _centred_similarity(norm: str, seed: int) -> float:
    """Cosine similarity of the time-centred latents of one clip at -14 and -36 dBFS."""
    torch.manual_seed(seed)
    model = build_codec(load_codec_config("tiny_encodec_16k", {"encodec.encoder_norm": norm}))
    clip = torch.from_numpy(formant_speech(2.0, 16000, seed + 7))[None, None]
    clip = clip / clip.pow(2).mean().sqrt()
    with torch.no_grad():
        loud, quiet = (model.eval().latent(clip * 10 ** (db / 20))[0] for db in (-14, -36))
    loud, quiet = (x - x.mean(dim=-1, keepdim=True) for x in (loud, quiet))
    return float(torch.nn.functional.cosine_similarity(loud.flatten(), quiet.flatten(), dim=0))


@pytest.mark.parametrize(
    "preset", ["tiny_encodec_16k", "tiny_soundstream_16k", "tiny_hificodec_16k"]
)
def test_the_tiny_presets_normalise_each_channel(preset: str) -> None:
    norms = [m for m in build_codec(load_codec_config(preset, {})).modules()
             if isinstance(m, torch.nn.GroupNorm)]  # fmt: skip
    assert norms and all(norm.num_groups == norm.num_channels for norm in norms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_quiet_clip_keeps_its_latent(seed: int) -> None:
    assert _centred_similarity("instance_norm", seed) >= 0.95


def test_one_group_per_layer_does_not() -> None:
    """The norm the tiny presets had before: a quiet clip's latent is another one."""
    assert min(_centred_similarity("time_group_norm", seed) for seed in range(3)) < 0.8


@pytest.mark.parametrize("preset", ["tiny_encodec_16k", "tiny_hificodec_16k"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_one_frame_clip_encodes(preset: str, mode: str) -> None:
    """One latent frame: each per-channel group holds one value (torch's group_norm refuses
    that); the norm of one value is 0, alone or beside longer items."""
    model = build_codec(load_codec_config(preset, {})).train(mode == "train")
    clip = torch.randn(1, 1, 320) * 0.1
    with torch.no_grad():
        alone = model.encode(clip)
        batched = model.encode(torch.cat([clip, torch.zeros(1, 1, 960)], -1).repeat(2, 1, 1),
                               torch.tensor([320, 1280]))  # fmt: skip
    assert alone.shape[-1] == 1
    torch.testing.assert_close(batched[:1, ..., :1], alone, rtol=0, atol=0)

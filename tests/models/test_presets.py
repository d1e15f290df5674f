"""Every shipped preset builds, matches the DESIGN table, and trains one tiny step."""

import pytest
import torch

from academicodec.config import preset_names
from academicodec.errors import UserError
from academicodec.models import build_codec, load_codec_config
from academicodec.training.discriminators import Discriminators
from academicodec.training.losses import (
    MultiResolutionMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

# DESIGN §4: sample rate, hop, frames/s, K, codebook size, kbps at full K.
TABLE = {
    "encodec_16k_320d": (16000, 320, 50, 24, 1024, 12.0),
    "encodec_24k_240d": (24000, 240, 100, 12, 1024, 12.0),
    "encodec_24k_32d": (24000, 32, 750, 2, 1024, 15.0),
    "soundstream_24k_240d": (24000, 240, 100, 12, 1024, 12.0),
    "hificodec_16k_320d": (16000, 320, 50, 4, 1024, 2.0),
    "hificodec_24k_240d": (24000, 240, 100, 4, 1024, 4.0),
    "hificodec_24k_320d": (24000, 320, 75, 4, 1024, 3.0),
    "tiny_encodec_16k": (16000, 320, 50, 4, 1024, 2.0),
    "tiny_soundstream_16k": (16000, 320, 50, 4, 1024, 2.0),
    "tiny_hificodec_16k": (16000, 320, 50, 4, 1024, 2.0),
    # The released AcademiCodec architectures (import targets, issue 8)
    "academicodec_hificodec_16k_320d": (16000, 320, 50, 4, 1024, 2.0),
    "academicodec_hificodec_24k_320d": (24000, 320, 75, 4, 1024, 3.0),
    "academicodec_hificodec_24k_240d": (24000, 240, 100, 4, 1024, 4.0),
    "academicodec_encodec_16k_320d": (16000, 320, 50, 24, 1024, 12.0),
    # Released Meta EnCodec and DAC architectures (import targets, issue 12)
    "meta_encodec_24khz": (24000, 320, 75, 32, 1024, 24.0),
    "dac_16khz": (16000, 320, 50, 12, 1024, 6.0),
    "dac_24khz": (24000, 320, 75, 32, 1024, 24.0),
    "dac_44khz": (44100, 512, 44100 / 512, 9, 1024, 9 * 44100 / 512 * 10 / 1000),
}
# Generator parameters of the original AcademiCodec models (weight norm removed).
ORIGINAL_PARAMETERS = {
    "hificodec_16k_320d": 63_602_497,
    "hificodec_24k_320d": 63_602_497,
    "encodec_16k_320d": 17_599_713,
    "encodec_24k_240d": 16_600_000,  # "16.6 M": compared within 5%
    "tiny_hificodec_16k": 265_421,  # one MRF kernel a block (the fixture model: 560,861)
    "tiny_encodec_16k": 248_669,
    "academicodec_hificodec_16k_320d": 63_602_497,
    "academicodec_encodec_16k_320d": 17_599_713,
    # counted on the reference packages' models (encodec 0.1.1, descript-audio-codec 1.0.0)
    "meta_encodec_24khz": 14_846_817,
    "dac_16khz": 74_141_697,
    "dac_24khz": 74_653_857,
    "dac_44khz": 76_620_777,
}
RELEASED_PREFIXES = ("academicodec_", "meta_", "dac_")


# Import-only speech-LM codecs (no training forward): rate, hop, frames/s, codebooks, size,
# kbps at all codebooks, and every parameter as the reference package counts them (moshi
# 0.2.13 get_mimi(None); snac 1.2.1 SNAC(**snac_24khz's config.json); transformers 5.25
# Xcodec2Model(Xcodec2Config()): 629,281,706 less w2v-BERT's training-only masked_spec_embed).
SPEECH_LM = {
    "kyutai_mimi": (24000, 1920, 12.5, 32, 2048, 4.4, 79_308_609),
    "snac_24khz": (24000, 2048, 24000 / 2048, 7, 4096, 0.984375, 19_842_914),
    "xcodec2": (16000, 320, 50.0, 1, 65536, 0.8, 629_280_682),
}


def test_every_preset_is_in_the_table() -> None:
    assert set(preset_names()) == set(TABLE) | set(SPEECH_LM)


@pytest.mark.parametrize("name", sorted(SPEECH_LM))
def test_speech_lm_preset_matches_the_reference(name: str) -> None:
    model = build_codec(name)
    rate, hop, fps, books, size, kbps, parameters = SPEECH_LM[name]
    assert (model.sample_rate, model.hop_length, model.frame_rate) == (rate, hop, fps)
    assert (model.num_codebooks, model.codebook_size) == (books, size)
    assert model.bitrate_kbps() == pytest.approx(kbps)
    assert sum(p.numel() for p in model.parameters()) == parameters


@pytest.mark.parametrize("name", sorted(TABLE))
def test_preset_matches_design(name: str) -> None:
    model = build_codec(name)
    rate, hop, fps, books, size, kbps = TABLE[name]
    assert (model.sample_rate, model.hop_length, model.frame_rate) == (rate, hop, fps)
    assert (model.num_codebooks, model.codebook_size) == (books, size)
    assert model.bitrate_kbps() == pytest.approx(kbps)
    if name in ORIGINAL_PARAMETERS:
        assert model.generator_parameters() == pytest.approx(ORIGINAL_PARAMETERS[name], rel=0.05)
    if name.startswith(RELEASED_PREFIXES) and name in ORIGINAL_PARAMETERS:
        assert model.generator_parameters() == ORIGINAL_PARAMETERS[name]  # exactly
    if name.startswith("tiny_"):
        assert model.generator_parameters() < 1_000_000


@pytest.mark.parametrize("name", sorted(TABLE))
def test_one_training_step(name: str) -> None:
    """Generator losses backpropagate for every preset (a short clip). The full-width
    discriminators are built but only run for the tiny presets, which take the same code
    paths (MPD, MSD, MS-STFT) and keep this test fast on CPU."""
    torch.manual_seed(0)
    model = build_codec(name).train()
    config = model.config.train
    frames = max(8, -(-4800 // model.hop_length))  # longer than the largest STFT window
    wav = 0.1 * torch.randn(2, 1, model.hop_length * frames)
    out = model(wav, torch.tensor([wav.shape[-1], wav.shape[-1] - model.hop_length * 3]))
    assert out.audio.shape == wav.shape and out.codes.shape[0] == 2
    mel = MultiResolutionMelLoss(model.sample_rate, config.mel_loss)
    weights = config.loss_weights
    loss = weights.mel * mel(out.audio, wav) + weights.quantizer * out.quantizer_loss
    discriminators = Discriminators(config.discriminator)
    if name.startswith("tiny_"):
        real_logits, real_maps = discriminators(wav)
        fake_logits, fake_maps = discriminators(out.audio)
        loss = (
            loss
            + weights.adversarial * generator_adversarial_loss(fake_logits, config.adversarial_loss)
            + weights.feature_matching * feature_matching_loss(real_maps, fake_maps)
        )
        detached_fake, _ = discriminators(out.audio.detach())
        d_loss = discriminator_loss(real_logits, detached_fake, config.adversarial_loss)
        d_loss.backward()
        assert torch.isfinite(d_loss)
        assert all(p.grad is not None for p in discriminators.parameters())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_overrides_and_bad_presets(tmp_path) -> None:
    config = load_codec_config("tiny_hificodec_16k", {"train.lr": 1e-3, "latent_dim": 32})
    assert config.train.lr == 1e-3 and config.latent_dim == 32
    assert build_codec("tiny_hificodec_16k", train__batch_size=3).config.train.batch_size == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny_hificodec_16k\nhificodec:\n  n_code_grups: 3\n")
    with pytest.raises(UserError, match=r"bad\.yaml.*hificodec\.n_code_grups"):
        load_codec_config(bad)
    bad.write_text("extends: tiny_hificodec_16k\nsample_rate: fast\n")
    with pytest.raises(UserError, match="sample_rate must be int"):
        load_codec_config(bad)
    bad.write_text("extends: tiny_hificodec_16k\ntrain:\n  optimizer: sgd\n")
    with pytest.raises(UserError, match="train.optimizer must be one of"):
        load_codec_config(bad)
    with pytest.raises(UserError, match="unknown preset"):
        load_codec_config("no_such_preset")


@pytest.mark.parametrize(
    ("yaml_lines", "named"),
    [
        ("latent_dim: 63\n", "hificodec.n_code_groups (2) must divide latent_dim (63)"),
        ("hificodec:\n  code_dim: -1\n", "hificodec.code_dim"),
        ("hificodec:\n  n_code_groups: 0\n", "hificodec.n_code_groups"),
        ("codebooks:\n  init: random\n", "codebooks.init"),
        ("codebooks:\n  dead_code_ratio: 1.5\n", "codebooks.dead_code_ratio"),
        ("codebooks:\n  usage_decay: 1.0\n", "codebooks.usage_decay"),
        ("codebooks:\n  kmeans_iters: 0\n", "codebooks.kmeans_iters"),
        ("codebook_size: 1\n", "codebook_size"),
    ],
)
def test_inconsistent_quantizer_options_are_one_line_errors(
    tmp_path, yaml_lines: str, named: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny_hificodec_16k\n" + yaml_lines)
    with pytest.raises(UserError) as error:
        load_codec_config(bad)
    message = str(error.value)
    assert "bad.yaml" in message and named in message and "\n" not in message


def test_encodec_ema_decay_is_checked(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny_encodec_16k\nencodec:\n  ema_decay: 1.5\n")
    with pytest.raises(UserError, match=r"bad\.yaml: encodec\.ema_decay must be in"):
        load_codec_config(bad)

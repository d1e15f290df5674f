"""Length-aware framing: batched codes equal one-at-a-time codes; F = ceil(T / hop)."""

import math

import pytest
import torch

from academicodec.models import build_codec, scheduling
from academicodec.models.layers import remove_weight_norm

TINY = ["tiny_hificodec_16k", "tiny_encodec_16k", "tiny_soundstream_16k"]


def _clips(model, seconds: list[float], seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    jitter = torch.randint(0, 317, (len(seconds),), generator=generator).tolist()
    lengths = [int(s * model.sample_rate) + j for s, j in zip(seconds, jitter, strict=True)]
    return [0.1 * torch.randn(n, generator=generator) for n in lengths]


def _batch(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.zeros(len(clips), 1, max(len(c) for c in clips))
    for i, clip in enumerate(clips):
        batch[i, 0, : len(clip)] = clip
    return batch, torch.tensor([len(c) for c in clips])


def _initialised(name: str):
    """A model in eval mode with codebooks that are not a field of near-ties.

    A randomly initialised SEANet maps every input to nearly the same latent (its biases
    dominate), so k-means codewords sit ~1e-7 apart and fp32 rounding (which differs between
    batch shapes) decides the codes. As for the original-code fixtures, the last encoder conv
    is rescaled so the latent has zero mean and unit variance on calibration clips, and the
    EMA codebooks are then k-means initialised on more frames than they have entries.
    """
    torch.manual_seed(0)
    model = build_codec(name)
    if model.config.family == "hificodec":
        return model.eval()
    remove_weight_norm(model)
    calibration = _batch(_clips(model, [12.0, 12.0], seed=99))
    last = model.encoder.model[-1].conv.conv
    with torch.no_grad():
        latent = model.encoder(model._frame(*calibration)[0], None)
        mean, std = latent.mean(dim=(0, 2)), latent.std(dim=(0, 2))
        last.weight /= std[:, None, None]
        last.bias.copy_((last.bias - mean) / std)
        model.train()
        model(*calibration)
    return model.eval()


def _agreement(model, clips: list[torch.Tensor]) -> float:
    batch, lengths = _batch(clips)
    with torch.no_grad():
        batched = model.encode(batch, lengths)
        equal = total = 0
        for i, clip in enumerate(clips):
            alone = model.encode(clip[None, None])
            frames = math.ceil(len(clip) / model.hop_length)
            assert alone.shape == (1, model.num_codebooks, frames)
            equal += (alone[0] == batched[i, :, :frames]).sum().item()
            total += alone.numel()
    return equal / total


@pytest.fixture(params=["cpu-groups", "whole-batch"])
def batching(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both execution strategies: length-sorted CPU groups, and the whole padded batch at
    once (what runs on a GPU), where masking alone must keep the codes exact."""
    if request.param == "whole-batch":
        monkeypatch.setattr(scheduling, "CPU_GROUP_SAMPLES", 1 << 40)
    return request.param


@pytest.mark.parametrize("name", TINY)
def test_batched_equals_single_tiny(name: str, batching: str) -> None:
    model = _initialised(name)
    clips = _clips(model, [3.1, 4.7, 5.0, 0.9, 2.2], seed=1)
    assert _agreement(model, clips) >= 0.999


@pytest.mark.slow
def test_batched_equals_single_full_hificodec(batching: str) -> None:
    """The full-size HiFi-Codec (63.6 M): clips of 3.1/4.7/5.0 s padded to 5 s, the case where
    the original changes 9-32% of codes."""
    model = _initialised("hificodec_16k_320d")
    clips = _clips(model, [1.1, 1.7, 2.0], seed=2)
    assert _agreement(model, clips) >= 0.999


@pytest.mark.parametrize("name", TINY)
def test_framing_decode_length_and_prefix(name: str) -> None:
    model = _initialised(name)
    hop = model.hop_length
    for samples in (hop * 10, hop * 10 + 1, hop * 10 - 1, 1234):
        wav = 0.1 * torch.randn(1, 1, samples)
        with torch.no_grad():
            codes = model.encode(wav)
            assert codes.shape[-1] == math.ceil(samples / hop)
            assert codes.dtype == torch.int64
            assert int(codes.min()) >= 0 and int(codes.max()) < model.codebook_size
            audio = model.decode(codes)
        assert audio.shape == (1, 1, codes.shape[-1] * hop)
    step = 2 if model.config.family == "hificodec" else 1  # GRVQ: whole stages
    with torch.no_grad():
        full = model.encode(wav)
        for n_q in range(step, model.num_codebooks, step):
            assert torch.equal(model.encode(wav, n_q=n_q), full[:, :n_q])
        assert model.decode(full[:, :step]).shape == audio.shape


def test_decode_lengths_zero_the_tail() -> None:
    model = _initialised("tiny_hificodec_16k")
    codes = torch.randint(0, 1024, (2, 4, 12))
    with torch.no_grad():
        audio = model.decode(codes, torch.tensor([12, 5]))
        alone = model.decode(codes[1:, :, :5])
    assert audio[1, :, 5 * model.hop_length :].abs().max() == 0
    torch.testing.assert_close(audio[1, :, : 5 * model.hop_length], alone[0], atol=1e-5, rtol=0)


def test_groups_on_a_runner_give_the_same_codes_and_encode_changes_no_setting() -> None:
    """The caller's GroupRunner spreads CPU groups over threads (one intra-op thread each);
    encode/decode themselves never touch torch's process-wide thread setting."""
    from academicodec.models.scheduling import GroupRunner

    model = _initialised("tiny_hificodec_16k")
    clips = _clips(model, [3.1, 4.7, 5.0, 0.9, 2.2], seed=4)
    batch, lengths = _batch(clips)
    frames = (lengths + 319) // 320
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            sequential = model.encode(batch, lengths)
            audio = model.decode(sequential, frames)
            assert torch.get_num_threads() == 2  # the model changed nothing
            with GroupRunner() as runner:
                assert runner.pool is not None and torch.get_num_threads() == 1
                threaded = model.encode(batch, lengths, runner=runner)
                threaded_audio = model.decode(threaded, frames, runner=runner)
        assert torch.get_num_threads() == 2  # restored when the runner closed
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(sequential, threaded)
    torch.testing.assert_close(audio, threaded_audio)

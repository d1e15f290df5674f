"""Core audio helpers: loading windows, downmixing, resampling, encoding, synthesis."""

import os
import signal

import numpy as np
import pytest
import soundfile as sf

from academicodec.audio import encode_audio, load_audio, resample
from academicodec.manifests.synthetic import SpeechSource
from academicodec.synth import formant_speech, voiced_signal


def test_load_window_downmix_and_resample(tmp_path) -> None:
    left = np.linspace(-0.5, 0.5, 44100, dtype=np.float32)
    stereo = np.stack([left, -left * 0.5], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="FLOAT")
    mono, rate = load_audio(tmp_path / "s.wav")
    assert rate == 44100 and mono.shape == (44100,)
    np.testing.assert_allclose(mono, left * 0.25, atol=1e-6)
    window, _ = load_audio(tmp_path / "s.wav", offset=0.5, duration=0.25)
    np.testing.assert_allclose(window, mono[22050 : 22050 + 11025], atol=1e-6)
    resampled, rate = load_audio(tmp_path / "s.wav", target_rate=16000)
    assert rate == 16000 and abs(len(resampled) - 16000) <= 1


def test_resample_preserves_a_tone() -> None:
    t = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, 48000, 16000)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * 16000 / len(out) == pytest.approx(440, abs=2)


def test_encode_round_trip() -> None:
    signal = voiced_signal(0.5, 16000, seed=1)
    for fmt in ("flac", "wav"):
        decoded, rate = load_audio(encode_audio(signal, 16000, fmt))
        assert rate == 16000
        np.testing.assert_allclose(decoded, signal, atol=1 / 32768 + 1e-6)


def test_voiced_signal_is_deterministic_and_speech_like() -> None:
    a, b = voiced_signal(1.0, 16000, 7), voiced_signal(1.0, 16000, 7)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.5 < np.abs(a).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(len(a), 1 / 16000)
    assert spectrum[freqs < 4000].sum() > 10 * spectrum[freqs > 6000].sum()


def test_formant_speech_is_another_kind_of_voice() -> None:
    """The held-out generator: deterministic, never clipped, pauses and levels that vary
    from clip to clip (-36 to -6 dBFS RMS), speech's spectral balance, and not the
    harmonic generator's signal."""
    a, b = formant_speech(2.0, 16000, 3), formant_speech(2.0, 16000, 3)
    assert a.dtype == np.float32 and np.array_equal(a, b) and len(a) == 32000
    levels = []
    for seed in range(12):
        clip = formant_speech(2.0, 16000, seed)
        assert np.isfinite(clip).all() and np.abs(clip).max() <= 0.95 + 1e-6
        levels.append(20 * np.log10(np.sqrt(np.mean(clip**2))))
        frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
        energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        assert energy.max() - np.percentile(energy, 5) > 20  # pauses and closures
    assert min(levels) < -25 and max(levels) > -18 and max(levels) <= -6 + 1e-3
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(len(a), 1 / 16000)
    assert spectrum[freqs < 4000].sum() > 2 * spectrum[freqs > 4000].sum()
    with pytest.raises(ValueError, match="generator must be one of"):
        SpeechSource(generator="klatt")


def test_ctrl_c_inside_a_cffi_callback_is_not_lost(monkeypatch) -> None:
    """libsndfile writes a BytesIO through cffi callbacks, which print a KeyboardInterrupt
    raised inside them and go on (issue 35: shard then exited 0). The Ctrl-C is held back
    and delivered when the write is done."""
    from academicodec import audio as audio_module

    real_write = audio_module.sf.write

    def write_as_cffi_would(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while libsndfile is in a callback
            real_write(*args, **kwargs)
        except KeyboardInterrupt:
            pass  # "Exception ignored from cffi callback"

    monkeypatch.setattr(audio_module.sf, "write", write_as_cffi_would)
    # Python's own Ctrl-C handler, installed for the test: a pytest-xdist worker can start
    # with SIGINT ignored (SIG_IGN), and a Ctrl-C re-sent to an ignoring process is, rightly,
    # ignored (two full-suite runs failed here with "DID NOT RAISE" for that reason).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            audio_module.encode_audio(np.zeros(1600, dtype=np.float32), 16000)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, previous)

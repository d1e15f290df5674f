"""Metric correctness: known ceilings on identical signals, the right direction (and SI-SDR
value) under a known degradation, undefined cases reported instead of crashing."""

import numpy as np
import pytest

from academicodec.evaluation import metrics
from academicodec.synth import voiced_signal


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return voiced_signal(3.0, 16000, seed=5)


def _noisy(signal: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(len(signal)).astype(np.float32)
    noise *= np.sqrt(np.mean(signal**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return signal + noise


def test_identical_signals_reach_the_ceilings(speech: np.ndarray) -> None:
    assert metrics.pesq(speech, speech, 16000, "wb") == pytest.approx(4.64, abs=0.01)
    assert metrics.pesq(speech, speech, 16000, "nb") > 4.4
    assert metrics.stoi(speech, speech, 16000) == pytest.approx(1.0, abs=1e-6)
    assert metrics.stoi(speech, speech, 16000, extended=True) == pytest.approx(1.0, abs=1e-6)
    assert metrics.si_sdr(speech, speech) > 60
    assert metrics.mel_distance(speech, speech, 16000) == pytest.approx(0.0, abs=1e-6)


def test_white_noise_at_10_db(speech: np.ndarray) -> None:
    noisy = _noisy(speech, 10.0)
    assert metrics.si_sdr(speech, noisy) == pytest.approx(10.0, abs=0.5)
    assert metrics.pesq(speech, noisy, 16000, "wb") < 3.0
    assert metrics.stoi(speech, noisy, 16000) < 0.99
    assert metrics.mel_distance(speech, noisy, 16000) > 0.1


def test_other_rates_are_resampled_for_pesq() -> None:
    speech24 = voiced_signal(2.0, 24000, seed=2)
    assert metrics.pesq(speech24, speech24, 24000, "wb") == pytest.approx(4.64, abs=0.01)


def test_undefined_cases_raise_metric_error() -> None:
    silence = np.zeros(16000, np.float32)
    with pytest.raises(metrics.MetricError, match="PESQ"):
        metrics.pesq(silence, silence, 16000, "wb")
    with pytest.raises(metrics.MetricError, match="shorter"):
        metrics.mel_distance(np.ones(300, np.float32), np.ones(300, np.float32), 16000)


def test_code_statistics() -> None:
    codes = np.array([[0, 5], [1, 5], [2, 5], [3, 5]])
    stats = metrics.code_statistics(codes, 8)
    assert stats["entropy_bits"] == [2.0, 0.0]
    assert stats["perplexity"] == [4.0, 1.0]
    assert stats["used"] == [0.5, 0.125]

"""What training learns, measured on audio it did not train on (issues 11 and 31), on three
seeds: both tiny presets' codebooks stay in use on voices of another kind than the training
audio, from the first validation on, and the codec improves on held-out clips of the
training voices. Generator-only (the discriminators start after the run), which keeps 300
CPU steps short; every other setting is the preset's default. The run and its goals are
``bench/codebook_health.py``'s (its 5-seed table is in docs/benchmarks.md)."""

from pathlib import Path

import pytest
import torch

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import build_codec, load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions
from academicodec.training.checkpoint import load_state_file
from academicodec.training.validation import validate

STEPS, EVERY = 300, 25
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _training_voices_held_out(root: Path, seed: int) -> Path:
    """8 clips of the training generator's voices that training never sees (another seed
    of clips, longer utterances): where the codec must get better."""
    folder = root / "in_domain"
    if not (folder / "shards" / "index.json").is_file():
        make_folder(folder / "audio", 8, seed=seed + 5, source=SpeechSource(seed=seed),
                    durations=(1.5, 3.0))  # fmt: skip
        prepare("folder", folder / "audio", folder / "manifests")
        write_shards([folder / "manifests"], folder / "shards", ShardSettings(16000, seed=seed))
    return folder / "shards"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("preset", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_codebooks_stay_healthy_on_other_voices_and_the_codec_improves(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    preset: str,
    seed: int,
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    from codebook_health import make_corpora, run

    root = tmp_path_factory.getbasetemp() / "health"  # corpora shared by a worker's runs
    data, _ = make_corpora(root / f"data-{seed}", seed)
    in_domain = _training_voices_held_out(root / f"data-{seed}", seed)
    options = RunOptions(out=root, data=data, val=in_domain, device="cpu", val_items=8, seed=seed)
    overrides = {"train.disc_start_step": 10 * STEPS}
    config = load_codec_config(preset, overrides)
    torch.manual_seed(seed)  # the initial weights the run starts from
    model = build_codec(config)
    before = validate(model, options, config, torch.device("cpu"))["mel_l1"]

    result = run(preset, seed, STEPS, EVERY, root, {})

    assert result["steps"] == list(range(EVERY, STEPS + 1, EVERY))
    curves = f"perplexity {result['perplexity']}, used {result['used']}"
    for perplexity, used in zip(result["perplexity"], result["used"], strict=True):
        assert min(perplexity) >= 32, curves
        assert perplexity[-1] >= 64, curves
        assert used[-1] >= 0.25, curves
    state = load_state_file(root / f"run-{preset}-{seed}" / "checkpoints" / "last.pt")
    model.load_state_dict(state.generator)
    after = validate(model, options, config, torch.device("cpu"))["mel_l1"]
    assert after <= 0.7 * before, (
        f"held-out mel L1 of the training voices {before:.3f} -> {after:.3f}"
    )

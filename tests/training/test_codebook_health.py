"""What training learns, measured on held-out audio: codebooks stay in use and the codec
improves (issue 11). Generator-only (the discriminators start after the run), which keeps
300 CPU steps short; every other setting is the preset's default."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder, make_libritts
from academicodec.models import build_codec, load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, train
from academicodec.training.validation import validate

STEPS = 300


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo's training corpus (24 LibriTTS-layout + 12 folder clips) and a held-out
    validation set of other clips (another seed, longer utterances)."""
    root = tmp_path_factory.mktemp("health")
    source = SpeechSource()
    make_libritts(root / "LibriTTS", {"dev-clean": 16, "test-clean": 8}, source=source)
    make_folder(root / "folder", 12, source=source, seed=1)
    make_folder(root / "held_out", 8, source=source, seed=5, durations=(1.5, 3.0))
    for name, layout in (("LibriTTS", "libritts"), ("folder", "folder"), ("held_out", "folder")):
        prepare(layout, root / name, root / "manifests" / name)
    settings = ShardSettings(16000, samples_per_shard=16)
    write_shards([root / "manifests" / "LibriTTS", root / "manifests" / "folder"],
                 root / "train", settings)  # fmt: skip
    write_shards([root / "manifests" / "held_out"], root / "val", settings)
    return root / "train", root / "val"


def _scalars(run: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_codebooks_stay_healthy_on_held_out_audio(
    corpus: tuple[Path, Path], tmp_path: Path, preset: str
) -> None:
    data, val = corpus
    overrides = {"train.disc_start_step": 10 * STEPS}
    options = RunOptions(
        out=tmp_path / "run", data=data, val=val, max_steps=STEPS, device="cpu", workers=0,
        val_every=50, ckpt_every=STEPS, val_items=8,
    )  # fmt: skip
    torch.manual_seed(options.seed)  # the initial weights the run starts from
    config = load_codec_config(preset, overrides)
    before = validate(build_codec(config), options, config, torch.device("cpu"))["mel_l1"]
    train(preset, options, overrides)
    run = tmp_path / "run"
    books = build_codec(config).num_codebooks
    for k in range(books):
        perplexity = _scalars(run, f"val/codebook_perplexity_{k}")
        used = _scalars(run, f"val/codebook_used_{k}")
        assert sorted(perplexity) == list(range(50, STEPS + 1, 50))
        assert perplexity[STEPS] >= 64, (k, perplexity)
        assert used[STEPS] >= 0.25, (k, used)
        assert all(v >= 32 for step, v in perplexity.items() if step > 50), (k, perplexity)
    after = _scalars(run, "val/mel_l1")[STEPS]
    assert after <= 0.7 * before, f"validation mel L1 {before:.3f} -> {after:.3f}"

"""bf16 covers the whole training step: with a hook on every convolution, LSTM and linear
layer of the generator and the discriminators, one bf16 step (GAN losses on) computes
>= 95% of their forward calls in bf16, and the only float32 layers are the islands that
training/precision.py names. Checked on CPU autocast: the same switch as on CUDA."""

from pathlib import Path

import pytest
import torch
from torch import nn

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, Trainer
from academicodec.training.precision import FP32_ISLANDS, ISLAND_MODULES, resolve_precision
from academicodec.training.trainer import optimizer_kernel

LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.LSTM, nn.Linear)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("precision-data")
    make_folder(root / "src", 6, rates=(16000,), formats=("wav",), durations=(0.5, 1.0))
    prepare("folder", root / "src", root / "manifests")
    write_shards([root / "manifests"], root / "shards", ShardSettings(16000))
    return root / "shards"


def _trainer(preset: str, shards: Path, precision: str, **options) -> Trainer:
    overrides = {"train.batch_size": 2, "train.segment_length": 4800, "train.disc_start_step": 0}
    config = load_codec_config(preset, overrides)
    run = RunOptions(out=Path("unused"), data=shards, workers=0, device="cpu",
                     precision=precision, **options)  # fmt: skip
    return Trainer(config, run, torch.device("cpu"))


def _output_dtypes(trainer: Trainer) -> list[tuple[str, torch.dtype]]:
    """(module path, output dtype) of every layer call in one training step."""
    calls: list[tuple[str, torch.dtype]] = []
    handles = []
    for prefix, root in (("model", trainer.model), ("discriminators", trainer.discriminators)):
        for name, module in root.named_modules():
            if isinstance(module, LAYERS):

                def hook(_m, _i, output, path=f"{prefix}.{name}") -> None:  # type: ignore[no-untyped-def]
                    tensor = output[0] if isinstance(output, tuple) else output
                    calls.append((path, tensor.dtype))

                handles.append(module.register_forward_hook(hook))
    batch = next(iter(trainer.loader))
    trainer.train_step(batch)  # the codebooks' initialisation (fp32 by design) happens here
    calls.clear()
    trainer.train_step(batch)
    for handle in handles:
        handle.remove()
    return calls


@pytest.mark.parametrize("preset", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_a_bf16_step_computes_in_bf16_but_for_named_islands(shards: Path, preset: str) -> None:
    calls = _output_dtypes(_trainer(preset, shards, "bf16"))
    disc = [c for c in calls if c[0].startswith("discriminators.")]
    assert disc and len(calls) > 50
    in_bf16 = sum(dtype == torch.bfloat16 for _, dtype in calls)
    assert in_bf16 / len(calls) >= 0.95, in_bf16 / len(calls)
    assert all(dtype == torch.bfloat16 for _, dtype in disc)  # D step, G losses and FM maps
    others = {path for path, dtype in calls if dtype != torch.bfloat16}
    for path in others:  # every float32 layer belongs to a named island
        island = next((i for prefix, i in ISLAND_MODULES.items() if path.startswith(prefix)), None)
        assert island in FP32_ISLANDS, path


def test_fp32_steps_stay_fp32_and_precision_resolves(shards: Path) -> None:
    calls = _output_dtypes(_trainer("tiny_hificodec_16k", shards, "fp32"))
    assert calls and all(dtype == torch.float32 for _, dtype in calls)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    with pytest.raises(UserError, match="fp16 needs a CUDA"):
        resolve_precision("fp16", torch.device("cpu"))
    assert optimizer_kernel(torch.device("cuda", 0)) == {"fused": True}
    assert optimizer_kernel(torch.device("cpu")) == {}


def test_compiled_generator_and_discriminators_train(shards: Path) -> None:
    """--compile wraps the generator and both uses of the discriminators (Dynamo's eager
    backend here: inductor compiles for minutes on this CPU) and the step still trains."""
    trainer = _trainer("tiny_hificodec_16k", shards, "bf16", compile=True, compile_backend="eager")
    assert all(
        hasattr(m, "_orig_mod")
        for m in (trainer.generator, trainer.disc, trainer.disc_for_generator)
    )
    batch = next(iter(trainer.loader))
    before = [p.detach().clone() for p in trainer.discriminators.parameters()]
    metrics = trainer.train_step(batch)  # a discriminator and a generator step
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics["train"].values())
    after = list(trainer.discriminators.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_channels_last_discriminators_compute_the_same() -> None:
    from academicodec.training.discriminators import Discriminators

    config = load_codec_config("tiny_encodec_16k").train.discriminator
    torch.manual_seed(0)
    plain = Discriminators(config)
    nhwc = Discriminators(config)
    nhwc.load_state_dict(plain.state_dict())
    nhwc.use_channels_last()
    wav = torch.randn(2, 1, 4800)
    (a, _), (b, maps_b) = plain(wav), nhwc(wav)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    assert any(
        m.is_contiguous(memory_format=torch.channels_last)
        for f in maps_b
        for m in f
        if m.dim() == 4
    )

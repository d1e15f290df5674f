"""Importing the original AcademiCodec checkpoints: the original's numbers, strictly."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from academicodec.errors import UserError
from academicodec.models import load_codec
from academicodec.models.families.academicodec.convert import import_academicodec, released_keys_map
from tests.helpers import REPO, run_cli

FIXTURES = REPO / "tests" / "fixtures" / "academicodec_original"
HIFI = FIXTURES / "hificodec_small.pt"
HIFI_CONFIG = FIXTURES / "hificodec_small_config_16k_320d.json"
ENCODEC = FIXTURES / "encodec_small.pt"
# The small HiFi model divides GroupNorm by 2 where the released one divides by 16: a
# number the original hard-codes, so not in the checkpoint or its config.
HIFI_OVERRIDES = {"hificodec.groupnorm_channels_per_group": 2}
INPUT = torch.from_numpy(np.load(FIXTURES / "input.npy"))[None, None]


def _hifi(compat: bool):
    return import_academicodec(
        HIFI, config_json=HIFI_CONFIG, overrides={**HIFI_OVERRIDES, "compat": compat}
    )


def _encodec(compat: bool):
    return import_academicodec(ENCODEC, overrides={"compat": compat})


def _reference_codes(family: str, suffix: str = "") -> torch.Tensor:
    """The original's codes as ours: [1, K, frames]."""
    codes = torch.from_numpy(np.load(FIXTURES / f"{family}_codes{suffix}.npy"))
    return codes.transpose(1, 2) if family == "hificodec" else codes.permute(1, 0, 2)


@pytest.mark.parametrize(("family", "load"), [("hificodec", _hifi), ("encodec", _encodec)])
def test_compat_mode_reproduces_the_original(family: str, load) -> None:
    model = load(compat=True)
    with torch.no_grad():
        for suffix, samples in (("", 36800), ("_1s", 16000), ("_odd16100", 16100)):
            codes = model.encode(INPUT[..., :samples])
            assert torch.equal(codes, _reference_codes(family, suffix)), suffix
        latent = model.encoder(INPUT)
        reference_latent = torch.from_numpy(np.load(FIXTURES / f"{family}_latent.npy"))
        torch.testing.assert_close(latent, reference_latent, atol=1e-3, rtol=0)
        for suffix in ("", "_odd16100"):
            decoded = model.decode(_reference_codes(family, suffix))
            reference = torch.from_numpy(np.load(FIXTURES / f"{family}_decoded{suffix}.npy"))
            assert decoded.shape == reference.shape
            torch.testing.assert_close(decoded, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("family", "load"), [("hificodec", _hifi), ("encodec", _encodec)])
def test_default_mode_gives_the_original_codes_on_whole_frames(family: str, load) -> None:
    """36800 samples is a multiple of the hop: our framing and the original's agree."""
    model = load(compat=False)
    with torch.no_grad():
        assert torch.equal(model.encode(INPUT), _reference_codes(family))
        odd = model.encode(INPUT[..., :16100])
    assert odd.shape[-1] == math.ceil(16100 / 320)  # ours: ceil framing by default


@pytest.mark.parametrize(("family", "load"), [("hificodec", _hifi), ("encodec", _encodec)])
def test_imported_models_batch_exactly(family: str, load) -> None:
    """Default mode: batched equals one-at-a-time (Encodec reflects each item at its end)."""
    model = load(compat=False)
    lengths = [36800, 30001, 16100, 9999]
    batch = torch.zeros(len(lengths), 1, max(lengths))
    for i, n in enumerate(lengths):
        batch[i, 0, :n] = INPUT[0, 0, -n:]
    with torch.no_grad():
        batched = model.encode(batch, torch.tensor(lengths))
        equal = total = 0
        for i, n in enumerate(lengths):
            alone = model.encode(batch[i : i + 1, :, :n])
            equal += (alone[0] == batched[i, :, : alone.shape[-1]]).sum().item()
            total += alone.numel()
    assert equal / total >= 0.999


@pytest.mark.parametrize(
    ("family", "key", "preset"),
    [
        ("hificodec", "hificodec_16k_320d_released_config", "academicodec_hificodec_16k_320d"),
        ("encodec", "encodec_16k_320d_released_config", "academicodec_encodec_16k_320d"),
    ],
)
def test_released_key_lists_map_onto_the_full_presets(family: str, key: str, preset: str) -> None:
    keys = json.loads((FIXTURES / "state_dict_keys.json").read_text())[key]
    assert released_keys_map(family, keys, preset) == []


def _broken(tmp_path: Path, edit) -> Path:
    state = torch.load(HIFI, map_location="cpu", weights_only=True)
    edit(state)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s["generator"].pop("conv_post.bias"),
            "missing keys (1): decoder.conv_post.bias",
        ),
        (lambda s: s["encoder"].update(extra=torch.zeros(1)), "unexpected keys (1): encoder.extra"),
        (
            lambda s: s["generator"].update({"conv_post.bias": torch.zeros(3)}),
            "wrong shapes (1): decoder.conv_post.bias (3,) != (1,)",
        ),
    ],
)
def test_broken_checkpoints_fail_naming_the_key(tmp_path: Path, edit, message: str) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        import_academicodec(path, config_json=HIFI_CONFIG, overrides=HIFI_OVERRIDES)
    assert "\n" not in str(info.value)


class NotATensor:  # pickled into a checkpoint: weights-only loading must refuse it
    pass


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"generator": {}, "encoder": {}, "quantizer": {}, "x": NotATensor()}, path)
    with pytest.raises(UserError, match="pickled objects other than tensors") as info:
        import_academicodec(path)
    assert "\n" not in str(info.value)


def test_cli_import_then_load(tmp_path: Path) -> None:
    result = run_cli(
        "import-academicodec", str(HIFI), str(tmp_path / "export"), "--config", str(HIFI_CONFIG),
        "--set", "hificodec.groupnorm_channels_per_group=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "560,861 parameters" in result.stdout
    model = load_codec(tmp_path / "export")
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model.encode(INPUT), _reference_codes("hificodec"))
    direct = load_codec(ENCODEC, compat=True)  # an original checkpoint, loaded directly
    with torch.no_grad():
        assert torch.equal(direct.encode(INPUT), _reference_codes("encodec"))
    failed = run_cli("import-academicodec", str(tmp_path / "nope.pt"), str(tmp_path / "x"))
    assert failed.returncode == 2 and "does not exist" in failed.stderr


def test_cli_import_tokenize_decode_on_a_folder(tmp_path: Path) -> None:
    """The released-checkpoint path a user takes: import, tokenize a folder, decode."""
    from academicodec.manifests.synthetic import make_folder

    make_folder(tmp_path / "audio", 4, durations=(0.5, 1.0))
    model, codes = str(tmp_path / "model"), str(tmp_path / "codes")
    steps = [
        ("import-academicodec", str(ENCODEC), model),
        ("tokenize", str(tmp_path / "audio"), codes, "-m", model, "--format", "webdataset,parquet"),
        ("decode", codes, str(tmp_path / "wav"), "-m", model),
    ]
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, f"{step[0]}: {result.stderr}"
    # named by item id; a folder corpus id's "/" is a sub-folder
    assert len(list((tmp_path / "wav").rglob("*.wav"))) == 4
    index = json.loads((tmp_path / "codes" / "index.json").read_text())
    assert index["preset"] == "academicodec_encodec_16k_320d" and index["totals"]["items"] == 4

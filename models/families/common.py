"""What every family's conversion shares: reading weights safely, the strict load, weight
norm's names, refusing settings a port lacks, and the ``Converter`` each family offers.

Weights are read without unpickling code (``torch.load(weights_only=True)``, safetensors).
Weight norm comes as ``weight_g``/``weight_v`` (official files, older HF files),
``parametrizations.weight.original0/1`` (newer HF files) or a plain ``weight`` (HF DAC); all
three load onto our weight-normed layers exactly. The load is strict: every source tensor
is used once and every one of ours is filled with the same shape, or the import stops with
one line listing what is missing, unexpected or of the wrong shape.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import CodecConfig

# What an error in the settings a source implies is attributed to (not "--set").
SETTINGS = "the source's settings (and --set)"
MAX_LISTED = 6


@dataclass(frozen=True)
class Converter:
    """One family's conversion as ``models/pretrained.py`` offers it a checkpoint.

    ``claims_file(state, safetensors)`` says whether a loaded file is this family's (a torch
    file's dict, or a safetensors file's tensors); ``import_file(path, state, config_json,
    preset, overrides)`` builds the model. ``hf_model_types`` are the transformers
    ``model_type`` values it reads; ``claims_folder(hf)`` claims a folder without one (the
    snac package's); ``import_folder(folder, config_path, weights_path, hf, weights, preset,
    overrides)`` builds the model of a folder it claimed. ``files`` describes the files it
    claims, for the refusal of a file nobody claims (``safetensors``: they are safetensors
    files, not torch checkpoints)."""

    files: str = ""
    safetensors: bool = False
    claims_file: Callable[[dict[str, Any], bool], bool] | None = None
    import_file: Callable[..., CodecModel] | None = None
    hf_model_types: tuple[str, ...] = ()
    claims_folder: Callable[[dict[str, Any]], bool] | None = None
    import_folder: Callable[..., CodecModel] | None = None


def load_original_state(path: str | Path) -> dict[str, Any]:
    """``torch.load`` without unpickling code; a one-line error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch's zip format, legacy pickle
        raise UserError(f"{path} is not a PyTorch checkpoint (neither a zip nor a pickle file)")
    try:
        with warnings.catch_warnings():  # "pickle protocol N" chatter; errors come below
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        reason = reason.split(" was not an allowed global")[0]  # drop torch's allow-list advice
        raise UserError(
            f"{path} holds pickled objects other than tensors and containers; refusing to load "
            f"it (weights-only loading never runs code from a file): {reason}"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable PyTorch checkpoint: {first}") from exc


def load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path} is not a readable safetensors file: {exc}") from exc


def hf_weights(path: Path) -> dict[str, Tensor]:
    """A folder's weights: ``model.safetensors``, or ``pytorch_model.bin`` read weights-only
    (older uploads have only the latter)."""
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    state = load_original_state(path)
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if len(tensors) != len(state):
        raise UserError(f"{path} is not a plain state dict of tensors")
    return tensors


def weight_norm_name(key: str) -> str:
    """Old-style weight norm names -> ``torch.nn.utils.parametrizations`` names."""
    if key.endswith(".weight_g"):
        return key[: -len("weight_g")] + "parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len("weight_v")] + "parametrizations.weight.original1"
    return key


def load_strict(model: CodecModel, mapped: dict[str, Tensor], source: str) -> None:
    """Every key used once, every tensor filled, every shape equal - or a one-line error."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(mapped))
    unexpected = sorted(set(mapped) - set(ours))
    shapes = sorted(
        f"{k} {tuple(mapped[k].shape)} != {tuple(ours[k].shape)}"
        for k in set(ours) & set(mapped)
        if tuple(mapped[k].shape) != tuple(ours[k].shape)
    )
    problems = [
        (label, items)
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", shapes),
        )
        if items
    ]
    if problems:
        text = "; ".join(
            f"{label} ({len(items)}): {', '.join(_original_name(i) for i in items[:MAX_LISTED])}"
            + (", ..." if len(items) > MAX_LISTED else "")
            for label, items in problems
        )
        raise UserError(f"{source} does not match the architecture: {text}")
    model.load_state_dict(mapped, strict=True)


def _original_name(key: str) -> str:
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v"
    )


def refuse_unsupported(path: Path, settings: dict[str, tuple[Any, Any]], holds: str) -> None:
    """``settings``: name -> (the source's value, the only one we build); one line for the
    first that differs, ``holds`` saying which models have the wanted value."""
    for key, (value, wanted) in settings.items():
        if value != wanted:
            raise UserError(
                f"{path}: {key} = {value!r} is not supported ({holds} {key} = {wanted!r})"
            )


def hf_rope(hf: dict[str, Any]) -> tuple[str, float]:
    """A transformers config's RoPE type and base: transformers 5 keeps them in
    ``rope_parameters``, older configs (the Hub's) in a top-level ``rope_theta``."""
    rope = hf.get("rope_parameters") or {}
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    return rope.get("rope_type", "default"), float(theta)


def our_names(config: CodecConfig) -> set[str]:
    """Our tensor names for ``config``, from a model built on the meta device (nothing
    allocated: the real one is built once, by ``finish``)."""
    with torch.device("meta"):
        return set(build_codec(config).state_dict())


def _fold_plain_weights(mapped: dict[str, Tensor], ours: dict[str, Tensor]) -> dict[str, Tensor]:
    """A plain ``weight`` where we hold a weight-normed one: direction = the weight,
    magnitude = its norm, computed as torch's weight norm computes it, so g / ||v|| is
    exactly 1 and the weight comes back bit-exact."""
    out = dict(mapped)
    for key, value in mapped.items():
        if not key.endswith(".weight") or key in ours:
            continue
        stem = key[: -len("weight")] + "parametrizations.weight."
        if stem + "original1" in ours:
            del out[key]
            out[stem + "original1"] = value
            out[stem + "original0"] = torch.norm_except_dim(value, 2, 0)
    return out


def finish(config: CodecConfig, weights: dict[str, Tensor], source: Path) -> CodecModel:
    """Our model for ``config`` holding ``weights`` (strictly), in eval mode."""
    model = build_codec(config)
    ours = model.state_dict()
    mapped = _fold_plain_weights(weights, ours)
    mapped = {k: v.to(ours[k].dtype) if k in ours else v for k, v in mapped.items()}
    load_strict(model, mapped, str(source))
    return model.eval()

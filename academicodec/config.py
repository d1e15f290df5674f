"""Preset loading: YAML data with ``extends:``, turned into validated dataclasses.

A preset is a YAML file in ``configs/`` (or any path). ``extends: other`` merges the named
preset underneath (recursively, dicts merged key by key). ``from_dict`` builds a dataclass
tree from the merged data and rejects unknown keys and wrong types with an error that names
the key and the file, so a typo fails at load time, not hours into training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from academicodec.errors import UserError

T = TypeVar("T")


def preset_dir() -> Path:
    return Path(str(resources.files("academicodec.configs")))


def preset_names() -> list[str]:
    """Every shipped preset (files starting with ``_`` are shared bases, not presets)."""
    return sorted(p.stem for p in preset_dir().glob("*.yaml") if not p.name.startswith("_"))


def resolve_preset_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = preset_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise UserError(
        f"unknown preset {str(name_or_path)!r}: not a YAML file, and not one of "
        f"{', '.join(preset_names())}"
    )


def load_preset_data(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged mapping of a preset and everything it ``extends``."""
    path = resolve_preset_path(name_or_path).resolve()
    if path in _seen:
        raise UserError(f"{path}: 'extends' forms a cycle ({' -> '.join(map(str, _seen))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset must be a mapping at the top level")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base_name = parent if Path(str(parent)).suffix else str(parent)
    candidate = path.parent / f"{base_name}.yaml"
    base = load_preset_data(candidate if candidate.is_file() else base_name, (*_seen, path))
    return deep_merge(base, data)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dotted_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    """Python keyword overrides (``train__lr``) as dotted preset keys (``train.lr``)."""
    return {key.replace("__", "."): value for key, value in overrides.items()}


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 1e-4}``-style dotted keys set nested values (``--set key=value``)."""
    result = deep_merge(data, {})
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                raise UserError(f"override {dotted!r}: {part!r} is not a section")
            node[part] = dict(child)
            node = node[part]
        node[leaf] = value
    return result


def from_dict(cls: type[T], data: Any, source: str, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: {where or 'preset'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(
            f"{source}: unknown key(s) {', '.join(_join(where, k) for k in unknown)}; "
            f"known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, source, _join(where, name))
    try:
        return cls(**values)
    except TypeError as exc:
        raise UserError(f"{source}: {where or 'preset'}: {exc}") from exc


def to_dict(config: Any) -> Any:
    """A dataclass tree back to plain YAML-able data."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint: Any, value: Any, source: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{source}: {where}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{source}: {where} must be a list, got {value!r}")
        item = args[0] if args else Any
        converted = [_convert(item, v, source, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{source}: {where} must be a mapping, got {value!r}")
        return {k: _convert(args[1], v, source, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "1e-4" without a dot as a string
        except ValueError:
            pass
    if (
        isinstance(hint, type)
        and isinstance(value, hint)
        and not (hint is int and isinstance(value, bool))
    ):
        return value
    raise UserError(f"{source}: {where} must be {getattr(hint, '__name__', hint)}, got {value!r}")

"""Test helpers: write audio, plant the faults that real corpora contain, run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from academicodec.synth import voiced_signal

REPO = Path(__file__).resolve().parents[1]


def write_audio(path: Path, seconds: float, rate: int, channels: int = 1, seed: int = 0) -> int:
    """A speech-like file; returns its number of frames."""
    mono = voiced_signal(seconds, rate, seed)
    data = mono if channels == 1 else np.stack([mono * (0.5 + 0.5 * c) for c in range(channels)], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype="PCM_16" if path.suffix == ".wav" else None)
    return len(mono)


def plant_empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def plant_truncated(path: Path, rate: int, seconds: float = 1.0) -> Path:
    """A valid file cut in half: intact header, missing end (how interrupted downloads look)."""
    write_audio(path, seconds, rate)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def plant_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x00\x01garbage-not-audio" * 64)
    return path


def make_unreadable(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``directory`` unlistable. Root ignores permission bits, so for root the walker's
    ``os.scandir`` is made to fail for that one path, as it does for an ordinary user."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        directory.chmod(0)  # pytest's tmp cleanup restores permissions before deleting
        return
    import academicodec.manifests.walk as walk

    real = walk.os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path) == directory:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(walk.os, "scandir", scandir)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Run ``python -m academicodec ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "academicodec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def assert_reported(report: dict, expected: dict[object, str]) -> None:
    """Each planted path is in the report's skipped files or warnings with that reason."""
    reasons = faults_by_path(report)
    for path, reason in expected.items():
        assert str(path) in reasons, f"{path} not in the report"
        assert reason in reasons[str(path)], f"{path}: {reasons[str(path)]!r} lacks {reason!r}"


def faults_by_path(report: dict) -> dict[str, str]:
    """``{path: reasons joined by "; "}`` over the report's skipped files and warnings."""
    reasons: dict[str, str] = {}
    for fault in report["skipped"] + report["warnings"]:
        previous = reasons.get(fault["path"])
        reasons[fault["path"]] = f"{previous}; {fault['reason']}" if previous else fault["reason"]
    return reasons


def first_difference(a: object, b: object, where: str = "") -> str | None:
    """Where two nested states (tensors, dicts, lists) first differ, with the largest
    difference for tensors; None when they are bit-identical (dtype and values)."""
    import torch

    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: {type(b).__name__} {getattr(b, 'shape', '')} vs tensor {a.shape}"
        return None if torch.equal(a, b) else f"{where}: max difference {(a - b).abs().max()}"
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            return f"{where}: other keys"
        found = (first_difference(a[key], b[key], f"{where}.{key}") for key in a)
        return next((d for d in found if d is not None), None)
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return f"{where}: other lengths"
        pairs = enumerate(zip(a, b, strict=True))
        found = (first_difference(x, y, f"{where}[{i}]") for i, (x, y) in pairs)
        return next((d for d in found if d is not None), None)
    return None if a == b else f"{where}: {a!r} != {b!r}"

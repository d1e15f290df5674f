"""Package-level rules: the import boundaries of DESIGN §1, and torchaudio being optional."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# folder -> sub-packages of academicodec it must not import (DESIGN §1).
FORBIDDEN = {
    "manifests": {"models", "pipelines", "training", "tokenizer", "evaluation"},
    "pipelines": {"models", "training", "tokenizer", "evaluation"},
    "models": {"manifests", "pipelines", "training", "tokenizer", "evaluation"},
    "training": {"manifests", "tokenizer", "evaluation"},
    "tokenizer": {"training", "evaluation"},
    "evaluation": {"training", "tokenizer"},
}
SUBPACKAGES = {"manifests", "pipelines", "models", "training", "tokenizer", "evaluation"}
# The core's orchestration modules (the CLI, the demo and `info`, which describes every
# stage's output) are the only ones that reach into every stage; the rest of the core stays
# std/numpy/torch.
CORE_ORCHESTRATORS = {"cli.py", "demo.py", "info.py"}


def _imported_subpackages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] in SUBPACKAGES:
                raise AssertionError(f"{path}: imports bare {name!r}; use academicodec.{name}")
            if parts[0] == "academicodec" and len(parts) > 1 and parts[1] in SUBPACKAGES:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_import_boundaries(folder: str) -> None:
    for path in sorted((REPO / folder).rglob("*.py")):
        bad = _imported_subpackages(path) & FORBIDDEN[folder]
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_core_imports_no_stage() -> None:
    for path in sorted((REPO / "academicodec").glob("*.py")):
        if path.name not in CORE_ORCHESTRATORS:
            assert not _imported_subpackages(path), path.name


def test_everything_imports_and_runs_without_torchaudio(tmp_path: Path) -> None:
    """Import every module and run prepare + shard; torchaudio must never be imported.

    The dev environment has no torchaudio, so this proves the package works without it; where
    torchaudio is installed, the final check catches any module that imports it anyway.
    """
    script = f"""
import importlib, pkgutil, sys
import academicodec
for sub in ("manifests", "pipelines", "models", "training", "tokenizer", "evaluation"):
    package = importlib.import_module("academicodec." + sub)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
import academicodec.cli, academicodec.demo
from pathlib import Path
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.pipelines import ShardSettings, write_shards
make_folder(Path(r"{tmp_path}") / "src", 3)
prepare("folder", r"{tmp_path}/src", r"{tmp_path}/m")
write_shards([r"{tmp_path}/m"], r"{tmp_path}/s", ShardSettings(sample_rate=16000))
assert "torchaudio" not in sys.modules
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")

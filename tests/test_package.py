"""Package-level rules: the import boundaries of DESIGN §1, and torchaudio being optional."""

import ast
import importlib
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


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (``import a.b``, ``from a.b import c``: ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _imported_subpackages(path: Path) -> set[str]:
    found = set()
    for name in _imported_modules(path):
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


FAMILIES_DIR = REPO / "models" / "families"
FAMILY_MODULE = "academicodec.models.families"


def test_each_released_family_lives_in_its_own_folder() -> None:
    """One room per family (issue 35): every folder is registered and holds its parts; a
    conversion reads only its own family and the shared helpers; a network may build on
    another family's network (SNAC on DAC's blocks), never on a conversion."""
    from academicodec.models.families import CONVERTERS, NETWORKS, codec_class, converters

    folders = {p.name for p in FAMILIES_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(CONVERTERS), "models/families/ and CONVERTERS disagree"
    assert set(NETWORKS) <= folders
    for family in NETWORKS:
        for part in ("arch.py", "network.py"):
            assert (FAMILIES_DIR / family / part).is_file(), f"{family} has no {part}"
        assert codec_class(family).__module__ == f"{FAMILY_MODULE}.{family}.network"
    convert_modules = [importlib.import_module(f"{FAMILY_MODULE}.{n}.convert") for n in CONVERTERS]
    assert converters() == [module.CONVERTER for module in convert_modules]
    for family in folders:
        for path in sorted((FAMILIES_DIR / family).glob("*.py")):
            for module in _imported_modules(path):
                if not module.startswith(FAMILY_MODULE + "."):
                    continue
                other = module.split(".")[3]
                if other in (family, "common"):
                    continue
                assert path.name == "network.py" and module.endswith(".network"), (
                    f"{path.relative_to(REPO)} imports {module}: a family reads only its own "
                    "folder and common.py (a network may build on another's network)"
                )


def test_only_the_config_names_a_released_family() -> None:
    """Adding a family touches no other family: outside models/families/, only the preset
    dataclass (one section field per family) names a family's folder."""
    for folder in sorted(SUBPACKAGES | {"academicodec"}):
        for path in sorted((REPO / folder).rglob("*.py")):
            if FAMILIES_DIR in path.parents or path == REPO / "models" / "config.py":
                continue
            named = {m for m in _imported_modules(path) if m.startswith(FAMILY_MODULE + ".")} - {
                FAMILY_MODULE + ".common"
            }
            assert not named, f"{path.relative_to(REPO)} imports {sorted(named)}"


def test_the_wheel_lists_every_package() -> None:
    """setuptools builds the wheel from ``packages`` alone: a folder with an __init__.py
    missing there works in the editable install and is absent from a built wheel."""
    import tomllib

    settings = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed, folders = settings["setuptools"]["packages"], settings["setuptools"]["package-dir"]
    found = set()
    for package, folder in folders.items():
        for init in (REPO / folder).rglob("__init__.py"):
            inner = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *inner)))
    assert sorted(found) == sorted(listed)

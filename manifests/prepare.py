"""``prepare(corpus, src, out)``: scan a corpus, probe its audio, write manifests and a report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from academicodec.errors import UserError
from academicodec.files import ensure_writable_dir
from academicodec.manifests.aishell import scan_aishell
from academicodec.manifests.build import build_manifests
from academicodec.manifests.entries import ScanResult
from academicodec.manifests.folder import scan_folder
from academicodec.manifests.hf import scan_hf
from academicodec.manifests.libritts import scan_libritts
from academicodec.manifests.report import PrepareReport
from academicodec.manifests.vctk import scan_vctk
from academicodec.progress import ProgressFactory, silent_progress


def _libritts(src: Path, out: Path, parts: list[str] | None = None, **_: Any) -> ScanResult:
    return scan_libritts(src, parts)


def _vctk(src: Path, out: Path, mic: str = "mic1", **_: Any) -> ScanResult:
    return scan_vctk(src, mic)


def _aishell(src: Path, out: Path, **_: Any) -> ScanResult:
    return scan_aishell(src)


def _folder(src: Path, out: Path, language: str | None = None, **_: Any) -> ScanResult:
    return scan_folder(src, language)


def _hf(
    src: Path,
    out: Path,
    audio_column: str = "audio",
    text_column: str | None = None,
    id_column: str | None = None,
    language: str | None = None,
    **_: Any,
) -> ScanResult:
    return scan_hf(src, out, audio_column, text_column, id_column, language)


CORPORA: dict[str, Callable[..., ScanResult]] = {
    "libritts": _libritts,
    "vctk": _vctk,
    "aishell": _aishell,
    "folder": _folder,
    "hf": _hf,
}


def prepare(
    corpus: str,
    src: str | Path,
    out: str | Path,
    jobs: int = 1,
    verify: bool = False,
    progress: ProgressFactory = silent_progress,
    **options: Any,
) -> PrepareReport:
    """Scan ``src`` as ``corpus`` and write its manifests and ``prepare_report.json`` to ``out``.

    Corpus options: ``parts`` (libritts), ``mic`` (vctk), ``language`` (folder, hf),
    ``audio_column``/``text_column``/``id_column`` (hf). Faulty files never stop the run;
    they are listed in the report. Raises ``UserError`` for a bad source, corpus or output.
    """
    if corpus not in CORPORA:
        raise UserError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}")
    src_path = Path(src).expanduser().resolve()
    out_path = Path(out).expanduser().resolve()
    if not src_path.exists():
        raise UserError(f"source {src} does not exist")
    ensure_writable_dir(out_path, "OUT")
    scan = CORPORA[corpus](src_path, out_path, **options)
    return build_manifests(corpus, src_path, out_path, scan, jobs, verify, progress)

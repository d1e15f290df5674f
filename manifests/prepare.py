"""``prepare(corpus, src, out)``: scan a corpus, probe its audio, write manifests and a report."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from academicodec.errors import UserError
from academicodec.manifests.aishell import scan_aishell
from academicodec.manifests.build import build_manifests
from academicodec.manifests.entries import ScanResult
from academicodec.manifests.folder import scan_folder
from academicodec.manifests.hf import scan_hf
from academicodec.manifests.libritts import scan_libritts
from academicodec.manifests.report import PrepareReport
from academicodec.manifests.vctk import scan_vctk
from academicodec.outputs import claim_output, own_plan, record_plan
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import Folder
from academicodec.writer_lock import stage_scope

# Each scanner takes the corpus directory plus its own keyword options; ``hf`` also takes
# ``out``, where it writes the audio bytes it extracts.
CORPORA: dict[str, Callable[..., ScanResult]] = {
    "libritts": scan_libritts,
    "vctk": scan_vctk,
    "aishell": scan_aishell,
    "folder": scan_folder,
    "hf": scan_hf,
}


@stage_scope
def prepare(
    corpus: str,
    src: str | Path,
    out: str | Path,
    jobs: int = 1,
    verify: bool = False,
    progress: ProgressFactory = silent_progress,
    overwrite: bool = False,
    **options: Any,
) -> PrepareReport:
    """Scan ``src`` as ``corpus`` and write its manifests and ``prepare_report.json`` to ``out``.

    Corpus options: ``parts`` (libritts), ``mic`` (vctk), ``language`` (folder, hf), ``name``
    (folder: the corpus name and id prefix, default the folder's name),
    ``audio_column``/``text_column``/``id_column`` (hf); ``None`` means the default, and an
    option the corpus does not take is an error. Faulty files never stop the run; they are
    listed in the report. Raises ``UserError`` for a bad source, corpus, option or output.
    """
    if corpus not in CORPORA:
        raise UserError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}")
    src_path = Path(src).expanduser().resolve()
    if not src_path.exists():
        raise UserError(f"source {src} does not exist")
    _check_options(corpus, options)
    out_path = claim_output(out, "prepare", [src_path])
    described = {"corpus": corpus, "source": str(src_path), "--verify": verify}
    described.update({f"--{k.replace('_', '-')}": v for k, v in sorted(options.items())})
    own_plan(Folder.of(out_path), "prepare", described, overwrite, write=False)
    scan = _scan(corpus, src_path, out_path, options)
    name = scan.name or corpus
    report = build_manifests(name, src_path, out_path, scan, jobs, verify, progress, overwrite)
    record_plan(Folder.of(out_path), "prepare", described)
    return report


def _check_options(corpus: str, options: dict[str, Any]) -> None:
    accepted = inspect.signature(CORPORA[corpus]).parameters
    given = [name for name, value in options.items() if value is not None]
    foreign = sorted(name for name in given if name not in accepted or name == "out")
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise UserError(f"{flags} does not apply to corpus {corpus!r}")


def _scan(corpus: str, src: Path, out: Path, options: dict[str, Any]) -> ScanResult:
    scanner = CORPORA[corpus]
    accepted = inspect.signature(scanner).parameters
    given = {name: value for name, value in options.items() if value is not None}
    if "out" in accepted:
        given["out"] = out
    return scanner(src, **given)

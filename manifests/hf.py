"""A local Hugging Face dataset (``save_to_disk`` folder or parquet files) with an audio column.

``datasets`` 5.x decodes audio only through torchcodec, so nothing here decodes through it:
rows are read as Arrow record batches, the audio column's raw ``{bytes, path}`` is written
out as a file under ``OUT/audio/<split>/`` (that the manifests point to), and soundfile
probes it like any other file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile as sf

from academicodec.audio import AUDIO_EXTENSIONS
from academicodec.errors import UserError
from academicodec.files import atomic_write_bytes
from academicodec.ids import safe_id
from academicodec.manifests.entries import Entry, Fault, ScanResult

TEXT_COLUMNS = ("text", "sentence", "transcription", "normalized_text", "transcript")
SPEAKER_COLUMNS = ("speaker_id", "speaker", "client_id")
BATCH_ROWS = 256


def scan_hf(
    src: Path,
    out: Path,
    audio_column: str = "audio",
    text_column: str | None = None,
    id_column: str | None = None,
    language: str | None = None,
) -> ScanResult:
    result = ScanResult()
    for split, columns, batches in _open_splits(src):
        if audio_column not in columns:
            raise UserError(
                f"--audio-column: {src} (split {split}) has no column {audio_column!r}; "
                f"its columns are {columns}"
            )
        if text_column is not None and text_column not in columns:
            raise UserError(f"--text-column: {src} has no column {text_column!r} ({columns})")
        text_col = text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
        speaker_col = next((c for c in SPEAKER_COLUMNS if c in columns), None)
        id_col = id_column or ("id" if "id" in columns else None)
        audio_dir = out / "audio" / split
        index = 0
        for batch in batches:
            for row in batch.to_pylist():
                utt_id = safe_id(str(row[id_col])) if id_col else f"{split}-{index:08d}"
                location = f"{src}[{split}][{index}]"
                index += 1
                path = _materialise(row.get(audio_column), audio_dir, utt_id, src)
                if path is None:
                    result.skipped.append(Fault(location, "row has no audio", split))
                    continue
                result.entries.append(
                    Entry(
                        split=split,
                        id=utt_id,
                        audio=path,
                        text=_text(row.get(text_col)) if text_col else None,
                        speaker=str(row[speaker_col])
                        if speaker_col and row.get(speaker_col)
                        else None,
                        language=language,
                    )
                )
    return result


def _open_splits(src: Path) -> Iterator[tuple[str, list[str], Iterator[Any]]]:
    """Yield ``(split, column names, record batches)`` for a saved dataset or parquet files."""
    if not src.exists():
        raise UserError(f"{src} does not exist")
    parquet = [src] if src.is_file() else sorted(src.rglob("*.parquet"))
    if src.is_dir() and ((src / "dataset_dict.json").is_file() or (src / "state.json").is_file()):
        yield from _saved_splits(src)
    elif parquet and all(p.suffix == ".parquet" for p in parquet):
        yield from _parquet_splits(parquet)
    else:
        raise UserError(
            f"{src} is not a Hugging Face dataset: expected a save_to_disk folder "
            "(dataset_dict.json or state.json) or .parquet files"
        )


def _saved_splits(src: Path) -> Iterator[tuple[str, list[str], Iterator[Any]]]:
    from datasets import Audio, DatasetDict, load_from_disk

    dataset = load_from_disk(str(src))
    splits = dataset.items() if isinstance(dataset, DatasetDict) else [("all", dataset)]
    for split, ds in sorted(splits):
        for name, feature in ds.features.items():
            if isinstance(feature, Audio) and feature.decode:
                ds = ds.cast_column(name, Audio(decode=False))
        yield split, list(ds.column_names), ds.with_format("arrow").iter(batch_size=BATCH_ROWS)


def _parquet_splits(files: list[Path]) -> Iterator[tuple[str, list[str], Iterator[Any]]]:
    """Split names come from file names (``train-00000-of-00002.parquet`` -> ``train``)."""
    import pyarrow.parquet as pq

    by_split: dict[str, list[Path]] = {}
    for path in files:
        split = path.stem.split("-")[0] if "-" in path.stem else path.stem
        by_split.setdefault(split or "all", []).append(path)
    for split, paths in sorted(by_split.items()):
        columns = pq.ParquetFile(paths[0]).schema_arrow.names

        def batches(paths: list[Path] = paths) -> Iterator[Any]:
            for path in paths:
                yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)

        yield split, columns, batches()


def _materialise(audio: Any, audio_dir: Path, utt_id: str, src: Path) -> Path | None:
    """Write the row's audio bytes to a file (or point at its existing file)."""
    if not isinstance(audio, dict):
        return None
    data, original = audio.get("bytes"), audio.get("path")
    if data is None:
        if original and (src / original).is_file():
            return (src / original).resolve()
        return None
    suffix = Path(original).suffix.lower() if original else ""
    if suffix not in AUDIO_EXTENSIONS:
        suffix = _sniff_suffix(data)
    path = audio_dir / f"{utt_id}{suffix}"
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        atomic_write_bytes(path, data)
    return path


def _sniff_suffix(data: bytes) -> str:
    try:
        return "." + sf.info(io.BytesIO(data)).format.lower()
    except Exception:
        return ".bin"  # undecodable: written anyway, then reported by the probe


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None

"""Writers of one output shard in each format: webdataset tar, Lhotse Shar, HF parquet.

Each writes through ``storage.Folder.writing`` (a temporary file, renamed - or uploaded,
for a bucket - when complete) and reports name, count, bytes and sha256 for the index.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from academicodec.files import sha256_file
from academicodec.pipelines.tario import HashingWriter, TarSampleWriter
from academicodec.storage import Folder

FORMATS = ("webdataset", "shar", "parquet")


def code_dtype(codebook_size: int) -> np.dtype:
    """What codes are stored as, in every format: int16 while every code fits (all models
    but X-Codec2), else int32 (X-Codec2's 65,536 codes)."""
    return np.dtype(np.int16 if codebook_size <= 2**15 else np.int32)


class ShardOutput:
    """Collects one output shard's items, then writes every requested format."""

    def __init__(
        self, out: Folder, number: int, rank: int, frame_rate: float, dtype: np.dtype
    ) -> None:
        self.out, self.number, self.rank, self.frame_rate = out, number, rank, frame_rate
        self.dtype = dtype  # ``code_dtype``: parquet's schema says it even with no rows
        self.rows: list[tuple[str, dict[str, Any], np.ndarray]] = []

    def add(self, key: str, meta: dict[str, Any], codes: np.ndarray) -> None:
        """``codes``: [F, K] of ``code_dtype``."""
        self.rows.append((key, meta, codes))

    def write(self, formats: tuple[str, ...], num_codebooks: int) -> dict[str, dict[str, Any]]:
        writers = {"webdataset": self._webdataset, "shar": self._shar, "parquet": self._parquet}
        return {fmt: writers[fmt](num_codebooks) for fmt in formats}

    def _record(self, files: list[tuple[str, Path]], sha256: str | None = None) -> dict:
        """The index entry of ``files`` - ``(name, written file)``, the main one first -
        measured on the written files before they are published."""
        return {
            "name": files[0][0],
            "files": [name for name, _ in files],
            "count": len(self.rows),
            "bytes": sum(path.stat().st_size for _, path in files),
            "sha256": sha256 or sha256_file(files[0][1]),
            "extra_sha256": [sha256_file(path) for _, path in files[1:]],
        }

    def _webdataset(self, _: int) -> dict[str, Any]:
        name = f"webdataset/codes-{self.rank}-{self.number:06d}.tar"
        with self.out.writing(name) as temporary:
            with open(temporary, "wb") as f:
                hashing = HashingWriter(f)
                with TarSampleWriter(hashing) as tar:
                    for key, meta, codes in self.rows:
                        buffer = io.BytesIO()
                        np.save(buffer, codes, allow_pickle=False)
                        meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True)
                        tar.add(key, {"codes.npy": buffer.getvalue(), "json": meta_json.encode()})
            return self._record([(name, temporary)], hashing.digest.hexdigest())

    def _shar(self, _: int) -> dict[str, Any]:
        from lhotse import SupervisionSegment
        from lhotse.cut import MonoCut
        from lhotse.shar import SharWriter

        with self.out.scratch("shar") as tmp:
            with SharWriter(str(tmp), fields={"codes": "numpy"}, shard_size=None) as writer:
                for key, meta, codes in self.rows:
                    duration = codes.shape[0] / self.frame_rate
                    tokens = meta.get("text_tokens")
                    supervision = SupervisionSegment(
                        id=key, recording_id=key, start=0.0, duration=duration,
                        text=meta.get("text"), speaker=meta.get("speaker"),
                        language=meta.get("language"),
                        custom=None if tokens is None else {"text_tokens": tokens},
                    )  # fmt: skip
                    cut = MonoCut(
                        id=key, start=0.0, duration=duration, channel=0,
                        supervisions=[supervision], custom={"source": meta},
                    )  # fmt: skip
                    cut = cut.attach_tensor(
                        "codes", codes, frame_shift=1 / self.frame_rate, temporal_dim=0
                    )
                    writer.write(cut)
            cuts = f"shar/cuts.{self.number:06d}.jsonl.gz"
            tar = f"shar/codes.{self.number:06d}.tar"
            # Lhotse stamps gzip and tar headers with the time; rewrite both without it so a
            # resumed run's files are byte-identical (and verifiable by sha256).
            with gzip.open(tmp / "cuts.jsonl.gz", "rb") as f:
                data = gzip.compress(f.read(), mtime=0)
            with self.out.writing(tar) as tar_file, self.out.writing(cuts) as cuts_file:
                _normalise_tar(tmp / "codes.tar", tar_file)  # shard_size=None: unnumbered
                cuts_file.write_bytes(data)
                return self._record([(cuts, cuts_file), (tar, tar_file)])

    def _parquet(self, num_codebooks: int) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = f"parquet/codes-{self.rank}-{self.number:06d}.parquet"
        features = parquet_features(num_codebooks, self.dtype)
        rows = [
            {
                "id": meta["id"],
                "codes": codes.tolist(),
                "n_frames": int(codes.shape[0]),
                "text": meta.get("text"),
                "speaker": meta.get("speaker"),
                "duration": float(meta.get("duration") or 0.0),
                "text_tokens": meta.get("text_tokens", []),
            }
            for _, meta, codes in self.rows
        ]
        table = pa.Table.from_pylist(rows, schema=features.arrow_schema)
        with self.out.writing(name) as temporary:
            pq.write_table(table, temporary)
            return self._record([(name, temporary)])


def _normalise_tar(source: Path, target: Path) -> None:
    """Copy a tar's members into a fixed-metadata tar (no mtimes or owners)."""
    with tarfile.open(source, "r:") as tar, open(target, "wb") as f:
        writer = TarSampleWriter(f)
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                writer.add_member(member.name, handle.read())
        writer.close()


def parquet_features(num_codebooks: int, dtype: np.dtype):  # -> datasets.Features
    from datasets import Array2D, Features, Sequence, Value

    return Features(
        {
            "id": Value("string"),
            "codes": Array2D(shape=(None, num_codebooks), dtype=np.dtype(dtype).name),
            "n_frames": Value("int32"),
            "text": Value("string"),
            "speaker": Value("string"),
            "duration": Value("float32"),
            "text_tokens": Sequence(Value("int32")),
        }
    )

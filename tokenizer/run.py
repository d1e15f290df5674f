"""``tokenize``: every input item -> discrete codes, sharded, in up to three formats.

Reading, decoding and resampling run in DataLoader workers; the model encodes batches of
length-sorted items with ``lengths`` (so batching never changes the codes); each item is
trimmed to ``ceil(samples / hop)`` frames. Items longer than ``max_chunk_seconds`` are
encoded in hop-aligned, non-overlapping chunks, one at a time, so memory stays bounded.
Ranks take disjoint, duration-balanced slices (``plan``); finished output shards are
recorded and kept by a re-run, so a killed run resumes to the same output.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from academicodec import __version__, distrib, storage
from academicodec.errors import UserError
from academicodec.files import sha256_file
from academicodec.jobs import Job, fingerprint
from academicodec.models import CodecModel, load_codec
from academicodec.models.export import WEIGHTS_NAME
from academicodec.models.precision import check_precision, numerics
from academicodec.models.scheduling import GroupRunner
from academicodec.outputs import claim_folder, refuse_other_plan
from academicodec.pipelines.items import ShardItem
from academicodec.pipelines.sources import collect_items
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import Folder
from academicodec.tokenizer.feed import audio_batches, on_device
from academicodec.tokenizer.index import (
    INDEX_NAME,
    REPORT_NAME,
    CodesIndex,
    CodesShard,
    CodesTotals,
    TokenizeReport,
)
from academicodec.tokenizer.plan import OutputShard, batches, output_shards
from academicodec.tokenizer.text import TextTokenizer
from academicodec.tokenizer.writers import FORMATS, ShardOutput

BATCHING = ("auto", "groups", "one-call")
# Settings that only change how fast codes are made, never the codes or the files (the
# batching tests prove it): a resume may change them; the plan fingerprint leaves them out.
SPEED_ONLY = ("batch_seconds", "workers", "batching", "bucket_seconds")


@dataclass(frozen=True)
class TokenizeSettings:
    formats: tuple[str, ...] = ("webdataset",)
    batch_seconds: float = 120.0
    max_chunk_seconds: float = 20.0
    items_per_shard: int = 1000
    n_q: int | None = None
    workers: int = 2
    bandwidth: float | None = None  # kbps; resolved to n_q against the model
    precision: str = "fp32"  # fp32 | tf32 | bf16 (models.precision)
    compile: bool = False  # torch.compile the encoder
    # How batches run: "auto" (one padded call on accelerators, cache-sized groups on CPU),
    # "groups" or "one-call"; one-call batches are padded to whole ``bucket_seconds``.
    batching: str = "auto"
    bucket_seconds: float = 1.0

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise UserError(f"--format: choose from {', '.join(FORMATS)} (got {unknown})")
        check_precision(self.precision)
        if self.batching not in BATCHING:
            raise UserError(f"--batching: choose from {', '.join(BATCHING)}, not {self.batching!r}")
        if self.bucket_seconds < 0:
            raise UserError(f"--bucket-seconds must be >= 0, not {self.bucket_seconds:g}")
        if self.max_chunk_seconds <= 0 or self.items_per_shard < 1 or self.workers < 0:
            raise UserError("--max-chunk-seconds, --items-per-shard and --workers must be positive")
        if self.batch_seconds < 0:
            raise UserError(
                f"--batch-seconds must be >= 0 (0: one item a batch), not {self.batch_seconds:g}"
            )


def tokenize(
    model_path: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    settings: TokenizeSettings,
    text_model: str | Path | None = None,
    device: str = "cpu",
    progress: ProgressFactory = silent_progress,
    wait_timeout: float = 1800.0,
    overwrite: bool = False,
) -> CodesIndex | None:
    """Encode every item of ``inputs``; returns the index on rank 0 (``None`` elsewhere).

    An OUT holding codes of another run (other model, inputs or settings) is refused
    unless ``overwrite``, which then removes every file the new index does not list (so
    no reader can meet the old model's codes beside the new ones)."""
    out_dir = claim_folder(out, "tokenize", list(inputs))
    model_file = storage.local_copy(model_path)  # a model at a URL is downloaded once
    model = load_codec(model_file).to(device)
    # The plan records the codebooks a bandwidth gives, not the bandwidth.
    n_q = model.resolve_n_q(settings.n_q, settings.bandwidth)
    settings = replace(settings, n_q=n_q, bandwidth=None)
    model_sha = checkpoint_sha256(model_file)  # hashed once: the plan and the index use it
    texts = TextTokenizer(storage.local_copy(text_model)) if text_model else None
    items, skipped = collect_items(list(inputs), out_dir.workdir(".inputs"))
    if not items:
        raise UserError(f"no audio items found in {[str(i) for i in inputs]}")
    _warn_renamed(items, settings.formats)
    rank, world = distrib.rank(), distrib.world_size()
    shards = output_shards(items, world, settings.items_per_shard)
    plan = _fingerprint(shards, settings, model_sha, text_model)
    refuse_other_plan(out_dir, plan, overwrite, "codes")
    job = Job(out_dir, plan, _unit_name, _files_match)
    mine = [shards[k] for k in job.pending(s.number for s in shards if s.rank == rank)]
    bar = progress(sum(len(s.items) for s in mine), f"tokenizing (rank {rank})")
    if settings.compile:
        model.compile_encoder()
    batches = _device_batches(model, mine, settings, device)
    started, seconds = time.monotonic(), 0.0
    # Files are written by a background thread while the next shard encodes; at most one
    # shard waits to be written, so memory stays bounded.
    # On CPU a batch's length groups encode concurrently, one intra-op thread each.
    with (
        ThreadPoolExecutor(max_workers=1) as writer,
        GroupRunner() as runner,
        numerics(settings.precision, device),
    ):
        pending: Future[None] | None = None
        for shard in mine:
            encoded, shard_seconds = _encode_shard(
                model, shard, batches, out_dir, settings, texts, device, bar, runner
            )
            if pending is not None:
                pending.result()  # re-raises a write error here
            pending = writer.submit(_write_shard, job, shard, encoded, settings)
            seconds += shard_seconds
            rate = seconds / 3600 / max(time.monotonic() - started, 1e-9)
            if hasattr(bar, "set_postfix_str"):  # tqdm: audio hours per second beside items/s
                bar.set_postfix_str(f"{rate:.3f} audio-h/s")
        if pending is not None:
            pending.result()
    bar.close()
    distrib.barrier()
    if rank != 0:
        return None
    records = job.wait_for_all(len(shards), wait_timeout)
    index = _index(model, model_path, model_sha, shards, records, settings, skipped, plan)
    index.write(out_dir.path(INDEX_NAME))
    _remove_unlisted(out_dir, index)
    job.remove_leftovers()
    wall = round(time.monotonic() - started, 2)
    TokenizeReport(index.skipped, round(seconds, 2), wall).write(out_dir.path(REPORT_NAME))
    return index


def _warn_renamed(items: list[ShardItem], formats: tuple[str, ...]) -> None:
    """Ids from other tools may hold characters a Shar cut id cannot keep: say so, once."""
    renamed = [item for item in items if item.meta.get("id", item.key) != item.key]
    if renamed and "shar" in formats:
        first = renamed[0]
        warnings.warn(
            f"{len(renamed)} item id(s) are not key-safe (e.g. {first.meta['id']!r}): "
            f"webdataset and parquet keep them, Lhotse Shar names those cuts by key "
            f"({first.key!r}; the id stays in custom.source.id). Ids from `academicodec "
            "prepare` survive every format.",
            stacklevel=3,
        )


def _one_call(settings: TokenizeSettings, device: str) -> bool:
    if settings.batching == "auto":
        return not device.startswith("cpu")
    return settings.batching == "one-call"


def _device_batches(
    model: CodecModel, shards: list[OutputShard], settings: TokenizeSettings, device: str
) -> Iterator[dict[str, Any]]:
    """Every batch of ``shards``, in order, read by one DataLoader and on ``device``; each
    carries its shard's number. Long items (chunked) are never bucketed."""
    items: list[ShardItem] = []
    groups: list[list[int]] = []
    owners: list[tuple[int, int]] = []  # per batch: its shard, that shard's first item
    for shard in shards:
        seconds = [item.seconds for item in shard.items]
        for group in batches(seconds, settings.batch_seconds, settings.max_chunk_seconds):
            groups.append([len(items) + i for i in group])
            owners.append((shard.number, len(items)))
        items += shard.items
    bucket = 0
    if _one_call(settings, device):
        bucket = round(settings.bucket_seconds * model.sample_rate / model.hop_length)
        bucket *= model.hop_length
    loader = audio_batches(
        items, groups, model.sample_rate, settings.workers, bucket, device.startswith("cuda")
    )
    for (number, first), batch in zip(owners, on_device(loader, device), strict=True):
        yield {  # indices within the owning shard, as _encode_shard expects
            **batch,
            "shard": number,
            "indices": [i - first for i in batch["indices"]],
            "errors": [(i - first, e) for i, e in batch["errors"]],
        }


@dataclass
class _Encoded:
    """One output shard's codes, ready to be written."""

    output: ShardOutput
    failed: list[dict[str, Any]]
    num_codebooks: int
    device_type: str


def _encode_shard(
    model: CodecModel,
    shard: OutputShard,
    batches: Iterator[dict[str, Any]],
    out_dir: Folder,
    settings: TokenizeSettings,
    texts: TextTokenizer | None,
    device: str,
    bar: Any,
    runner: GroupRunner,
) -> tuple[_Encoded, float]:
    """Encode ``shard``'s batches, the next ones ``batches`` yields."""
    rate, hop = model.sample_rate, model.hop_length
    failed: list[dict[str, Any]] = []
    encoded: dict[int, np.ndarray] = {}
    audio_seconds = 0.0
    one_call = _one_call(settings, device)
    seen = 0
    with torch.inference_mode():
        while seen < len(shard.items):
            batch = next(batches)
            assert batch["shard"] == shard.number, "batches out of plan order"
            seen += len(batch["indices"]) + len(batch["errors"])
            failed += [{"id": shard.items[i].meta["id"], "reason": e} for i, e in batch["errors"]]
            if batch["indices"]:
                wav, lengths = batch["device_wav"], batch["device_lengths"]
                codes = _encode(model, wav, lengths, settings, one_call, runner)
                for row, index in enumerate(batch["indices"]):
                    samples = int(batch["lengths"][row])
                    frames = math.ceil(samples / hop)
                    # C order whatever the batch: the files' bytes never depend on batching
                    encoded[index] = np.ascontiguousarray(codes[row][:, :frames].t().numpy())
                    audio_seconds += samples / rate
            bar.update(len(batch["indices"]) + len(batch["errors"]))
    output = ShardOutput(out_dir, shard.number, shard.rank, model.frame_rate)
    for index, item in enumerate(shard.items):  # plan order, whatever the batch order was
        if index in encoded:
            output.add(item.key, _meta(item, encoded[index], rate, texts), encoded[index])
    books = settings.n_q or model.num_codebooks
    return _Encoded(output, failed, books, torch.device(device).type), audio_seconds


def _write_shard(
    job: Job, shard: OutputShard, encoded: _Encoded, settings: TokenizeSettings
) -> None:
    """Every format's files, then the completion record that makes a re-run keep them."""
    files = encoded.output.write(settings.formats, encoded.num_codebooks)
    record = {
        "files": files,
        "skipped": encoded.failed,
        "count": len(encoded.output.rows),
        "device_type": encoded.device_type,
    }
    job.complete(shard.number, record)


def _encode(
    model: CodecModel, wav: torch.Tensor, lengths: torch.Tensor, settings: TokenizeSettings,
    one_call: bool, runner: GroupRunner,
) -> torch.Tensor:  # fmt: skip
    """Codes [B, K, F] as int16 on the host (one copy a batch, not one per item); a batch
    of one long item is encoded chunk by chunk."""
    chunk = int(settings.max_chunk_seconds * model.sample_rate) // model.hop_length
    chunk *= model.hop_length
    if wav.shape[0] == 1 and int(lengths[0]) > chunk:
        total = int(lengths[0])
        parts = [
            model.encode(
                wav[:, :, start : min(total, start + chunk)],
                torch.tensor([min(total, start + chunk) - start], device=wav.device),
                settings.n_q,
                runner,
                one_call=False,  # one item, cut to its length: nothing to pad or mask
            )[0]
            for start in range(0, total, chunk)
        ]
        return torch.cat(parts, dim=-1)[None].to(torch.int16).cpu()
    codes = model.encode(wav, lengths, settings.n_q, runner, one_call=one_call)
    return codes.to(torch.int16).cpu()


def _meta(
    item: ShardItem, codes: np.ndarray, rate: int, texts: TextTokenizer | None
) -> dict[str, Any]:
    source = item.meta
    meta = {
        "id": source.get("id", item.key),
        "corpus": source.get("corpus"),
        "speaker": source.get("speaker"),
        "text": source.get("text"),
        "language": source.get("language"),
        "duration": round(item.seconds, 6),
        "n_frames": int(codes.shape[0]),
    }
    if texts is not None:
        meta["text_tokens"] = texts(meta["text"])
    return meta


def _remove_unlisted(out_dir: Folder, index: CodesIndex) -> None:
    """Delete every codes file the index does not list (an earlier run's formats/shards)."""
    listed = index.files()
    for fmt in FORMATS:
        for name in out_dir.files(fmt):
            if name not in listed:
                out_dir.remove(name)
        out_dir.remove_empty_dirs(fmt)


def _fingerprint(
    shards: list[OutputShard], settings: TokenizeSettings, model_sha: str, text_model: Any
) -> str:
    recorded = {k: v for k, v in asdict(settings).items() if k not in SPEED_ONLY}
    layout = [[shard.rank, [i.fingerprint() for i in shard.items]] for shard in shards]
    return fingerprint(recorded, model_sha, str(text_model), layout)


def checkpoint_sha256(model: str | Path) -> str:
    """sha256 of a model's weights file (an export's or HF folder's model.safetensors)."""
    path = Path(model)
    return sha256_file(path / WEIGHTS_NAME if path.is_dir() else path)


def _unit_name(number: int) -> str:
    return f"shard-{number:06d}"


def _files_match(out_dir: Folder, record: dict[str, Any], hash_contents: bool) -> bool:
    """Every format's files of a completion record are stored as recorded."""
    return not any(
        out_dir.problem(
            entry["files"],
            [entry["sha256"], *entry["extra_sha256"]],
            entry["bytes"],
            hash_contents,
        )
        for entry in record["files"].values()
    )


def _index(
    model: CodecModel,
    model_path: str | Path,
    model_sha: str,
    shards: list[OutputShard],
    records: list[dict[str, Any]],
    settings: TokenizeSettings,
    skipped: list[dict[str, Any]],
    plan: str,
) -> CodesIndex:
    per_format = {
        fmt: [
            CodesShard(rank=s.rank, **r["files"][fmt]) for s, r in zip(shards, records, strict=True)
        ]
        for fmt in settings.formats
    }
    return CodesIndex(
        tool_version=__version__,
        model=str(model_path),
        preset=model.config.name,
        checkpoint_sha256=model_sha,
        num_codebooks=settings.n_q or model.num_codebooks,
        codebook_size=model.codebook_size,
        frame_rate=model.frame_rate,
        sample_rate=model.sample_rate,
        hop_length=model.hop_length,
        precision=settings.precision,
        compile=settings.compile,
        device_type="+".join(sorted({r.get("device_type", "cpu") for r in records})),
        torch_version=torch.__version__,
        plan=plan,
        formats=per_format,
        totals=CodesTotals(
            items=sum(r["count"] for r in records),
            seconds=round(sum(i.seconds for s in shards for i in s.items), 3),
            shards=len(shards),
        ),
        skipped=skipped + [s for r in records for s in r["skipped"]],
    )

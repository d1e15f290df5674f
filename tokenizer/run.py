"""``tokenize``: every input item -> discrete codes, sharded, in up to three formats.

Reading, decoding and resampling run in DataLoader workers; the model encodes batches of
length-sorted items with ``lengths`` (so batching never changes the codes); each item is
trimmed to its ``ceil(samples / hop)`` frames (``CodecModel.num_frames``). Items longer
than ``max_chunk_seconds`` are encoded in hop-aligned, non-overlapping chunks, one at a
time, so memory stays bounded (causal models that stream - Mimi, Meta's EnCodec - carry
their state from chunk to chunk).
Ranks take disjoint, duration-balanced slices (``plan``); finished output shards are
recorded and kept by a re-run, so a killed run resumes to the same output.
"""

from __future__ import annotations

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
from academicodec.identity import SHORT, identity, inputs_identity, weights_file
from academicodec.jobs import Job, fingerprint
from academicodec.models import CodecModel, load_codec
from academicodec.models.export import WEIGHTS_NAME
from academicodec.models.hub import resolve_source
from academicodec.models.precision import check_precision, numerics
from academicodec.models.scheduling import GroupRunner
from academicodec.outputs import claim_folder, own_plan
from academicodec.pipelines.items import ShardItem
from academicodec.pipelines.sources import collect_items
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import Folder
from academicodec.tokenizer.feed import BatchSpec, audio_batches, on_device
from academicodec.tokenizer.index import (
    INDEX_NAME,
    REPORT_NAME,
    CodesIndex,
    CodesShard,
    CodesTotals,
    TokenizeReport,
)
from academicodec.tokenizer.plan import (
    OutputShard,
    ShapeGrid,
    batches,
    expected_samples,
    grid_batches,
    output_shards,
    windows,
)
from academicodec.tokenizer.probe import probe_batch_seconds
from academicodec.tokenizer.text import TextTokenizer
from academicodec.tokenizer.timing import Timer
from academicodec.tokenizer.writers import FORMATS, ShardOutput, code_dtype
from academicodec.writer_lock import stage_scope

BATCHING = ("auto", "groups", "one-call")
# Settings that only change how fast codes are made, never the codes or the files (the
# batching tests prove it): a resume may change them; the plan fingerprint leaves them out.
# The give-up advice: the number of ranks shapes the output shards, so one process cannot
# take over the others' half-done plan.
ALONE = (
    "or unset those variables and re-run the same command with --overwrite: the number of "
    "ranks shapes tokenize's shards, so one process starts over"
)
# Settings that never change the codes (so not in the plan: changing them resumes).
SPEED_ONLY = ("batch_seconds", "workers", "batching", "bucket_seconds", "verify")


# Padded audio per batch when --batch-seconds is not given: on CPU batches are split into
# cache-sized groups anyway; an accelerator needs a few minutes of audio to be busy.
CPU_BATCH_SECONDS = 120.0
ACCELERATOR_BATCH_SECONDS = 300.0
DEFAULT_BUCKET_SECONDS = 1.0


@dataclass(frozen=True)
class TokenizeSettings:
    formats: tuple[str, ...] = ("webdataset",)
    # Padded audio seconds per batch; None: the device's default; "auto": probed (one-call)
    batch_seconds: float | str | None = None
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
    bucket_seconds: float = DEFAULT_BUCKET_SECONDS
    verify: bool = False  # compare each input shard's sha256 with its index.json (slow)

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
        if self.bucket_seconds > max(self.max_chunk_seconds, DEFAULT_BUCKET_SECONDS):
            # Every one-call batch is padded to whole buckets: a bucket longer than the
            # longest chunk only pads (1e6 s asked for 64 GB). The default bucket is
            # shortened to a shorter chunk (_grid).
            raise UserError(
                f"--bucket-seconds {self.bucket_seconds:g} is longer than --max-chunk-seconds "
                f"{self.max_chunk_seconds:g}, the longest piece a batch holds: give at most "
                f"{self.max_chunk_seconds:g}"
            )
        value = self.batch_seconds
        number = isinstance(value, float | int)
        if (isinstance(value, str) and value != "auto") or (number and value < 0):
            raise UserError(
                f"--batch-seconds must be a number >= 0 (0: one item a batch) or auto, not {value}"
            )


@stage_scope
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
    # A model at a URL is downloaded once; a Hugging Face repo id is read from the cache.
    model_file = resolve_source(storage.local_copy(model_path))
    model = load_codec(model_file).to(device)
    # The plan records the codebooks a bandwidth gives, not the bandwidth.
    n_q = model.resolve_n_q(settings.n_q, settings.bandwidth)
    settings = replace(settings, n_q=n_q, bandwidth=None)
    _chunk_samples(model, settings)  # a chunk this model cannot take: refused before work
    model_sha = checkpoint_sha256(model_file)  # hashed once: the plan and the index use it
    texts = TextTokenizer(storage.local_copy(text_model)) if text_model else None
    items, skipped = collect_items(list(inputs), out_dir.workdir(".inputs"), settings.verify)
    if not items:
        raise UserError(f"no audio items found in {[str(i) for i in inputs]}")
    _warn_renamed(items, settings.formats)
    rank, world = distrib.rank(), distrib.world_size()
    shards = output_shards(items, world, settings.items_per_shard)
    plan = _fingerprint(shards, settings, model_sha, text_model)
    described = {
        "inputs": inputs_identity(inputs),
        "model": f"sha256 {model_sha[:SHORT]}",
        "--text-model": identity(text_model) if text_model else None,
        "ranks": world,
        "--n-q": settings.n_q or model.num_codebooks,
        **{
            f"--{k.replace('_', '-')}": v
            for k, v in asdict(settings).items()
            if k not in (*SPEED_ONLY, "n_q", "bandwidth")
        },
    }
    own_plan(out_dir, "tokenize", described, overwrite, clear=False, fingerprint=(plan, "codes"))
    job = Job(out_dir, plan, _unit_name, _files_match, ALONE)
    mine = [shards[k] for k in job.pending(s.number for s in shards if s.rank == rank)]
    bar = progress(sum(len(s.items) for s in mine), f"tokenizing (rank {rank})")
    if settings.compile:
        model.compile_encoder()
    one_call = _one_call(settings, device)
    settings, probed = _resolve_batch_seconds(model, settings, device, one_call)
    grid = _grid(model, settings) if one_call else None
    work = _plan_work(model, mine, settings, grid)
    timer = Timer(device)
    batches = _device_batches(model, work, settings, device, timer, grid)

    started, seconds = time.monotonic(), 0.0
    # Files are written by a background thread while the next window encodes; at most one
    # window waits to be written, so memory stays bounded.
    # On CPU a batch's length groups encode concurrently, one intra-op thread each.
    with (
        ThreadPoolExecutor(max_workers=1) as writer,
        GroupRunner() as runner,
        numerics(settings.precision, device, autotune=one_call),
    ):
        pending: Future[None] | None = None
        for window in work:
            encoded, window_seconds = _encode_window(
                model, window, batches, out_dir, settings, texts, device, bar, runner, timer,
                grid,
            )  # fmt: skip
            with timer.span("write_wait"):
                if pending is not None:
                    pending.result()  # re-raises a write error here
            pending = writer.submit(_write_window, job, window.shards, encoded, settings, timer)
            seconds += window_seconds
            rate = seconds / 3600 / max(time.monotonic() - started, 1e-9)
            if hasattr(bar, "set_postfix_str"):  # tqdm: audio hours per second beside items/s
                bar.set_postfix_str(f"{rate:.3f} audio-h/s")
        with timer.span("write_wait"):
            if pending is not None:
                pending.result()
    bar.close()
    distrib.barrier()
    if rank != 0:
        return None
    records = job.wait_for_all(len(shards), wait_timeout)
    index = _index(model, model_path, model_sha, shards, records, settings, skipped, plan)
    index.speed = {
        "batching": "one-call" if one_call else "groups",
        "batch_seconds": settings.batch_seconds,
        "bucket_seconds": settings.bucket_seconds if one_call else None,
        "workers": settings.workers,
        "probe_audio_s_per_s": probed,
    }
    index.write(out_dir.path(INDEX_NAME))
    _remove_unlisted(out_dir, index)
    job.remove_leftovers()
    wall = round(time.monotonic() - started, 2)
    TokenizeReport(
        index.skipped, round(seconds, 2), wall, timer.report(wall, shapes=grid is not None)
    ).write(out_dir.path(REPORT_NAME))
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


def _resolve_batch_seconds(
    model: CodecModel, settings: TokenizeSettings, device: str, one_call: bool
) -> tuple[TokenizeSettings, dict[str, float] | None]:
    """``settings`` with a number of batch seconds (and the probe's rates, if it ran): the
    device's default, or for ``auto`` the probe's choice (one-call batches only: CPU groups
    are cut to cache-sized pieces whatever the batch)."""
    value = settings.batch_seconds
    accelerator = not device.startswith("cpu")
    if value == "auto" and one_call:
        chosen, rates = probe_batch_seconds(model, device, settings.precision, settings.n_q)
        return replace(settings, batch_seconds=chosen), rates
    if value is None or value == "auto":
        value = ACCELERATOR_BATCH_SECONDS if accelerator else CPU_BATCH_SECONDS
    return replace(settings, batch_seconds=float(value)), None


def _one_call(settings: TokenizeSettings, device: str) -> bool:
    if settings.batching == "auto":
        return not device.startswith("cpu")
    return settings.batching == "one-call"


@dataclass
class _Window:
    """Consecutive output shards whose items are batched together: ``items`` in plan order,
    ``owners`` (shard, index in shard) per item, and the loader's batch ``specs`` (indices
    into ``items``)."""

    shards: list[OutputShard]
    items: list[ShardItem]
    owners: list[tuple[int, int]]
    specs: list[BatchSpec]


# Chunks of a non-causal model's long items are at least this long (--max-chunk-seconds).
MIN_CHUNK_SECONDS = 1.0
# A streaming model's long item runs in steps of at most this much audio on CPU: its codes
# do not depend on the step, and a 20 s step of Meta's EnCodec 24 kHz held ~700 MB of
# activations (a 10-minute file grew the process by ~950 MB; in 2 s steps 233-272 MB, and
# no slower).
STREAM_STEP_SECONDS = 2.0

# One-call windows hold this much audio (their codes wait in memory until written).
WINDOW_SECONDS = 2 * 3600.0


def _chunk_samples(model: CodecModel, settings: TokenizeSettings) -> int:
    """``--max-chunk-seconds`` in whole hops (at least one); not under what a streaming
    model needs to give chunked items the codes of the whole item."""
    hop = model.hop_length
    chunk = max(1, int(settings.max_chunk_seconds * model.sample_rate) // hop) * hop
    if not model.streams and settings.max_chunk_seconds < MIN_CHUNK_SECONDS:
        raise UserError(
            f"--max-chunk-seconds {settings.max_chunk_seconds:g} is under "
            f"{MIN_CHUNK_SECONDS:g} s: this model is not causal, so the codes near each chunk "
            "boundary differ from the whole item's, and in chunks this short almost every "
            f"frame is near one; give at least {MIN_CHUNK_SECONDS:g} (default 20)"
        )
    if model.streams and chunk < model.stream_min_samples:
        shortest = model.stream_min_samples / model.sample_rate
        raise UserError(
            f"--max-chunk-seconds {settings.max_chunk_seconds:g} is shorter than this model "
            f"streams exactly ({shortest:.3f} s, {model.stream_min_samples // hop} frames)"
        )
    return chunk


def _grid(model: CodecModel, settings: TokenizeSettings) -> ShapeGrid:
    hop, rate = model.hop_length, model.sample_rate
    chunk = _chunk_samples(model, settings)
    bucket = min(max(1, round(settings.bucket_seconds * rate / hop)) * hop, chunk)
    budget = int(float(settings.batch_seconds or 0) * rate)
    return ShapeGrid(bucket=bucket, budget=budget, chunk=chunk, max_samples=chunk)


def _plan_work(
    model: CodecModel, shards: list[OutputShard], settings: TokenizeSettings,
    grid: ShapeGrid | None,
) -> list[_Window]:  # fmt: skip
    """The windows and their batches: on the ``grid`` (one-call: batches span the output
    shards of a window), else each shard alone in length-sorted groups of the budget."""
    groups = windows(shards, WINDOW_SECONDS) if grid else [[shard] for shard in shards]
    work = []
    for group in groups:
        items = [item for shard in group for item in shard.items]
        owners = [(shard.number, i) for shard in group for i in range(len(shard.items))]
        if grid is None:
            seconds = [item.seconds for item in items]
            budget = float(settings.batch_seconds or 0)
            specs = [
                (indices, 0, 0) for indices in batches(seconds, budget, settings.max_chunk_seconds)
            ]
        else:
            samples = [expected_samples(item, model.sample_rate) for item in items]
            specs = grid_batches(samples, grid)
        work.append(_Window(group, items, owners, specs))
    return work


def _device_batches(
    model: CodecModel, work: list[_Window], settings: TokenizeSettings, device: str,
    timer: Timer, grid: ShapeGrid | None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every batch of every window, in order, read by one DataLoader and on ``device``."""
    items: list[ShardItem] = []
    specs: list[BatchSpec] = []
    for window in work:
        specs += [([len(items) + i for i in indices], r, n) for indices, r, n in window.specs]
        items += window.items
    bucket = grid.bucket if grid is not None else 0
    loader = audio_batches(
        items, specs, model.sample_rate, settings.workers, bucket, device.startswith("cuda")
    )
    source = on_device(loader, device, timer)
    first, waited = 0, False
    for window in work:
        for _ in window.specs:
            with timer.span("loader_wait" if waited else "first_batch"):
                batch = next(source)
            waited = True
            yield {  # indices within the window
                **batch,
                "indices": [i - first for i in batch["indices"]],
                "errors": [(i - first, e) for i, e in batch["errors"]],
            }
        first += len(window.items)


@dataclass
class _Encoded:
    """One output shard's codes, ready to be written."""

    output: ShardOutput
    failed: list[dict[str, Any]]
    num_codebooks: int
    device_type: str


def _encode_window(
    model: CodecModel,
    window: _Window,
    batches: Iterator[dict[str, Any]],
    out_dir: Folder,
    settings: TokenizeSettings,
    texts: TextTokenizer | None,
    device: str,
    bar: Any,
    runner: GroupRunner,
    timer: Timer,
    grid: ShapeGrid | None,
) -> tuple[list[_Encoded], float]:
    """Encode ``window``'s batches (the next ones ``batches`` yields); its shards' codes."""
    rate = model.sample_rate
    dtype = code_dtype(model.codebook_size)
    code_torch_dtype = torch.int16 if dtype == np.int16 else torch.int32
    failed: dict[int, list[dict[str, Any]]] = {shard.number: [] for shard in window.shards}
    encoded: dict[tuple[int, int], np.ndarray] = {}
    audio_seconds = 0.0
    with torch.inference_mode():
        for _ in window.specs:
            batch = next(batches)
            for i, error in batch["errors"]:
                number, index = window.owners[i]
                failed[number].append({"id": window.items[i].meta["id"], "reason": error})
            if batch["indices"]:
                wav, lengths = batch["device_wav"], batch["device_lengths"]
                with timer.span("encode", sync=True):
                    codes = _encode(model, wav, lengths, settings, grid, runner, timer)
                with timer.span("codes_back"):
                    codes = codes.to(code_torch_dtype).cpu()  # one copy a batch, not an item
                for row, i in enumerate(batch["indices"]):
                    samples = int(batch["lengths"][row])
                    frames = model.num_frames(samples)
                    # C order whatever the batch: the files' bytes never depend on batching
                    codes_row = np.ascontiguousarray(codes[row][:, :frames].t().numpy())
                    encoded[window.owners[i]] = codes_row
                    audio_seconds += samples / rate
            bar.update(len(batch["indices"]) + len(batch["errors"]))
    books = settings.n_q or model.num_codebooks
    results = []
    for shard in window.shards:
        output = ShardOutput(out_dir, shard.number, shard.rank, model.frame_rate, dtype)
        for index, item in enumerate(shard.items):  # plan order, whatever the batch order was
            codes_item = encoded.get((shard.number, index))
            if codes_item is not None:
                output.add(item.key, _meta(item, codes_item, rate, texts), codes_item)
        device_type = torch.device(device).type
        results.append(_Encoded(output, failed[shard.number], books, device_type))
    return results, audio_seconds


def _write_window(
    job: Job, shards: list[OutputShard], encoded: list[_Encoded], settings: TokenizeSettings,
    timer: Timer,
) -> None:  # fmt: skip
    """Every shard's files in every format, each followed by the completion record that
    makes a re-run keep them."""
    with timer.span("write"):
        for shard, codes in zip(shards, encoded, strict=True):
            files = codes.output.write(settings.formats, codes.num_codebooks)
            record = {
                "files": files,
                "skipped": codes.failed,
                "count": len(codes.output.rows),
                "device_type": codes.device_type,
            }
            job.complete(shard.number, record)


def _encode(
    model: CodecModel, wav: torch.Tensor, lengths: torch.Tensor, settings: TokenizeSettings,
    grid: ShapeGrid | None, runner: GroupRunner, timer: Timer,
) -> torch.Tensor:  # fmt: skip
    """Codes [B, K, F] on the device; a batch of one long item is encoded chunk by chunk.

    On the ``grid`` (one-call) every chunk is exactly ``grid.chunk`` samples, the last one
    zero-padded and masked by its length, so chunks add one shape to a run; otherwise each
    chunk is cut to its length (no masks: an item alone)."""
    chunk = grid.chunk if grid is not None else _chunk_samples(model, settings)
    if wav.shape[0] == 1 and int(lengths[0]) > chunk:
        total, hop = int(lengths[0]), model.hop_length
        step = chunk
        if grid is None and model.streams:  # the same codes in smaller steps (less memory)
            smaller = int(STREAM_STEP_SECONDS * model.sample_rate) // hop * hop
            step = min(chunk, max(smaller, model.stream_min_samples))
        parts = []
        with model.streaming():  # a causal model continues from chunk to chunk
            for start in range(0, total, step):
                size = min(total, start + step) - start
                part = wav[:, :, start : start + size]
                if grid is not None:
                    part = torch.nn.functional.pad(part, (0, chunk - size))
                timer.shape(part.shape)
                codes = model.encode(
                    part,
                    torch.tensor([size], device=wav.device),
                    settings.n_q,
                    runner,
                    one_call=grid is not None,  # else one item cut to its length: no masks
                )
                last = start + size == total  # compat X-Codec2 ends on one frame more
                parts.append(codes[0, :, : model.num_frames(size) if last else size // hop])
        return torch.cat(parts, dim=-1)[None]
    timer.shape(wav.shape)
    return model.encode(wav, lengths, settings.n_q, runner, one_call=grid is not None)


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
    """sha256 of a model's weights file (``identity.weights_file`` of a folder). ``model``
    is a local path, already resolved (``models.hub.resolve_source``)."""
    path = Path(model)
    if path.is_dir():
        path = weights_file(path) or path / WEIGHTS_NAME
    return sha256_file(path)


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
        code_layout=model.code_layout(),
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

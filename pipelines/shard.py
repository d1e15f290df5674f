"""``write_shards``: Lhotse manifests -> equal-count webdataset tar shards + ``index.json``.

The plan (which item goes into which shard) is a pure function of the manifests and the
settings, so every rank of a multi-node run computes the same plan and writes a disjoint
slice (shard ``k`` belongs to rank ``k % world_size``), and a killed run re-run with the same
arguments rewrites only shards whose completion record or sha256 does not check out.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from academicodec import __version__, distrib, storage
from academicodec.audio import (
    ctrl_c_after,
    downmix,
    encode_audio,
    load_audio,
    non_finite,
    resample,
)
from academicodec.errors import UserError
from academicodec.identity import inputs_identity
from academicodec.jobs import PROGRESS_DIR, Job, fingerprint
from academicodec.outputs import claim_folder, clear_folder, own_plan
from academicodec.pipelines.fetch import prefetch, source_bytes
from academicodec.pipelines.index import ShardIndex, ShardRecord
from academicodec.pipelines.items import ShardItem, find_manifests, plan_items
from academicodec.pipelines.tario import HashingWriter, TarSampleWriter
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import Folder
from academicodec.writer_lock import stage_scope

FORMATS = ("flac", "wav")
# Read size for a window of a long audio file in a bucket (ranged GETs of this size).
WINDOW_BLOCK = 1 << 20


@dataclass(frozen=True)
class ShardSettings:
    """Everything that shapes the output; validated once, recorded in the index."""

    sample_rate: int
    samples_per_shard: int = 1000
    format: str = "flac"
    max_duration: float = 30.0
    min_duration: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_rate < 1000:
            raise UserError(f"--sample-rate must be a rate in Hz, not {self.sample_rate}")
        if self.samples_per_shard < 1:
            raise UserError(f"--samples-per-shard must be ≥ 1, not {self.samples_per_shard}")
        if self.format not in FORMATS:
            raise UserError(f"--format must be one of {list(FORMATS)}, not {self.format!r}")
        if self.max_duration <= 0 or self.min_duration < 0:
            raise UserError("--max-duration must be > 0 and --min-duration ≥ 0")
        if self.min_duration >= self.max_duration:
            raise UserError(
                f"--min-duration ({self.min_duration}) must be below --max-duration "
                f"({self.max_duration})"
            )


@stage_scope
def write_shards(
    manifests: list[storage.Location],
    out: storage.Location,
    settings: ShardSettings,
    jobs: int = 1,
    overwrite: bool = False,
    progress: ProgressFactory = silent_progress,
    wait_timeout: float = 1800.0,
) -> ShardIndex | None:
    """Write this rank's shards of ``manifests`` into ``out``; rank 0 also writes the index.

    Returns the index on rank 0 (``None`` on other ranks). Ranks come from
    ``academicodec.distrib`` (a process group, or ``RANK``/``WORLD_SIZE``).
    """
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}")
    manifest_paths = find_manifests(list(manifests))
    out_dir = claim_folder(out, "shard", list(manifests))
    items, skipped = plan_items(manifest_paths, settings.max_duration, settings.min_duration)
    if not items:
        raise UserError(f"no samples to write from {[str(p) for p in manifest_paths]}")
    groups = _group(items, settings)
    plan = _fingerprint(groups, settings)
    described = {"inputs": inputs_identity(manifests), **_options(settings)}
    own_plan(out_dir, "shard", described, overwrite, clear=False, fingerprint=(plan, "shards"))
    job = _job(out_dir, plan)

    rank, world = distrib.rank(), distrib.world_size()
    todo = job.pending(k for k in range(len(groups)) if k % world == rank)
    bar = progress(sum(len(groups[k]) for k in todo), f"writing shards (rank {rank})")
    for done in _run(job, groups, todo, settings, jobs):
        bar.update(done)
    bar.close()

    distrib.barrier()
    if rank != 0:
        return None
    records = job.wait_for_all(len(groups), wait_timeout)
    lost = [s for r in records for s in r["skipped"]]
    if not any(r["record"]["samples"] for r in records):
        clear_folder(out_dir)  # empty shards would only pass for a result
        first = lost[0] if lost else {"id": "?", "reason": "?"}
        raise UserError(
            f"shard: none of the {len(items)} items could be read (e.g. {first['id']}: "
            f"{first['reason']}); has the corpus moved since prepare? Run `academicodec "
            "prepare` on its new location (--overwrite into the same manifests folder), then "
            "this command again"
        )
    index = ShardIndex(
        sample_rate=settings.sample_rate,
        format=settings.format,
        samples_per_shard=settings.samples_per_shard,
        plan=plan,
        shards=[ShardRecord(**r["record"]) for r in records],
        manifests=[str(p) for p in manifest_paths],
        settings=asdict(settings),
        skipped=skipped + lost,
        tool_version=__version__,
    )
    index.write(out_dir)
    _remove_stale(out_dir, len(groups))
    job.remove_leftovers()
    return index


def _options(settings: ShardSettings) -> dict[str, object]:
    """The settings as the command line names them (how a refusal lists changes)."""
    return {f"--{key.replace('_', '-')}": value for key, value in asdict(settings).items()}


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.tar"


def _group(items: list[ShardItem], settings: ShardSettings) -> list[list[ShardItem]]:
    """A seeded shuffle (so a shard mixes speakers), then equal-count chunks."""
    shuffled = list(items)
    random.Random(settings.seed).shuffle(shuffled)
    size = settings.samples_per_shard
    return [shuffled[i : i + size] for i in range(0, len(shuffled), size)]


def _fingerprint(groups: list[list[ShardItem]], settings: ShardSettings) -> str:
    return fingerprint(asdict(settings), *[[item.fingerprint() for item in g] for g in groups])


def _job(out_dir: Folder, plan: str) -> Job:
    return Job(out_dir, plan, shard_name, _shard_matches)


def _shard_matches(out_dir: Folder, data: dict[str, Any], hash_contents: bool) -> bool:
    return ShardRecord(**data["record"]).verify(out_dir, hash_contents) is None


def _run(
    job: Job, groups: list[list[ShardItem]], todo: list[int], settings: ShardSettings, jobs: int
):
    """Write the shards in ``todo``; yields the number of items each finished shard held."""
    args = [(job.out, k, groups[k], settings, job.plan) for k in todo]
    if jobs == 1 or len(todo) <= 1:
        for arg in args:
            yield write_one_shard(*arg)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(write_one_shard, *arg) for arg in args]
        for future in futures:
            yield future.result()


def write_one_shard(
    out_dir: Folder, k: int, items: list[ShardItem], settings: ShardSettings, plan: str
) -> int:
    """Write shard ``k`` atomically, then record its completion."""
    name = shard_name(k)
    skipped: list[dict[str, Any]] = []
    samples, seconds = 0, 0.0
    with out_dir.writing(name) as temporary, open(temporary, "wb") as f:
        hashing = HashingWriter(f)
        with TarSampleWriter(hashing) as tar:
            for item, data in zip(items, prefetch(items), strict=True):
                try:
                    if isinstance(data, Exception):
                        raise data
                    audio = read_item(item, settings.sample_rate, data)
                except Exception as exc:
                    skipped.append({"id": item.meta["id"], "reason": f"unreadable audio: {exc}"})
                    continue
                meta = dict(item.meta)
                meta.update(
                    num_samples=len(audio),
                    sample_rate=settings.sample_rate,
                    duration=round(len(audio) / settings.sample_rate, 6),
                )
                tar.add(
                    item.key,
                    {
                        settings.format: encode_audio(audio, settings.sample_rate, settings.format),
                        "json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(),
                    },
                )
                samples += 1
                seconds += len(audio) / settings.sample_rate
    record = ShardRecord(
        name=name,
        samples=samples,
        seconds=round(seconds, 3),
        bytes=hashing.size,
        sha256=hashing.digest.hexdigest(),
    )
    _job(out_dir, plan).complete(k, {"record": asdict(record), "skipped": skipped})
    return len(items)


def read_item(item: ShardItem, sample_rate: int, data: bytes | None = None) -> np.ndarray:
    """The item's window as mono float32 at ``sample_rate``. ``data``: its bytes when
    already fetched (``fetch.prefetch``); read here otherwise."""
    if data is None:
        data = source_bytes(item)
    if item.member is not None:  # a sample inside a shard written by ``shard``
        try:
            mono, rate = load_audio(data)
        except Exception as exc:
            raise ValueError(f"{item.member} in {item.source}: {exc}") from exc
        return resample(_finite(mono), rate, sample_rate)
    if item.is_file:
        with ExitStack() as stack:
            stack.enter_context(ctrl_c_after())  # reads a file object through cffi callbacks
            if data is not None:
                source: Any = io.BytesIO(data)
            elif storage.is_url(item.source):  # a window of a long file: only its blocks
                source = stack.enter_context(storage.open_file(item.source, WINDOW_BLOCK))
            elif not Path(item.source).is_file():  # libsndfile would say "System error."
                raise FileNotFoundError(
                    f"file not found: {item.source} (moved or deleted since prepare?)"
                )
            else:
                source = item.source
            f = stack.enter_context(sf.SoundFile(source))
            if item.start:
                f.seek(item.start)
            samples = f.read(item.frames, dtype="float32", always_2d=True)
        if len(samples) < item.frames:
            raise ValueError(f"{item.source} ends after {len(samples)} of {item.frames} frames")
        mono = downmix(samples)
    else:
        from lhotse.cut import Cut

        cut = Cut.from_dict(json.loads(item.source))
        mono = cut.load_audio().mean(axis=0).astype(np.float32)
    return resample(_finite(mono), item.recording_rate, sample_rate)


def _finite(mono: np.ndarray) -> np.ndarray:
    problem = non_finite(mono)
    if problem is not None:
        raise ValueError(problem)
    return mono


def _remove_stale(out_dir: Folder, count: int) -> None:
    """Shards past this plan's end (left by an earlier, larger run with --overwrite)."""
    for name in [
        *out_dir.files(pattern="shard-*.tar"),
        *out_dir.files(PROGRESS_DIR, "shard-*.json"),
    ]:
        number = name.rsplit("/", 1)[-1][len("shard-") :].split(".")[0]
        if number.isdigit() and int(number) >= count:
            out_dir.remove(name)

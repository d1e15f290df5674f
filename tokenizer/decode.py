"""``decode``: codes from any tokenize output back into audio files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from academicodec.errors import UserError
from academicodec.files import atomic_path
from academicodec.identity import SHORT, identity
from academicodec.models import CodecModel, load_codec
from academicodec.models.hub import resolve_source
from academicodec.outputs import claim_output, own_plan
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import Folder
from academicodec.tokenizer.index import INDEX_NAME, CodesIndex
from academicodec.tokenizer.readers import CodesDataset, Item, iter_parquet, iter_shar
from academicodec.tokenizer.run import checkpoint_sha256
from academicodec.writer_lock import stage_scope

# Padded seconds of audio per decode batch (as tokenize batches encoding on CPU).
BATCH_SECONDS = 60.0
# Items read ahead and sorted by length before they are batched.
READ_AHEAD = 64


@stage_scope
def decode_codes(
    codes_dir: str | Path,
    out_dir: str | Path,
    model_path: str | Path,
    ids: list[str] | None = None,
    device: str = "cpu",
    progress: ProgressFactory = silent_progress,
    force: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``OUT/<id>.wav`` at the model rate, the item's original duration, for every
    item or only ``ids`` (an id's ``/`` makes sub-folders, as the corpus had them).

    The model must be the one ``index.json`` says made the codes (same weights, or at
    least the same preset); other weights decode to noise, so that is refused unless
    ``force`` - and codes the model cannot decode at all (more codebooks, larger codes)
    are refused even then. Items are decoded in padded batches (the decoder is
    length-aware: each item's audio is what it decodes to alone). OUT follows the one OUT
    rule: audio of other codes, another model or other ``ids`` is refused unless
    ``overwrite``, which replaces it entirely."""
    folder = Path(codes_dir)
    if not (folder / INDEX_NAME).is_file():
        raise UserError(f"{folder} holds no tokenize output (index.json is missing)")
    index = CodesIndex.read(folder / INDEX_NAME)
    out = claim_output(out_dir, "decode", [folder])
    model_path = resolve_source(model_path)
    model = load_codec(model_path).to(device)
    model_sha = checkpoint_sha256(model_path)
    _check_model(folder, index, model_path, model_sha, model.config.name, force)
    _check_decodable(folder, index, model, model_path)
    described = {
        "codes": identity(folder),
        "model": f"sha256 {model_sha[:SHORT]}",
        "--ids": sorted(ids) if ids else None,
    }
    own_plan(Folder.of(out), "decode", described, overwrite)
    wanted = set(ids) if ids else None
    written, found = [], set()
    bar = progress(len(wanted) if wanted else index.totals.items, "decoding")
    pending: list[Item] = []

    def flush() -> None:
        paths = _decode_batch(model, pending, out, device)
        written.extend(paths)
        # One update per batch: item by item, the bar's first estimate (one item per batch
        # time) froze on screen as an ETA of minutes for a job of seconds.
        bar.update(len(paths))
        pending.clear()

    with torch.inference_mode():
        for item in iter_codes(folder):
            item_id = str(item[2].get("id"))
            if wanted is not None and item_id not in wanted:
                continue
            found.add(item_id)
            pending.append(item)
            if len(pending) >= READ_AHEAD:
                flush()
        flush()
    bar.close()
    if wanted is not None and wanted - found:
        missing = sorted(wanted - found)
        listed = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UserError(f"--ids: {len(missing)} id(s) not found in {folder}: {listed}")
    return written


def _decode_batch(model: CodecModel, items: list[Item], out: Path, device: str) -> list[Path]:
    """Decode ``items`` in padded batches of similar length; write each as its own wav."""
    budget = max(1, round(BATCH_SECONDS * model.frame_rate))
    order = sorted(items, key=lambda item: -len(item[0]))
    written = []
    start = 0
    while start < len(order):
        longest = max(1, len(order[start][0]))
        rows = max(1, budget // longest)
        batch = order[start : start + rows]
        start += len(batch)
        books = batch[0][0].shape[1]
        codes = torch.zeros(len(batch), books, longest, dtype=torch.long)
        for row, (frames, _, _) in enumerate(batch):
            codes[row, :, : len(frames)] = torch.from_numpy(frames.astype(np.int64)).t()
        lengths = torch.tensor([len(frames) for frames, _, _ in batch])
        audio = model.decode(codes.to(device), lengths.to(device))[:, 0].float().cpu().numpy()
        for row, (frames, _, meta) in enumerate(batch):
            samples = len(frames) * model.hop_length
            if meta.get("duration"):  # back to the item's own length (codes cover F x hop)
                samples = min(samples, round(float(meta["duration"]) * model.sample_rate))
            written.append(_write(out, str(meta.get("id")), audio[row, :samples], model))
    return written


def _write(out: Path, item_id: str, audio: np.ndarray, model: CodecModel) -> Path:
    path = out / f"{item_id}.wav"
    if out not in path.resolve().parents:
        raise UserError(f"item id {item_id!r} would write outside {out}")
    with atomic_path(path) as temporary:  # a killed decode leaves no half-written file
        sf.write(str(temporary), audio, model.sample_rate, subtype="PCM_16", format="WAV")
    return path


def _check_decodable(
    folder: Path, index: CodesIndex, model: CodecModel, model_path: str | Path
) -> None:
    """Codes this model cannot decode at all (even with --force): one line, not an
    IndexError from deep inside the quantizer."""
    if index.num_codebooks <= model.num_codebooks and index.codebook_size <= model.codebook_size:
        return
    raise UserError(
        f"{folder} holds {index.num_codebooks} x {index.codebook_size} codes; {model_path} "
        f"decodes at most {model.num_codebooks} x {model.codebook_size}: no model but one "
        f"with as many codebooks and codes can decode them (--force cannot help)"
    )


def _check_model(
    folder: Path, index: CodesIndex, model_path: str | Path, sha: str, preset: str, force: bool
) -> None:
    made_with = index.checkpoint_sha256
    if force or sha == made_with:
        return
    raise UserError(
        f"{folder} was made by {index.model} (preset {index.preset}, sha256 "
        f"{made_with[:12]}), not by {model_path} (preset {preset}): its codes would decode "
        "to noise; pass the same model, or --force"
    )


def iter_codes(folder: Path) -> Iterator[Item]:
    """Every item of a tokenize output, from whichever format it holds."""
    if (folder / "webdataset").is_dir():
        yield from CodesDataset(folder, rank=0, world_size=1)
    elif (folder / "shar").is_dir():
        yield from iter_shar(folder)
    elif (folder / "parquet").is_dir():
        yield from iter_parquet(folder)
    else:
        raise UserError(f"{folder} holds no tokenize output (webdataset/, shar/ or parquet/)")

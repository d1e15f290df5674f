"""``decode``: codes from any tokenize output back into audio files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from academicodec.errors import UserError
from academicodec.models import load_codec
from academicodec.outputs import claim_output
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.tokenizer.index import INDEX_NAME, CodesIndex
from academicodec.tokenizer.readers import CodesDataset, Item, iter_parquet, iter_shar
from academicodec.tokenizer.run import checkpoint_sha256


def decode_codes(
    codes_dir: str | Path,
    out_dir: str | Path,
    model_path: str | Path,
    ids: list[str] | None = None,
    device: str = "cpu",
    progress: ProgressFactory = silent_progress,
    force: bool = False,
) -> list[Path]:
    """Write ``OUT/<id>.wav`` at the model rate, the item's original duration, for every
    item or only ``ids`` (an id's ``/`` makes sub-folders, as the corpus had them).

    The model must be the one ``index.json`` says made the codes (same weights, or at
    least the same preset); other weights decode to noise, so that is refused unless
    ``force``."""
    folder = Path(codes_dir)
    if not (folder / INDEX_NAME).is_file():
        raise UserError(f"{folder} holds no tokenize output (index.json is missing)")
    index = CodesIndex.read(folder / INDEX_NAME)
    out = claim_output(out_dir, "decode", [folder])
    model = load_codec(model_path).to(device)
    _check_model(folder, index, model_path, model.config.name, force)
    wanted = set(ids) if ids else None
    written, found = [], set()
    bar = progress(len(wanted) if wanted else 0, "decoding")
    with torch.inference_mode():
        for codes, _, meta in iter_codes(folder):
            item_id = str(meta.get("id"))
            if wanted is not None and item_id not in wanted:
                continue
            found.add(item_id)
            frames = torch.from_numpy(codes.astype(np.int64)).t()[None].to(device)
            audio = model.decode(frames)[0, 0].float().cpu().numpy()
            if meta.get("duration"):  # back to the item's own length (the codes cover F x hop)
                audio = audio[: round(float(meta["duration"]) * model.sample_rate)]
            path = out / f"{item_id}.wav"
            if out not in path.resolve().parents:
                raise UserError(f"item id {item_id!r} would write outside {out}")
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), audio, model.sample_rate, subtype="PCM_16")
            written.append(path)
            bar.update(1)
    bar.close()
    if wanted is not None and wanted - found:
        missing = sorted(wanted - found)
        listed = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UserError(f"--ids: {len(missing)} id(s) not found in {folder}: {listed}")
    return written


def _check_model(
    folder: Path, index: CodesIndex, model_path: str | Path, preset: str, force: bool
) -> None:
    made_with = index.checkpoint_sha256
    if force or checkpoint_sha256(model_path) == made_with:
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

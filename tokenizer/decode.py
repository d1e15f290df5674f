"""``decode``: codes from any tokenize output back into audio files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from academicodec.errors import UserError
from academicodec.models import load_codec
from academicodec.pipelines.keys import sample_key
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.tokenizer.readers import CodesDataset, Item, iter_parquet, iter_shar


def decode_codes(
    codes_dir: str | Path,
    out_dir: str | Path,
    model_path: str | Path,
    ids: list[str] | None = None,
    device: str = "cpu",
    progress: ProgressFactory = silent_progress,
) -> list[Path]:
    """Write ``OUT/<key>.wav`` at the model rate, the item's original duration, for every
    item or only ``ids`` (file names are the tar-safe keys of the ids)."""
    folder, out = Path(codes_dir), Path(out_dir)
    model = load_codec(model_path).to(device)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(ids) if ids else None
    written = []
    bar = progress(len(wanted) if wanted else 0, "decoding")
    with torch.inference_mode():
        for codes, _, meta in _items(folder):
            if wanted is not None and meta.get("id") not in wanted:
                continue
            frames = torch.from_numpy(codes.astype(np.int64)).t()[None].to(device)
            audio = model.decode(frames)[0, 0].float().cpu().numpy()
            if meta.get("duration"):  # back to the item's own length (the codes cover F x hop)
                audio = audio[: round(float(meta["duration"]) * model.sample_rate)]
            path = out / f"{sample_key(str(meta.get('id')))}.wav"
            sf.write(str(path), audio, model.sample_rate, subtype="PCM_16")
            written.append(path)
            bar.update(1)
    bar.close()
    if wanted is not None and len(written) < len(wanted):
        raise UserError(f"--ids: {len(wanted) - len(written)} id(s) not found in {folder}")
    return written


def _items(folder: Path) -> Iterator[Item]:
    if (folder / "webdataset").is_dir():
        yield from CodesDataset(folder, rank=0, world_size=1)
    elif (folder / "shar").is_dir():
        yield from iter_shar(folder)
    elif (folder / "parquet").is_dir():
        yield from iter_parquet(folder)
    else:
        raise UserError(f"{folder} holds no tokenize output (webdataset/, shar/ or parquet/)")

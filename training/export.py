"""``export RUN OUT_DIR``: the generator and quantizer of a run's last checkpoint as an
inference export (``model.safetensors`` + ``config.yaml``)."""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.models import build_codec, save_codec
from academicodec.models.config import codec_config_from_dict
from academicodec.training.checkpoint import load_latest, load_state_file


def export_run(run: str | Path, out_dir: str | Path) -> Path:
    path = Path(run)
    state = load_state_file(path) if path.is_file() else load_latest(path / "checkpoints")
    if state is None:
        raise UserError(f"{run} holds no checkpoint (expected RUN/checkpoints/last.pt)")
    model = build_codec(codec_config_from_dict(state.config, str(run)))
    model.load_state_dict(state.generator)
    return save_codec(model.eval(), out_dir)

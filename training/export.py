"""``export RUN OUT_DIR``: the generator and quantizer of a run's last checkpoint as an
inference export (``model.safetensors`` + ``config.yaml``)."""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.models import build_codec, save_codec
from academicodec.models.config import codec_config_from_dict
from academicodec.training.checkpoint import load_latest, load_state_file


def export_run(run: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Export ``run``'s last checkpoint (or a checkpoint file); ``config.yaml`` records the
    run, the step and the training data (``origin``), so ``info`` says where the model
    came from and ``eval`` warns when it scores the model's own training data."""
    path = Path(run)
    state = load_state_file(path) if path.is_file() else load_latest(path / "checkpoints")
    if state is None:
        raise UserError(f"{run} holds no checkpoint (expected RUN/checkpoints/last.pt)")
    model = build_codec(codec_config_from_dict(state.config, str(run)))
    model.load_state_dict(state.generator)
    origin = {"run": str(path.resolve()), "step": state.step, "preset": state.config.get("name")}
    if state.data:
        origin["data"] = state.data
    return save_codec(model.eval(), out_dir, origin, overwrite)

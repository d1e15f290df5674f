"""``export RUN OUT_DIR``: the generator and quantizer of a run's last checkpoint as an
inference export (``model.safetensors`` + ``config.yaml``)."""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.models import build_codec, save_codec
from academicodec.models.config import codec_config_from_dict
from academicodec.training.checkpoint import LAST, load_latest, load_state_file


def export_run(run: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Export ``run``'s last checkpoint (or a checkpoint file); ``config.yaml`` records the
    run, the step and the training data (``origin``), so ``info`` says where the model
    came from and ``eval`` warns when it scores the model's own training data."""
    path = Path(run)
    state = load_state_file(path) if path.is_file() else load_latest(path / "checkpoints")
    if state is None:
        raise UserError(_no_checkpoint(path))
    model = build_codec(codec_config_from_dict(state.config, str(run)))
    model.load_state_dict(state.generator)
    origin = {"run": str(path.resolve()), "step": state.step, "preset": state.config.get("name")}
    if state.data:
        origin["data"] = state.data
    return save_codec(model.eval(), out_dir, origin, overwrite)


def _no_checkpoint(run: Path) -> str:
    """Why ``run`` gave no checkpoint: none there, or every one there damaged (named)."""
    folder = run / "checkpoints"
    files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if not files:
        return f"{run} holds no checkpoint (expected {folder / LAST})"
    names = ", ".join(f.name for f in files)
    return (
        f"every checkpoint in {folder} is damaged or unreadable ({names}; the warnings above "
        "say why): a training run that was cut off while writing leaves its previous "
        "checkpoint; export a copy of the run from before, or train again"
    )

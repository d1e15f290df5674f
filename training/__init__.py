"""The DDP codec trainer: loop, optimizers/schedulers, checkpoints, logging (DESIGN §5)."""

from academicodec.training.export import export_run
from academicodec.training.loop import RunOptions, TrainingStopped, train

__all__ = ["RunOptions", "TrainingStopped", "export_run", "train"]

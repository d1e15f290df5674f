"""The DDP codec trainer: loop, optimizers/schedulers, checkpoints, logging (DESIGN §5)."""

from academicodec.training.export import export_run
from academicodec.training.loop import RunOptions, train
from academicodec.training.trainer import Trainer, TrainingStopped

__all__ = ["RunOptions", "Trainer", "TrainingStopped", "export_run", "train"]

"""The DDP codec trainer: loop, optimizers, checkpoints, logging (DESIGN §5)."""

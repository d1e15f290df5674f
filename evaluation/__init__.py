"""Objective codec metrics and the evaluation report (DESIGN §7)."""

from academicodec.evaluation.run import evaluate

__all__ = ["evaluate"]

"""Objective codec metrics and the evaluation report (DESIGN §7)."""

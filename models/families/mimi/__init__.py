"""Kyutai's Mimi: ``arch.py`` (the ``mimi:`` section), ``network.py``, ``convert.py``."""

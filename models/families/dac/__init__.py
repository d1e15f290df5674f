"""Descript Audio Codec: ``arch.py`` (the ``dac:`` section), ``network.py``, ``convert.py``."""

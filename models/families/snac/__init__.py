"""SNAC: ``arch.py`` (the ``snac:`` section), ``network.py``, ``convert.py``."""

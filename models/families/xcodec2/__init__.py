"""X-Codec2: ``arch.py`` (the ``xcodec2:`` section), ``network.py``, ``convert.py``."""

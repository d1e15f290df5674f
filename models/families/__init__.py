"""Released codec families, one folder each: adding a family adds a folder and its name here.

A folder holds everything one family needs and nothing another family's code reads:

- ``arch.py``: its preset section (the ``dac:`` keys), a frozen dataclass with the checks
  that need the whole config, its hop and its codebook count;
- ``network.py``: its modules and its ``CodecModel`` (``CODEC``), length-aware as ours;
- ``convert.py``: its released files and Hugging Face folders onto ``network.py`` (which
  files it claims, the name map, reading their configs, refusing what it cannot build).

AcademiCodec's releases and Meta's EnCodec build our trained families (``models/hifigan.py``,
``models/seanet.py``), so their folders hold ``convert.py`` alone. A network may build on
another family's modules (SNAC's blocks are DAC's, as the snac package imports dac's); a
conversion reads only its own family and ``common.py`` (tests/test_package.py checks it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from academicodec.models.codec import CodecModel
    from academicodec.models.families.common import Converter

# Families with a network here: they build and run released weights (no training recipe).
NETWORKS = ("dac", "mimi", "snac", "xcodec2")
# Every family's conversion, in the order a checkpoint is offered to them.
CONVERTERS = ("academicodec", "meta_encodec", "dac", "mimi", "snac", "xcodec2")


def codec_class(family: str) -> type[CodecModel]:
    """The ``CodecModel`` of a family in ``NETWORKS`` (imported on first use: a family's
    network is loaded only when one of its models is built)."""
    return importlib.import_module(f"{__name__}.{family}.network").CODEC


def converters() -> list[Converter]:
    """Each family's ``convert.CONVERTER``, in ``CONVERTERS`` order."""
    return [importlib.import_module(f"{__name__}.{name}.convert").CONVERTER for name in CONVERTERS]

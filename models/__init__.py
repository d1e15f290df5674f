"""The codec runtime behind ``build_codec`` (DESIGN §4): our families' networks and
quantizers, and each released family in its own folder (``families/``).

The rest of the code calls ``build_codec(preset)`` and uses the ``CodecModel`` interface;
nothing outside this package touches a concrete class.
"""

from academicodec.models.codec import CodecModel, CodecOutput, build_codec
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.export import load_codec, save_codec

__all__ = [
    "CodecConfig",
    "CodecModel",
    "CodecOutput",
    "build_codec",
    "load_codec",
    "load_codec_config",
    "save_codec",
]

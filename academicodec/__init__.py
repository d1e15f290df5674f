"""academicodec: corpora to shards, codec training and bulk discrete-code dumps.

The sub-packages live in the project's top-level folders (see pyproject's package-dir):
``academicodec.manifests``, ``.pipelines``, ``.models``, ``.training``, ``.tokenizer``,
``.evaluation``. Importing this package imports none of them, so the CLI starts fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("academicodec")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from academicodec.errors import UserError

__all__ = ["UserError", "__version__"]

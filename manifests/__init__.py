"""Corpus scanners that turn a corpus directory into Lhotse manifests plus a skip report.

``prepare(corpus, src, out)`` is the one entry point; each corpus has its own module that
knows its layout (``libritts``, ``vctk``, ``aishell``, ``folder``, ``hf``).
"""

from academicodec.manifests.prepare import CORPORA, prepare
from academicodec.manifests.report import PrepareReport

__all__ = ["CORPORA", "PrepareReport", "prepare"]

"""Bulk encoding into sharded discrete codes, text tokens, decoding, and readers (DESIGN §6).

``tokenize(model, inputs, out, settings)`` is the entry point; ``readers`` loads its outputs
for downstream training and ``decode`` turns them back into audio.
"""

from academicodec.tokenizer.run import TokenizeSettings, tokenize

__all__ = ["TokenizeSettings", "tokenize"]

"""Codec networks, quantizers, discriminators and losses behind ``build_codec`` (DESIGN §4)."""

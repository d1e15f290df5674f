"""Meta's EnCodec 24 kHz (its file and transformers' folder) onto our SEANet family."""

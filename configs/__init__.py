"""Preset YAML files (data, one file per preset); loaded by ``academicodec.config``."""

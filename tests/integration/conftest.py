"""The world most CLI misuse tests share: two prepared corpora, shards of the first, two
different models and codes of the first (module-scoped: built once per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec, save_codec
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.tokenizer.run import TokenizeSettings, tokenize


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two prepared corpora, shards of the first, two different models, codes of the first."""
    root = tmp_path_factory.mktemp("misuse")
    make_folder(root / "src_a", 5, durations=(0.4, 0.9))
    make_folder(root / "src_b", 4, seed=1, durations=(0.4, 0.9))
    prepare("folder", root / "src_a", root / "manifests" / "a")
    prepare("folder", root / "src_b", root / "manifests" / "b")
    settings = ShardSettings(sample_rate=16000, samples_per_shard=3)
    write_shards([root / "manifests" / "a"], root / "shards", settings)
    torch.manual_seed(0)
    save_codec(build_codec("tiny_hificodec_16k"), root / "model_a")
    torch.manual_seed(1)
    save_codec(build_codec("tiny_hificodec_16k"), root / "model_b")
    formats = ("webdataset", "shar", "parquet")
    tokenize(root / "model_a", [root / "shards"], root / "codes", TokenizeSettings(formats))
    return {
        "root": root,
        "a": root / "manifests" / "a",
        "b": root / "manifests" / "b",
        "shards": root / "shards",
        "model_a": root / "model_a",
        "model_b": root / "model_b",
        "codes": root / "codes",
    }

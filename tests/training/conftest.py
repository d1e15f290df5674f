from pathlib import Path

import pytest

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.pipelines import ShardSettings, write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 clips at 16 kHz in uneven shards of 5, 5, 4 (3 batches of 4 an epoch)."""
    root = tmp_path_factory.mktemp("train-data")
    make_folder(root / "src", 14, durations=(0.5, 1.2))
    prepare("folder", root / "src", root / "manifests")
    write_shards([root / "manifests"], root / "shards", ShardSettings(16000, samples_per_shard=5))
    return root / "shards"

from pathlib import Path

import pytest
import torch

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec, save_codec


@pytest.fixture(scope="package")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared folder corpus: 14 clips at 16/22.05/44.1 kHz, half with transcripts."""
    root = tmp_path_factory.mktemp("tok-corpus")
    make_folder(root / "src", 14, durations=(0.4, 1.4))
    prepare("folder", root / "src", root / "manifests")
    return root / "manifests"


@pytest.fixture(scope="package")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_codec(build_codec("tiny_hificodec_16k"), tmp_path_factory.mktemp("model"))

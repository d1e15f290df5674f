from pathlib import Path

import pytest
from lhotse import CutSet

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CutSet]:
    """A prepared folder corpus of 14 clips at 16/22.05/44.1 kHz (wav, flac, ogg)."""
    root = tmp_path_factory.mktemp("corpus")
    make_folder(root / "src", 14, durations=(0.3, 0.9))
    report = prepare("folder", root / "src", root / "manifests")
    cuts = CutSet.from_file(root / "manifests" / report.manifests["all"]["cuts"]).to_eager()
    return root / "manifests", cuts

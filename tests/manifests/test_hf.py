"""Local Hugging Face datasets: save_to_disk folders and parquet files, decoded by soundfile."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_hf


def test_saved_dataset_dict(tmp_path: Path) -> None:
    written = make_hf(tmp_path / "ds", {"train": 4, "validation": 2})
    report = prepare("hf", tmp_path / "ds", tmp_path / "out", language="English")
    assert {s: c.recordings for s, c in report.splits.items()} == {"train": 4, "validation": 2}
    assert report.totals.seconds == pytest.approx(sum(w.duration for w in written), rel=0.01)

    cuts = CutSet.from_file(tmp_path / "out" / "hf_cuts_train.jsonl.gz").to_eager()
    cut = cuts["train_0000"]
    assert cut.supervisions[0].text == written[0].text
    assert cut.supervisions[0].speaker == "s0"
    assert cut.supervisions[0].language == "English"
    audio_path = Path(cut.recording.sources[0].source)
    assert audio_path.parent == tmp_path / "out" / "audio" / "train"
    assert cut.load_audio().shape[1] == written[0].num_samples


def test_parquet_with_bad_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def flac(seconds: float) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, np.zeros(int(16000 * seconds), np.float32), 16000, format="FLAC")
        return buffer.getvalue()

    rows = [
        {"audio": {"bytes": flac(0.5), "path": "a.flac"}, "sentence": "one"},
        {"audio": {"bytes": b"not audio at all" * 10, "path": "b.wav"}, "sentence": "two"},
        {"audio": None, "sentence": "three"},
        {"audio": {"bytes": flac(0.25), "path": None}, "sentence": None},
    ]
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data" / "test-00000-of-00001.parquet")

    report = prepare("hf", tmp_path / "data", tmp_path / "out")
    assert report.splits["test"].recordings == 2
    assert report.splits["test"].without_text == 1
    assert report.splits["test"].seconds == pytest.approx(0.75)
    reasons = sorted(f.reason for f in report.skipped)
    assert len(reasons) == 2
    assert any("unreadable audio header" in r for r in reasons)
    assert any("no audio" in r for r in reasons)


def test_bad_columns_and_non_dataset(tmp_path: Path) -> None:
    make_hf(tmp_path / "ds", {"train": 1})
    with pytest.raises(UserError, match="--audio-column"):
        prepare("hf", tmp_path / "ds", tmp_path / "out", audio_column="speech")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a Hugging Face dataset"):
        prepare("hf", tmp_path / "empty", tmp_path / "out")

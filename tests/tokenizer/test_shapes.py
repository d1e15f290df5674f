"""One-call batching (accelerators): a run feeds the encoder a fixed grid of input shapes -
one per length bucket used, plus the chunk shape of long items - whatever the corpus size
and the number of output shards, and the files are byte-identical to one item a batch."""

import json
import math
from pathlib import Path

import pytest
from lhotse import CutSet

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import CodecModel, load_codec
from academicodec.tokenizer import probe
from academicodec.tokenizer.run import TokenizeSettings, tokenize

BUCKET, CHUNK = 0.5, 2.5  # seconds


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """210 clips of 0.2-3.2 s at 16, 24 and 44.1 kHz (resampled to the model's 16 kHz)."""
    root = tmp_path_factory.mktemp("mixed")
    make_folder(
        root / "src", 210, seed=5, rates=(16000, 24000, 44100), formats=("wav", "flac"),
        durations=(0.2, 3.2),
    )  # fmt: skip
    prepare("folder", root / "src", root / "manifests")
    return root / "manifests"


def _recorded_shapes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Every input shape the encoder computes on (one per call of the per-call encoder)."""
    shapes: list[tuple[int, ...]] = []
    real = CodecModel._encode_batch

    def recording(self, wav, lengths, n_q):  # type: ignore[no-untyped-def]
        shapes.append(tuple(wav.shape))
        return real(self, wav, lengths, n_q)

    monkeypatch.setattr(CodecModel, "_encode_batch", recording)
    return shapes


def test_one_call_shapes_are_a_fixed_grid(
    mixed: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    formats = ("webdataset", "shar", "parquet")
    alone = tokenize(
        model_dir, [mixed], tmp_path / "alone",
        TokenizeSettings(
            formats, batch_seconds=0, workers=0, items_per_shard=64, max_chunk_seconds=CHUNK
        ),
    )  # fmt: skip
    shapes = _recorded_shapes(monkeypatch)
    settings = TokenizeSettings(
        formats, batch_seconds=6, workers=0, items_per_shard=64, batching="one-call",
        bucket_seconds=BUCKET, max_chunk_seconds=CHUNK,
    )  # fmt: skip
    index = tokenize(model_dir, [mixed], tmp_path / "grid", settings)
    assert index is not None and alone is not None
    assert index.totals.shards >= 4 and index.totals.items == 210

    model = load_codec(model_dir)
    bucket = round(BUCKET * model.sample_rate)
    cuts = CutSet.from_file(next(mixed.glob("*_cuts_*"))).to_eager()
    samples = [math.ceil(cut.duration * model.sample_rate) for cut in cuts]
    long_items = [n for n in samples if n > CHUNK * model.sample_rate]
    buckets = {math.ceil(n / bucket) * bucket for n in samples if n <= CHUNK * model.sample_rate}
    assert long_items and len(buckets) >= 5  # the corpus exercises both paths

    distinct = set(shapes)
    assert len(distinct) <= len(buckets) + 1, sorted(distinct)
    assert len(shapes) >= 3 * len(distinct)  # many batches, few shapes
    for rows, _, length in distinct:  # every bucket's batches hold the same rows
        chunk = (rows, length) == (1, CHUNK * model.sample_rate)
        assert chunk or (length in buckets and rows == max(1, 6 * model.sample_rate // length))
    report = json.loads((tmp_path / "grid" / "tokenize_report.json").read_text())
    assert report["timing"]["encoder_shapes"] == len(distinct)
    assert sorted(map(tuple, report["timing"]["shapes"])) == sorted(distinct)
    assert index.speed is not None and index.speed["batching"] == "one-call"
    # the same files, byte for byte, as one item a batch: batching is speed-only
    assert index.formats == alone.formats


def test_batch_seconds_auto_probes_and_is_recorded(
    corpus: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe, "PROBE_SECONDS", (1.0, 2.0, 4.0))
    monkeypatch.setattr(probe, "PROBE_ROW_SECONDS", 1.0)
    settings = TokenizeSettings(
        workers=0, items_per_shard=5, batching="one-call", batch_seconds="auto"
    )
    index = tokenize(model_dir, [corpus], tmp_path / "auto", settings)
    fixed = tokenize(
        model_dir, [corpus], tmp_path / "fixed", TokenizeSettings(workers=0, items_per_shard=5)
    )
    assert index is not None and fixed is not None and index.speed is not None
    rates = index.speed["probe_audio_s_per_s"]
    assert set(rates) == {"1", "2", "4"} and all(rate > 0 for rate in rates.values())
    best = max(rates.values())
    assert index.speed["batch_seconds"] == min(
        float(s) for s, r in rates.items() if r >= probe.TARGET * best
    )
    assert index.plan == fixed.plan and index.formats == fixed.formats  # speed-only
    assert fixed.speed == {
        "batching": "groups", "batch_seconds": 120.0, "bucket_seconds": None, "workers": 0,
        "probe_audio_s_per_s": None,
    }  # fmt: skip


def test_batch_seconds_must_be_a_number_or_auto() -> None:
    from academicodec.errors import UserError

    with pytest.raises(UserError, match="--batch-seconds"):
        TokenizeSettings(batch_seconds="fast")
    with pytest.raises(UserError, match="--batch-seconds"):
        TokenizeSettings(batch_seconds=-1.0)

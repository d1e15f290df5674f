"""Shard writing: exactly once, target rate, equal counts, index integrity, resume, ranks."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from academicodec.errors import UserError
from academicodec.files import sha256_file
from academicodec.pipelines import ShardIndex, ShardSettings, write_shards
from academicodec.pipelines import shard as shard_module
from academicodec.pipelines.decode import decode_sample
from academicodec.pipelines.tario import iter_tar_samples

SETTINGS = ShardSettings(sample_rate=16000, samples_per_shard=4)


def _samples(folder: Path) -> list[dict]:
    index = ShardIndex.load(folder)
    return [
        decode_sample(key, files)
        for record in index.shards
        for key, files in iter_tar_samples(folder / record.name)
    ]


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("shard-*.tar"))} | {
        "index.json": (folder / "index.json").read_bytes()
    }


def test_every_cut_once_at_target_rate(prepared, tmp_path: Path) -> None:
    manifests, cuts = prepared
    index = write_shards([manifests], tmp_path / "shards", SETTINGS, jobs=2)
    samples = _samples(tmp_path / "shards")

    assert sorted(s["meta"]["id"] for s in samples) == sorted(c.id for c in cuts)
    assert [r.samples for r in index.shards] == [4, 4, 4, 2]
    for sample in samples:
        cut = cuts[sample["meta"]["id"]]
        assert sample["sample_rate"] == 16000 and sample["audio"].ndim == 1
        expected = cut.duration * 16000
        assert abs(len(sample["audio"]) - expected) <= 1, sample["meta"]["id"]
        assert sample["meta"]["num_samples"] == len(sample["audio"])
        assert sample["meta"]["text"] == cut.supervisions[0].text
        assert sample["meta"]["corpus"] == cut.custom["corpus"] == "src"  # the folder's name
        assert "." not in sample["key"]  # webdataset splits keys at the first dot
    for record in index.shards:
        assert sha256_file(tmp_path / "shards" / record.name) == record.sha256
        assert (tmp_path / "shards" / record.name).stat().st_size == record.bytes
    assert index.total_samples == len(cuts)
    on_disk = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert on_disk["totals"]["samples"] == len(cuts)
    assert on_disk["sample_rate"] == 16000


def test_audio_content_survives(prepared, tmp_path: Path) -> None:
    """Same-rate items are stored losslessly (16-bit), resampled ones keep their energy."""
    manifests, cuts = prepared
    write_shards([manifests], tmp_path / "s", ShardSettings(sample_rate=16000, format="wav"))
    for sample in _samples(tmp_path / "s"):
        cut = cuts[sample["meta"]["id"]]
        original = cut.load_audio()[0]
        if cut.sampling_rate == 16000:
            np.testing.assert_allclose(sample["audio"], original, atol=1 / 32768 + 1e-6)
        else:
            ratio = np.sqrt(np.mean(sample["audio"] ** 2) / np.mean(original**2))
            assert 0.9 < ratio < 1.1


def test_resume_restores_deleted_and_truncated_shards(prepared, tmp_path: Path) -> None:
    manifests, _ = prepared
    out = tmp_path / "shards"
    write_shards([manifests], out, SETTINGS)
    first = _tree_bytes(out)
    untouched_mtime = (out / "shard-000002.tar").stat().st_mtime_ns

    (out / "shard-000000.tar").unlink()
    data = (out / "shard-000001.tar").read_bytes()
    (out / "shard-000001.tar").write_bytes(data[: len(data) // 3])
    write_shards([manifests], out, SETTINGS)

    assert _tree_bytes(out) == first
    assert (out / "shard-000002.tar").stat().st_mtime_ns == untouched_mtime  # kept, not rewritten


def test_killed_run_resumes_to_identical_output(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests, _ = prepared
    write_shards([manifests], tmp_path / "reference", SETTINGS)

    real = shard_module.write_one_shard
    calls = []

    def dies_on_third(out_dir, k, items, settings, plan):  # type: ignore[no-untyped-def]
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if killed mid-run
        return real(out_dir, k, items, settings, plan)

    monkeypatch.setattr(shard_module, "write_one_shard", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        write_shards([manifests], tmp_path / "resumed", SETTINGS)
    assert not (tmp_path / "resumed" / "index.json").exists()
    monkeypatch.setattr(shard_module, "write_one_shard", real)

    write_shards([manifests], tmp_path / "resumed", SETTINGS)
    assert _tree_bytes(tmp_path / "resumed") == _tree_bytes(tmp_path / "reference")


def test_ranks_write_disjoint_slices_and_rank0_merges(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests, _ = prepared
    write_shards([manifests], tmp_path / "single", SETTINGS)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert write_shards([manifests], tmp_path / "multi", SETTINGS) is None
    assert sorted(p.name for p in (tmp_path / "multi").glob("shard-*.tar")) == [
        "shard-000001.tar",
        "shard-000003.tar",
    ]
    monkeypatch.setenv("RANK", "0")
    index = write_shards([manifests], tmp_path / "multi", SETTINGS, wait_timeout=30)
    assert index is not None and len(index.shards) == 4
    assert _tree_bytes(tmp_path / "multi") == _tree_bytes(tmp_path / "single")


def test_rank0_gives_up_waiting_with_a_clear_error(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests, _ = prepared
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UserError, match="other ranks"):
        write_shards([manifests], tmp_path / "s", SETTINGS, wait_timeout=0.5)


def test_other_settings_in_same_out_are_refused(prepared, tmp_path: Path) -> None:
    manifests, _ = prepared
    write_shards([manifests], tmp_path / "s", SETTINGS)
    other = ShardSettings(sample_rate=24000, samples_per_shard=4)
    with pytest.raises(UserError, match="--overwrite"):
        write_shards([manifests], tmp_path / "s", other)
    fewer = ShardSettings(sample_rate=24000, samples_per_shard=8)
    index = write_shards([manifests], tmp_path / "s", fewer, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "s").glob("shard-*.tar")) == [
        r.name for r in index.shards
    ]


def test_long_cuts_split_and_short_cuts_reported(tmp_path: Path) -> None:
    from academicodec.manifests import prepare

    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "long.wav", np.random.default_rng(0).normal(0, 0.1, 8000 * 70), 8000)
    sf.write(src / "tiny.wav", np.zeros(400, np.float32), 8000)  # 0.05 s
    sf.write(src / "short.wav", np.zeros(8000, np.float32), 8000)
    prepare("folder", src, tmp_path / "m")
    index = write_shards(
        [tmp_path / "m"], tmp_path / "s", ShardSettings(sample_rate=8000, max_duration=30.0)
    )
    samples = _samples(tmp_path / "s")
    windows = sorted(
        (s["meta"]["offset"], len(s["audio"])) for s in samples if s["meta"]["cut_id"] == "src-long"
    )
    lengths = [n for _, n in windows]
    assert len(lengths) == 3 and max(lengths) - min(lengths) <= 1  # equal pieces
    assert max(lengths) <= 30 * 8000
    assert sum(n for _, n in windows) == 8000 * 70
    assert [s["id"] for s in index.skipped] == ["src-tiny"]
    assert "min-duration" in index.skipped[0]["reason"]


def test_windows_follow_supervision_boundaries(tmp_path: Path) -> None:
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut

    from academicodec.pipelines.items import split_windows

    recording = Recording(
        id="r", sources=[], sampling_rate=100, num_samples=100 * 50, duration=50.0
    )
    sups = [
        SupervisionSegment(id=f"s{i}", recording_id="r", start=s, duration=d, text=f"t{i}")
        for i, (s, d) in enumerate([(0, 12), (12, 10), (22, 15), (37, 13)])
    ]
    cut = MonoCut(id="c", start=0, duration=50.0, channel=0, recording=recording, supervisions=sups)
    windows = split_windows(cut, 5000, 100, max_duration=25.0)
    assert windows == [(0, 2200, "t0 t1"), (2200, 3700, "t2"), (3700, 5000, "t3")]


def test_recording_manifests_and_webdataset_library_read_the_shards(
    prepared, tmp_path: Path
) -> None:
    import webdataset as wds
    from lhotse import RecordingSet

    from academicodec.pipelines.decode import decode_wds_sample

    manifests, cuts = prepared
    recordings = RecordingSet.from_recordings(c.recording for c in cuts)
    recordings.to_file(tmp_path / "recs.jsonl.gz")
    index = write_shards([tmp_path / "recs.jsonl.gz"], tmp_path / "s", SETTINGS)
    urls = [str(tmp_path / "s" / r.name) for r in index.shards]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(decode_wds_sample)
    got = sorted(sample["meta"]["id"] for sample in dataset)
    assert got == sorted(c.id for c in cuts)
    with tarfile.open(urls[0]) as tar:
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_bad_arguments(prepared, tmp_path: Path) -> None:
    manifests, _ = prepared
    with pytest.raises(UserError, match="does not exist"):
        write_shards([tmp_path / "nope.jsonl.gz"], tmp_path / "s", SETTINGS)
    with pytest.raises(UserError, match="--format"):
        ShardSettings(sample_rate=16000, format="mp3")
    with pytest.raises(UserError, match="--sample-rate"):
        ShardSettings(sample_rate=16)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a writable directory"):
        write_shards([manifests], tmp_path / "file" / "s", SETTINGS)


def test_cutset_loads_from_prepare_dir(prepared) -> None:
    manifests, cuts = prepared
    assert isinstance(cuts, CutSet) and len(cuts) == 14

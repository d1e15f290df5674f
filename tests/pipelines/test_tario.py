"""Tar writing: headers identical to tarfile's, a stream any tar reader accepts."""

import tarfile

import pytest

from academicodec.ids import key_safe
from academicodec.pipelines.tario import (
    HashingWriter,
    TarSampleWriter,
    iter_tar_samples,
    member_header,
)


@pytest.mark.parametrize(
    ("name", "size"),
    [("a.flac", 0), ("spk_0001-5a8a8a6f.flac", 23630), ("é.json", 7), ("x" * 120 + ".json", 5)],
)
def test_header_matches_tarfile(name: str, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    assert member_header(name, size) == info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def test_stream_round_trip(tmp_path) -> None:
    path = tmp_path / "t.tar"
    samples = {f"k{i}": {"flac": bytes([i]) * (100 * i + 1), "json": b"{}"} for i in range(5)}
    samples["y" * 150] = {"json": b'{"long": true}'}
    with open(path, "wb") as f:
        hashing = HashingWriter(f)
        with TarSampleWriter(hashing) as tar:
            for key, files in samples.items():
                tar.add(key, files)
    assert path.stat().st_size == hashing.size and hashing.size % tarfile.RECORDSIZE == 0
    with tarfile.open(path) as tar:
        assert tar.extractfile("k3.flac").read() == samples["k3"]["flac"]
    assert dict(iter_tar_samples(path)) == samples
    assert [k for k, _ in iter_tar_samples(path, skip=2, limit=2)] == ["k2", "k3"]


def test_sample_keys_are_dot_free_and_unique() -> None:
    ids = ["a/b", "a.b", "a_b", "x.y.z", "plain-id_1"]
    keys = [key_safe(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all("." not in k and "/" not in k for k in keys)
    assert key_safe("plain-id_1") == "plain-id_1"

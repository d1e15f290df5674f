"""academicodec.storage: local paths and URLs behind one API; whole-object writes to a bucket
(against a real S3-compatible server on 127.0.0.1), one-line errors."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import s3fs

from academicodec import storage
from academicodec.errors import UserError
from academicodec.outputs import claim_output
from academicodec.storage import Folder
from tests.s3server import BUCKET, local_s3


@pytest.fixture(scope="module")
def bucket() -> Iterator[s3fs.S3FileSystem]:
    with local_s3():
        yield s3fs.S3FileSystem()


def test_urls_and_paths_are_told_apart() -> None:
    assert storage.is_url("s3://b/x") and storage.is_url("gs://b/x")
    assert not storage.is_url(Path("s3://b/x")) and not storage.is_url("data/x")
    assert storage.looks_like_url(str(Path("s3://b/x")))  # what typer's Path makes of it
    assert storage.join("s3://b/x/", "index.json") == "s3://b/x/index.json"
    assert storage.basename("s3://b/x/shard-000000.tar") == "shard-000000.tar"
    assert Folder.of("file:///tmp/x").local == Path("/tmp/x")  # writes stay renames


def test_a_missing_protocol_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(url: str, **_: object) -> None:
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing)
    with pytest.raises(UserError, match=r"s3://b/x: s3:// needs s3fs \(pip install s3fs\)"):
        storage.exists("s3://b/x")
    monkeypatch.undo()
    with pytest.raises(UserError, match="nosuch://x"):
        storage.exists("nosuch://x")


def test_a_url_out_for_a_local_stage_makes_no_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for out in ("s3://b/decoded", Path("s3://b/decoded")):
        with pytest.raises(UserError, match="decode writes to a local folder"):
            claim_output(out, "decode")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_writes_are_whole_or_absent_and_checked(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "bucket":
        request.getfixturevalue("bucket")
        folder = Folder.of(f"s3://{BUCKET}/folder-test")
    else:
        folder = Folder.of(tmp_path / "out")
    with folder.writing("sub/a.bin") as temporary:
        temporary.write_bytes(b"abc")
        assert folder.size("sub/a.bin") is None  # nothing visible before the body ends
    assert folder.size("sub/a.bin") == 3 and folder.read_text("sub/a.bin") == "abc"
    with pytest.raises(RuntimeError), folder.writing("sub/b.bin") as temporary:
        temporary.write_bytes(b"partial")
        raise RuntimeError("killed mid-write")
    assert folder.size("sub/b.bin") is None and folder.files("sub") == ["sub/a.bin"]

    sha = folder.sha256("sub/a.bin")
    assert folder.problem(["sub/a.bin"], [sha], 3) is None
    assert folder.problem(["sub/a.bin", "sub/b.bin"], [sha, sha], 3) == "missing sub/b.bin"
    folder.write_bytes("sub/a.bin", b"xyz")  # same size, other bytes
    assert folder.problem(["sub/a.bin"], [sha], 3) == "sha256 mismatch"
    assert folder.problem(["sub/a.bin"], [sha], 3, hash_contents=False) is None
    folder.remove("sub/a.bin")
    assert folder.files("sub") == [] and folder.read_text("sub/a.bin") is None


def test_an_s3_check_reads_the_uploaded_digest_and_hashes_foreign_objects(
    bucket: s3fs.S3FileSystem,
) -> None:
    folder = Folder.of(f"s3://{BUCKET}/digests")
    folder.write_bytes("ours.bin", b"abc")
    key = f"{BUCKET}/digests/ours.bin"
    assert bucket.metadata(key)[storage.SHA256_METADATA] == folder.sha256("ours.bin")
    bucket.put_file(__file__, key, Metadata={storage.SHA256_METADATA: "f" * 64})
    assert folder.sha256("ours.bin") == "f" * 64  # one HEAD: the object is not read back
    bucket.pipe_file(key, b"xyz")  # another tool's write: no digest, so it is hashed
    assert folder.sha256("ours.bin") == hashlib.sha256(b"xyz").hexdigest()


def test_a_downloaded_copy_follows_the_object(bucket: s3fs.S3FileSystem) -> None:
    bucket.pipe_file(f"{BUCKET}/copy/model.bin", b"one")
    first = storage.local_copy(f"s3://{BUCKET}/copy/model.bin")
    assert first.read_bytes() == b"one"
    assert storage.local_copy(f"s3://{BUCKET}/copy/model.bin") == first  # cached
    bucket.pipe_file(f"{BUCKET}/copy/model.bin", b"two!")
    assert storage.local_copy(f"s3://{BUCKET}/copy/model.bin").read_bytes() == b"two!"
    with pytest.raises(UserError, match="does not exist"):
        storage.local_copy(f"s3://{BUCKET}/copy/nothing")

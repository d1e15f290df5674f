"""Where stages read and write: a local path, or an fsspec URL (``s3://bucket/prefix``).

Many machines share a bucket instead of a filesystem. Object stores have no rename, so an
output file is written to a local temporary file and sent with one upload (a PUT, which
S3 makes visible whole or not at all, multipart uploads included): a reader - or a resumed
run - sees a complete object or none, as ``files.atomic_path`` gives on a local disk.
Credentials and the endpoint come from where the protocol's package looks (for ``s3://``:
``AWS_*`` variables such as ``AWS_ENDPOINT_URL``, ``~/.aws``, or fsspec's
``FSSPEC_S3_*``); a protocol whose package is missing (``s3fs`` for ``s3://``) is one line
naming it. Local paths keep exactly the behaviour they had before URLs existed.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from academicodec.errors import UserError
from academicodec.files import atomic_path, atomic_write_bytes, sha256_file, sha256_stream

Location = str | Path
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# S3 user metadata with the sha256 of an object's bytes, set by the upload that wrote them.
SHA256_METADATA = "academicodec-sha256"
# The package each common protocol needs (fsspec names it too, less directly).
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}


def is_url(location: Location) -> bool:
    """A ``scheme://`` URL (a ``Path`` never is: it would have collapsed ``s3://`` to
    ``s3:/``). ``file://`` URLs are read through fsspec; as an OUT they are the local
    folder (``Folder.of``), so writes stay renames."""
    return isinstance(location, str) and bool(_SCHEME.match(location))


def looks_like_url(location: Location) -> bool:
    """A URL, or one that ``Path`` has already collapsed (``s3:/bucket``): a stage that
    writes only to local folders refuses both rather than make a folder named ``s3:``."""
    return is_url(location) or bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/", str(location)))


def filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)`` for ``url``."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        scheme = _SCHEME.match(url).group(1).lower()  # type: ignore[union-attr]
        package = _PACKAGES.get(scheme, exc.name or f"the {scheme} fsspec backend")
        raise UserError(f"{url}: {scheme}:// needs {package} (pip install {package})") from exc
    except ValueError as exc:
        raise UserError(f"{url}: {exc}") from exc
    return fs, path


def _is_s3(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "s3" in protocols


def _fresh(url: str) -> tuple[Any, str]:
    """Like ``filesystem``, with the listing cache dropped: another machine may have
    written there since this process last looked."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    return fs, path


def join(base: Location, *names: str) -> Location:
    if is_url(base):
        return "/".join([str(base).rstrip("/"), *(n.strip("/") for n in names)])
    return Path(base).expanduser().joinpath(*names)


def basename(location: Location) -> str:
    return str(location).rstrip("/").rsplit("/", 1)[-1] if is_url(location) else Path(location).name


def local(location: Location) -> Location:
    """A local path expanded and resolved; a URL as it is."""
    return location if is_url(location) else Path(location).expanduser().resolve()


def exists(location: Location) -> bool:
    if not is_url(location):
        return Path(location).expanduser().exists()
    fs, path = _fresh(str(location))
    return fs.exists(path)


def is_file(location: Location) -> bool:
    if not is_url(location):
        return Path(location).expanduser().is_file()
    fs, path = _fresh(str(location))
    return fs.isfile(path)


def is_dir(location: Location) -> bool:
    if not is_url(location):
        return Path(location).expanduser().is_dir()
    fs, path = _fresh(str(location))
    return fs.isdir(path)


def glob(folder: Location, pattern: str) -> list[Location]:
    """The files in ``folder`` matching ``pattern`` (one level), sorted."""
    return [join(folder, name) for name in Folder.of(folder).files(pattern=pattern)]


@contextmanager
def open_file(location: Location, block_size: int | None = None) -> Iterator[IO[Any]]:
    """A binary file object for reading ``location`` (seekable: tar and soundfile can use
    it). ``block_size``: the size of each ranged read of a remote file (the protocol's
    default - 50 MB for S3 - suits reading a whole shard in order)."""
    if not is_url(location):
        with open(Path(location).expanduser(), "rb") as f:
            yield f
        return
    fs, path = filesystem(str(location))
    options = {} if block_size is None else {"block_size": block_size}
    with fs.open(path, "rb", **options) as f:
        yield f


def read_bytes(location: Location, start: int = 0, size: int | None = None) -> bytes:
    """``size`` bytes from ``start`` (all of them by default): one ranged GET on a bucket."""
    if not is_url(location):
        with open(Path(location).expanduser(), "rb") as f:
            f.seek(start)
            return f.read() if size is None else f.read(size)
    fs, path = filesystem(str(location))
    end = None if size is None else start + size
    try:
        return fs.cat_file(path, start=start or None, end=end)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{location} does not exist") from exc


def read_text(location: Location) -> str:
    return read_bytes(location).decode("utf-8")


def write_bytes(location: Location, data: bytes) -> None:
    """``data`` as the file ``location``, atomically (``Folder.writing``)."""
    if not is_url(location):
        atomic_write_bytes(Path(location).expanduser(), data)
        return
    base, name = str(location).rsplit("/", 1)
    Folder.of(base).write_bytes(name, data)


@functools.cache
def _scratch_root() -> Path:
    """This process's local scratch (downloads, staged outputs), removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="academicodec-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def scratch_dir(name: str) -> Path:
    """A fresh local folder for this process's scratch work."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_scratch_root()))


def local_copy(location: Location) -> Path:
    """A local path with ``location``'s contents: the path itself, or (for a URL) a copy of
    the file or folder (a model, a manifest), downloaded again only when the stored
    objects changed (sizes and ETags)."""
    if not is_url(location):
        return Path(location).expanduser()
    url = str(location).rstrip("/")
    fs, path = _fresh(url)
    found = fs.find(path, detail=True)
    if not found:
        raise UserError(f"{url} does not exist")
    version = tuple(
        sorted(
            (name, info.get("size"), str(info.get("ETag", info.get("mtime"))))
            for name, info in found.items()
        )
    )
    return _download(url, version)


@functools.cache
def _download(url: str, version: tuple[Any, ...]) -> Path:
    fs, path = filesystem(url)
    target = scratch_dir("download") / basename(url)
    try:
        fs.get(path, str(target), recursive=fs.isdir(path))
    except Exception as exc:  # botocore and friends raise their own types
        raise UserError(f"could not download {url}: {exc}") from exc
    return target


@dataclass(frozen=True)
class Folder:
    """A stage's OUT: a local directory or a prefix in object storage, named relative.

    Picklable (a URL and a path), so writer processes can take it as an argument."""

    location: str
    local: Path | None  # None for a URL

    @classmethod
    def of(cls, location: Location) -> Folder:
        if is_url(location) and not str(location).startswith("file://"):
            return cls(str(location).rstrip("/"), None)
        location = str(location).removeprefix("file://")
        path = Path(location).expanduser().resolve()
        return cls(str(path), path)

    def __str__(self) -> str:
        return self.location

    def path(self, name: str) -> Location:
        """Where ``name`` lives: a local ``Path`` or a URL."""
        return self.local / name if self.local is not None else f"{self.location}/{name}"

    def _remote(self, name: str = "", fresh: bool = True) -> tuple[Any, str]:
        url = f"{self.location}/{name}" if name else self.location
        return _fresh(url) if fresh else filesystem(url)

    def is_file(self, name: str) -> bool:
        return is_file(self.path(name))

    def read_text(self, name: str) -> str | None:
        """The text of ``name``, or ``None`` where there is none (or it cannot be read)."""
        try:
            return read_text(self.path(name))
        except (OSError, UnicodeDecodeError):
            return None

    def size(self, name: str) -> int | None:
        if self.local is not None:
            path = self.local / name
            return path.stat().st_size if path.is_file() else None
        fs, path = self._remote(name)
        try:
            return int(fs.info(path)["size"])
        except FileNotFoundError:
            return None

    def sha256(self, name: str) -> str:
        """The file's sha256. An S3 object written by ``writing`` carries the digest of the
        bytes uploaded with it (user metadata, replaced by any later PUT), so a resume
        checks it with one HEAD instead of reading terabytes back; any other object is
        read and hashed."""
        if self.local is not None:
            return sha256_file(self.local / name)
        fs, path = self._remote(name)
        if _is_s3(fs):
            stored = fs.metadata(path, refresh=True).get(SHA256_METADATA)
            if stored:
                return stored
        with open_file(self.path(name)) as f:
            return sha256_stream(f)

    def problem(
        self, names: list[str], sha256: list[str], size: int, hash_contents: bool = True
    ) -> str | None:
        """``None`` when the files ``names`` are the ones recorded - all present, ``size``
        bytes together and, with ``hash_contents``, each with its sha256 - else what is
        wrong. ``hash_contents=False`` is the cheap check for files this run just wrote
        (their writer hashed them)."""
        sizes = [self.size(name) for name in names]
        missing = [name for name, found in zip(names, sizes, strict=True) if found is None]
        if missing:
            return f"missing {', '.join(missing)}"
        actual = sum(s for s in sizes if s is not None)
        if actual != size:
            return f"size {actual} != {size}"
        if hash_contents and [self.sha256(name) for name in names] != sha256:
            return "sha256 mismatch"
        return None

    @contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """A local temporary file to write; it becomes ``name`` when the body ends (a
        rename on disk, one upload to a bucket), never partly. A failed write is one line
        naming the file."""
        if self.local is not None:
            with atomic_path(self.local / name) as temporary:
                yield temporary
            return
        fd, temporary = tempfile.mkstemp(dir=_scratch_root(), suffix=f"-{basename(name)}")
        os.close(fd)
        try:
            yield Path(temporary)
            fs, path = self._remote(name, fresh=False)
            extra = {}
            if _is_s3(fs):
                extra["Metadata"] = {SHA256_METADATA: sha256_file(Path(temporary))}
            try:
                fs.put_file(temporary, path, **extra)
            except Exception as exc:  # botocore and friends raise their own types
                raise UserError(f"could not write {self.path(name)}: {exc}") from exc
        finally:
            Path(temporary).unlink(missing_ok=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        """``data`` as ``name``, atomically (see ``writing``)."""
        if self.local is not None:
            atomic_write_bytes(self.local / name, data)
            return
        with self.writing(name) as temporary:
            temporary.write_bytes(data)

    def files(self, under: str = "", pattern: str | None = None) -> list[str]:
        """Names (relative to the folder) of the files below ``under``, hidden ones
        included; with ``pattern``, only those directly in ``under`` that match it."""
        if self.local is not None:
            base = self.local / under if under else self.local
            found = base.glob(pattern) if pattern else base.rglob("*")
            return sorted(str(p.relative_to(self.local)) for p in found if p.is_file())
        fs, root = self._remote()
        base = f"{root}/{under}".rstrip("/")
        if pattern:
            found = [m for m in fs.glob(f"{base}/{pattern}") if fs.isfile(m)]
        else:
            found = fs.find(base) if fs.isdir(base) else []
        return sorted(m[len(root) + 1 :] for m in found)

    def remove(self, name: str) -> None:
        if self.local is not None:
            (self.local / name).unlink(missing_ok=True)
            return
        fs, path = self._remote(name, fresh=False)
        if fs.exists(path):
            fs.rm_file(path)
        fs.invalidate_cache(path)

    def remove_empty_dirs(self, under: str) -> None:
        """Folders below ``under`` (and ``under``) left empty (object stores have none)."""
        if self.local is None or not (self.local / under).is_dir():
            return
        base = self.local / under
        for path in sorted(base.rglob("*"), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        if not any(base.iterdir()):
            base.rmdir()

    @contextmanager
    def scratch(self, under: str) -> Iterator[Path]:
        """A temporary local folder for a writer's intermediate files, removed after: in
        ``OUT/under`` on disk (hidden, ``.tmp-*``; a killed writer's is cleaned by the job
        engine), in this process's scratch for a bucket."""
        if self.local is not None:
            (self.local / under).mkdir(parents=True, exist_ok=True)
            parent = self.local / under
        else:
            parent = _scratch_root()
        with tempfile.TemporaryDirectory(dir=parent, prefix=".tmp-") as tmp:
            yield Path(tmp)

    def workdir(self, name: str) -> Path:
        """A local folder for a stage's scratch work: ``OUT/name`` on disk (kept, so a
        re-run reuses it), a fresh local folder for a bucket."""
        if self.local is not None:
            return self.local / name
        return scratch_dir(name.strip("."))

    def upload_tree(self, source: Path) -> None:
        """Every file below the local folder ``source``, each written as in ``writing``."""
        for path in sorted(source.rglob("*")):
            if path.is_file():
                with self.writing(str(path.relative_to(source))) as temporary:
                    shutil.copyfile(path, temporary)

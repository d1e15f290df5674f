"""Any tree of wav/flac/mp3/ogg files, at any rates, with optional transcripts.

A transcript is a sibling ``<stem>.txt``/``<stem>.lab`` or a row of an LJSpeech-style
``metadata.csv`` (``id|text|normalized text``) in the audio's folder or any folder above it.
Ids are the corpus name (``--name``, default: the folder's name) and the audio's path
relative to the source, without its extension (with it, when two files differ only by
extension), made key-safe (``wavs/spk0/clip.01.wav`` -> ``wavs-spk0-clip_01``;
``academicodec.ids``; letters of every script are kept), so they are stable across runs and
machines, survive every format, and two folders of the same layout never share an id;
paths that would share an id get a hash of their path appended. The manifests carry the
name as their corpus (``NAME_cuts_all.jsonl.gz``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from academicodec.audio import AUDIO_EXTENSIONS
from academicodec.errors import UserError
from academicodec.ids import disambiguated, is_key_safe, path_id, safe_id
from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.walk import read_text, walk_files

TEXT_EXTENSIONS = (".lab", ".txt")
METADATA = "metadata.csv"
_HEADER_FIELDS = {"id", "file", "file_name", "filename", "path", "audio"}


def scan_folder(src: Path, language: str | None = None, name: str | None = None) -> ScanResult:
    if not src.is_dir():
        raise UserError(f"{src} is not a directory")
    if name is not None and not is_key_safe(name):
        raise UserError(
            f"--name {name!r}: use letters, digits, '_' or '-' (it starts every id), "
            f"e.g. {safe_id(name)!r}"
        )
    name = name or safe_id(src.name)
    result = ScanResult(name=name)
    audio: list[Path] = []
    texts: dict[Path, Path] = {}  # path without extension -> transcript file
    metadata: dict[Path, dict[str, str]] = {}  # folder -> {stem: text}
    for path in walk_files(src, result.skipped, "all"):
        suffix = path.suffix.lower()
        if suffix in AUDIO_EXTENSIONS:
            audio.append(path)
        elif suffix in TEXT_EXTENSIONS:
            texts.setdefault(path.with_suffix(""), path)
        elif path.name == METADATA:
            metadata[path.parent] = _read_metadata(path)
        else:
            result.ignored["non_audio"] += 1
    if not audio:
        others = result.ignored["non_audio"] + len(texts) + len(metadata)
        raise UserError(
            f"{src} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
            + (f"; {others} other file(s) found" if others else "")
        )

    stems: dict[Path, int] = defaultdict(int)
    for path in audio:
        stems[path.with_suffix("")] += 1
    named = [(p.relative_to(src), p.with_suffix("")) for p in audio]
    ids = disambiguated(
        (
            relative.as_posix(),
            path_id((name, *(relative if stems[stem] > 1 else relative.with_suffix("")).parts)),
        )
        for relative, stem in named
    )
    used_metadata: set[tuple[Path, str]] = set()
    for path in audio:
        stem_path = path.with_suffix("")
        utt_id = ids[path.relative_to(src).as_posix()]
        text = read_text(texts[stem_path]) if stem_path in texts else None
        if text is None:
            text = _metadata_text(path, src, metadata, used_metadata)
        result.entries.append(
            Entry(split="all", id=utt_id, audio=path, text=text, language=language)
        )

    # A .txt beside audio that pairs with no clip is a transcript whose audio is missing -
    # unless it is the folder's notes (README.txt, LICENSE.txt), which are just not audio.
    audio_dirs = {p.parent for p in audio}
    for stem_path, text_path in sorted(texts.items()):
        if stem_path in stems:
            continue
        if text_path.parent in audio_dirs and not _is_notes(text_path):
            result.skipped.append(Fault(str(text_path), "transcript without audio", "all"))
        else:
            result.ignored["non_audio"] += 1
    for folder, rows in sorted(metadata.items()):
        for stem in sorted(rows):
            if (folder, stem) not in used_metadata:
                result.skipped.append(
                    Fault(f"{folder / METADATA}:{stem}", "transcript without audio", "all")
                )
    return result


def _is_notes(path: Path) -> bool:
    return path.stem.upper().startswith(("README", "LICENSE", "NOTES", "CHANGELOG"))


def _metadata_text(
    path: Path, src: Path, metadata: dict[Path, dict[str, str]], used: set[tuple[Path, str]]
) -> str | None:
    """The closest ``metadata.csv`` at or above the audio's folder that names its stem."""
    folder = path.parent
    while True:
        rows = metadata.get(folder)
        if rows is not None and path.stem in rows:
            used.add((folder, path.stem))
            return rows[path.stem] or None
        if folder == src or folder == folder.parent:
            return None
        folder = folder.parent


def _read_metadata(path: Path) -> dict[str, str]:
    rows: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        fields = line.split("|")
        if not fields[0].strip() or (number == 0 and fields[0].strip().lower() in _HEADER_FIELDS):
            continue
        name = fields[0].strip()
        stem = name[: -len(Path(name).suffix)] if Path(name).suffix in AUDIO_EXTENSIONS else name
        text = fields[2] if len(fields) > 2 and fields[2].strip() else ""
        if not text and len(fields) > 1:
            text = fields[1]
        rows[stem] = text.strip()
    return rows

"""Typed results that travel between stages as JSON files (``index.json``, reports,
``summary.json``): one base for writing them, reading them back and refusing a
``format_version`` this version cannot read.

Stages hand each other these objects, never nested dicts dug into with ``.get(..., nan)``;
a field renamed in one place then fails in the type checker and the tests, not in a user's
run months later. Each subclass names its ``KIND`` (for messages), the versions it reads,
and converts itself to and from plain JSON data (the file layout is the documented one).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

from academicodec import __version__
from academicodec.errors import UserError
from academicodec.storage import Location, read_text, write_bytes


class Result:
    KIND: ClassVar[str]
    FORMAT_VERSION: ClassVar[int]  # the version written
    READS: ClassVar[tuple[int, ...]]  # the versions read

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def to_json(self) -> str:
        data = {"format_version": self.FORMAT_VERSION, **self.to_dict()}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> Self:
        """Parse ``text``; a version this code does not read, or a malformed file, is one
        line naming ``source``."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{source} is not a valid {cls.KIND}: {exc}") from exc
        if not isinstance(data, dict):
            raise UserError(f"{source} is not a valid {cls.KIND}: not a JSON object")
        version = data.get("format_version", 1)
        if version not in cls.READS:
            raise UserError(
                f"{source}: {cls.KIND} format_version {version!r}, but academicodec "
                f"{__version__} reads {', '.join(map(str, cls.READS))}: use the version that "
                "wrote it, or upgrade"
            )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{source} is not a valid {cls.KIND}: missing or bad {exc}") from exc

    def write(self, path: Location) -> Location:
        """Write atomically to ``path`` (a local path or a URL)."""
        write_bytes(path, self.to_json().encode("utf-8"))
        return path

    @classmethod
    def read(cls, path: Location) -> Self:
        try:
            text = read_text(path)
        except FileNotFoundError as exc:
            raise UserError(f"{path} not found: no {cls.KIND} there") from exc
        except OSError as exc:
            raise UserError(f"could not read {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text, str(path))

"""Opening inputs: plain or gzip files, or standard input, with a byte counter for progress."""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from schemas.decode import DeadLetter, too_large


class InputError(Exception):
    """The input cannot be read at all (missing file, permission, not gzip)."""


class OutputError(Exception):
    """An output cannot be written (a directory that cannot be made, no permission)."""


GZIP_MAGIC = b"\x1f\x8b"


class CountingReader(io.RawIOBase):
    """Counts bytes read from the underlying (compressed) file, for an honest progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


def open_input(name: str) -> tuple[BinaryIO, CountingReader | None, int | None]:
    """(line-readable binary stream, byte counter or None, total bytes or None) for a path or '-'."""
    if name == "-":
        return sys.stdin.buffer, None, None
    path = Path(name)
    try:
        raw = path.open("rb", buffering=0)  # partial reads: a pipe gives lines as they come
    except OSError as error:
        raise InputError(f"{name}: cannot open: {error.strerror}") from error
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    total = path.stat().st_size
    if name.endswith(".gz"):
        head = buffered.peek(2)[:2]
        if head != GZIP_MAGIC:
            buffered.close()
            raise InputError(
                f"{name}: not a gzip file (it starts with {head!r}, not the gzip magic "
                "bytes 1f 8b); rename it without .gz if it is plain text"
            )
        return gzip.GzipFile(fileobj=buffered), counter, total  # type: ignore[return-value]
    return buffered, counter, total


def numbered_lines(
    stream: BinaryIO, source: str, max_bytes: int
) -> Iterator[tuple[int, bytes] | DeadLetter]:
    """(1-based line number, line without newline), skipping blank lines; a line longer
    than ``max_bytes`` is a ``too_large`` dead letter instead, read through without ever
    holding more than a bounded piece of it."""
    readline = _checked(stream.readline, source)
    number = 0
    while line := readline(max_bytes + 1):
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            size = len(line)
            while rest := readline(_SKIP_CHUNK):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
            yield too_large(line, size, max_bytes, source=source, position=number)
            continue
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield number, stripped


def _checked(readline: Callable[[int], bytes], source: str) -> Callable[[int], bytes]:
    """``readline`` that turns a read failure (a gzip file cut short or corrupt, a disk
    error) into an ``InputError`` naming the input."""

    def read(size: int) -> bytes:
        try:
            return readline(size)
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"{source}: cannot read further: {error}") from error

    return read


#: A too-long line is read through in pieces of this size.
_SKIP_CHUNK = 1 << 20

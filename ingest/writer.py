"""A tar writer that publishes atomically and gives the same bytes for the same samples."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from convrnn_video.shards.format import TAR_MODE, TAR_MTIME


class _HashingFile:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.f.write(data)


class ShardWriter:
    """Write samples into `path` via `path.partial`; renamed to `path` only on a clean exit.

    Members get a fixed mtime, owner and mode, and are written in the order given, so the
    same samples always give the same bytes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.videos = 0
        self.sha256 = ""
        self.bytes = 0

    def __enter__(self) -> ShardWriter:
        self._file = open(self.partial, "wb")  # noqa: SIM115 - closed in __exit__
        self._hashing = _HashingFile(self._file)
        return self

    def write(self, key: str, members: list[tuple[str, bytes]]) -> None:
        """Append one sample: `key.suffix` for each (suffix, bytes), adjacent and in order."""
        for suffix, data in members:
            info = tarfile.TarInfo(f"{key}.{suffix}")
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = TAR_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            # what tarfile.addfile writes, without its 16 KB copy loop: header, data, padding
            out = self._hashing
            out.write(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
            out.write(data)
            out.write(bytes(-len(data) % tarfile.BLOCKSIZE))
        self.videos += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                out = self._hashing
                out.write(bytes(2 * tarfile.BLOCKSIZE))  # end of archive, as tarfile writes it
                out.write(bytes(-out.bytes % tarfile.RECORDSIZE))
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if exc_type is not None:
            self.partial.unlink(missing_ok=True)
            return
        self.sha256 = self._hashing.sha256.hexdigest()
        self.bytes = self._hashing.bytes
        os.replace(self.partial, self.path)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()

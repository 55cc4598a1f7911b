"""A writer for the Linux initramfs archive format (cpio "newc"), reproducible and
root-free: device nodes are written as entries, never created on the host.

Format (the kernel's Documentation/driver-api/early-userspace/buffer-format.rst): each
entry is the 6-byte magic "070701", thirteen 8-digit hex fields (ino, mode, uid, gid,
nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check), the
NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes; the archive ends
with an entry named "TRAILER!!!". Concatenated archives (e.g. a gzip'ed base and an
appended one) are unpacked in order; zero bytes between them are skipped.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member: `mode` carries the file type bits (stat.S_IFREG etc.)."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str, perm: int = 0o755) -> Entry:
    """A directory entry."""
    return Entry(name, stat.S_IFDIR | perm)


def file(name: str, data: bytes, perm: int = 0o644) -> Entry:
    """A regular file."""
    return Entry(name, stat.S_IFREG | perm, data)


def chardev(name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    """A character device node (e.g. /dev/console 5:1)."""
    return Entry(name, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def newc(entries: list[Entry]) -> bytes:
    """The uncompressed archive of `entries` in order, ending with the trailer; uid/gid 0,
    mtime 0, so the same entries give the same bytes."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry(TRAILER, 0)], start=1):
        name = entry.name.lstrip("/").encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        fields = (ino if entry.name != TRAILER else 0, entry.mode, 0, 0,
                  nlink if entry.name != TRAILER else 1, 0, len(entry.data), 0, 0,
                  entry.rdev[0], entry.rdev[1], len(name), 0)
        header = MAGIC + b"".join(f"{v:08x}".encode() for v in fields)
        out += header + name
        out += _pad4(len(header) + len(name))
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


def gz(data: bytes) -> bytes:
    """gzip with mtime 0 (reproducible), padded with zeros to a multiple of 4 so another
    archive can be appended (the kernel expects each cpio header 4-byte aligned)."""
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    return packed + _pad4(len(packed))

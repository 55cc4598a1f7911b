"""The initramfs writer: newc layout as the kernel reads it (buffer-format.rst), and
archives that still parse when appended after a gzip'ed one."""

from __future__ import annotations

import gzip
import io
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from memlat.vm import cpio


def _parse(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A reader written from buffer-format.rst, independent of the writer."""
    out, off = [], 0
    while True:
        assert data[off:off + 6] == b"070701", f"magic at byte {off}"
        fields = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = (fields[1], fields[6], fields[9], fields[10],
                                            fields[11])
        name = data[off + 110: off + 110 + namesize - 1].decode()
        assert data[off + 110 + namesize - 1] == 0
        off += 110 + namesize
        off += -off % 4
        body = data[off: off + size]
        off += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body, (rmaj, rmin)))


def test_newc_entries_are_aligned_and_typed() -> None:
    data = cpio.newc([cpio.directory("dev"), cpio.chardev("dev/console", 5, 1),
                      cpio.file("init", b"#!/bin/sh\n", 0o755)])
    assert len(data) % 4 == 0
    entries = _parse(data)
    assert [e[0] for e in entries] == ["dev", "dev/console", "init"]
    assert stat.S_ISDIR(entries[0][1])
    assert stat.S_ISCHR(entries[1][1]) and entries[1][3] == (5, 1)
    assert stat.S_IMODE(entries[2][1]) == 0o755 and entries[2][2] == b"#!/bin/sh\n"
    # reproducible: same entries, same bytes
    assert data == cpio.newc([cpio.directory("dev"), cpio.chardev("dev/console", 5, 1),
                              cpio.file("init", b"#!/bin/sh\n", 0o755)])


def test_gz_is_padded_so_an_appended_archive_starts_aligned() -> None:
    first = cpio.gz(cpio.newc([cpio.file("a", b"x" * 5)]))
    assert len(first) % 4 == 0
    second = cpio.gz(cpio.newc([cpio.file("probe/0001.bin", b"\x00\x40\x00\x00")]))
    d = gzip.GzipFile(fileobj=io.BytesIO(first + second))
    # gzip readers concatenate members and skip the zero padding between them
    assert b"probe/0001.bin" in d.read()


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_extracts_what_we_write(tmp_path: Path) -> None:
    data = cpio.newc([cpio.directory("bin"), cpio.file("bin/tool", b"\x7fELF", 0o755)])
    subprocess.run(["cpio", "-i", "-d", "--quiet"], input=data, cwd=tmp_path, check=True)
    assert (tmp_path / "bin" / "tool").read_bytes() == b"\x7fELF"
    assert (tmp_path / "bin" / "tool").stat().st_mode & 0o777 == 0o755

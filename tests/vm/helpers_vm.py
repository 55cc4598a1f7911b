"""Shared by the VM tests: the golden capture from QEMU and a driver-side ring writer.

tests/vm/golden/qemu-vhost-user-scmi.jsonl was recorded by `memlat vm run --capture`
with QEMU 10.0.2 (Debian bookworm-backports) and the guest kernel 6.12.95: every
vhost-user message QEMU sent (request, flags, payload hex, number of fds), then the
first cmdq chains the guest's virtio-scmi driver posted (descriptor table entries as
raw bytes, the request and the reply the back-end wrote) and one QCOM chain.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden" / "qemu-vhost-user-scmi.jsonl"


def golden() -> list[dict[str, Any]]:
    """The capture, one dict per line."""
    return [json.loads(line) for line in GOLDEN.read_text().splitlines() if line]


def frames() -> list[dict[str, Any]]:
    """The vhost-user messages of the capture."""
    return [r for r in golden() if "request" in r and "chain" not in r]


def chains() -> list[dict[str, Any]]:
    """The cmdq chains of the capture."""
    return [r for r in golden() if "chain" in r]


def place_chain(view: Any, gpa_base: int, record: dict[str, Any], avail_idx: int) -> None:
    """Write one captured chain into guest memory the way the driver did: its descriptor
    table entries, the request in the readable buffer, zeros in the writable one, the
    head in the available ring at slot `avail_idx - 1` and the available index.

    view: a writable buffer holding guest memory from guest-physical `gpa_base`.
    """
    num = record["num"]
    for d in record["descriptors"]:
        raw = bytes.fromhex(d["raw"])
        off = record["desc_table"] + 16 * d["index"] - gpa_base
        view[off:off + 16] = raw
        addr, length, flags, _next = struct.unpack("<QIHH", raw)
        data = bytes.fromhex(record["request"]) if not flags & 2 else bytes(length)
        view[addr - gpa_base:addr - gpa_base + length] = data[:length].ljust(length, b"\0")
    head = record["descriptors"][0]["index"]
    avail = record["avail"] - gpa_base
    slot = (avail_idx - 1) % num
    view[avail + 4 + 2 * slot:avail + 6 + 2 * slot] = struct.pack("<H", head)
    view[avail + 2:avail + 4] = struct.pack("<H", avail_idx & 0xFFFF)

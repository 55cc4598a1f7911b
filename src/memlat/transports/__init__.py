"""Transports to the real world: processes, sockets, Linux raw mode, FUSE front-ends.

Agent side (each a `memlat.scmi.transport.Transport`): `ShmTransport` (SMT area in a
shared file, protocol.md §1.5), `UnixTransport` (framed messages on a Unix socket),
`RawTransport` (Linux raw-mode debugfs, protocol.md §1.8). Platform side front-ends:
`ShmFrontEnd`, `UnixFrontEnd`, `RawFuse` and `MailboxFuse` (FUSE trees). `open_transport`
turns the URIs of decisions.md §5 into transports; `serve` runs front-ends until a signal.
"""

from __future__ import annotations

from memlat.transports.uri import open_transport

__all__ = ["open_transport"]

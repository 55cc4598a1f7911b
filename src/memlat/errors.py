"""Exception types shared by every layer of memlat."""

from __future__ import annotations


class MemlatError(Exception):
    """Base class of every error memlat raises on purpose."""


class DecodeError(MemlatError, ValueError):
    """Bytes that do not decode; names the byte offset and the field."""

    def __init__(self, message: str, *, offset: int | None = None, field: str | None = None):
        self.offset = offset
        self.field = field
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class ConfigError(MemlatError, ValueError):
    """A configuration (profile, device tree, workload, trace) that is not valid.

    `source` names the file and `location` the field, node path or property.
    """

    def __init__(self, message: str, *, source: str | None = None, location: str | None = None):
        self.source = source
        self.location = location
        prefix = ":".join(p for p in (source, location) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TransportError(MemlatError):
    """A transport could not move bytes (closed peer, bad frame, missing file)."""


class ScmiTimeout(TransportError):
    """No reply arrived within the agent's timeout."""

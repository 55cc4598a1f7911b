"""The one interface every agent-side transport implements: move whole messages.

A transport knows nothing of tokens, protocols or statuses; the agent core does. A
message is the 4-byte header plus its payload, exactly as on the wire. Transports:
inproc (this package), and memlat.transports (unix socket, shared memory across
processes, Linux raw mode).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from memlat.scmi.smt import MAX_PAYLOAD_LINUX


class Transport(ABC):
    """Sends commands to a platform and hands back what it replies."""

    #: URI-style name for logs, e.g. "inproc" or "unix:/run/memlat.sock"
    name: str = "transport"
    #: largest payload (bytes after the header) this transport carries
    max_msg_size: int = MAX_PAYLOAD_LINUX

    @abstractmethod
    def send(self, message: bytes) -> None:
        """Send one whole command message (header + payload)."""

    @abstractmethod
    def receive(self, timeout_s: float) -> bytes | None:
        """The next reply message (header + status + values), or None after `timeout_s`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport's resources."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

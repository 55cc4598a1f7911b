"""SCMI messages over a Unix stream socket, one length-prefixed frame per message.

Frame: u32 little-endian length of the SCMI message, then the message itself (4-byte
header + payload, protocol.md §1.1). A stream socket with a length prefix works on every
Unix (SOCK_SEQPACKET is Linux-only for AF_UNIX) and makes a corrupted length detectable:
a length below 4 or above `MAX_FRAME` ends the connection with a `TransportError` naming
the value. The socket file is created with owner-only permissions (umask 0177 → 0600).
The platform side serves any number of clients from one thread; all of them are agent 1
(the OS), as several processes behind one Linux SCMI agent would be.
"""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import struct
import time

from memlat.errors import TransportError
from memlat.scmi.smt import MAX_PAYLOAD_LINUX
from memlat.scmi.transport import Transport

log = logging.getLogger(__name__)

#: the u32 little-endian length that opens every frame
FRAME_LENGTH = _LEN = struct.Struct("<I")
#: largest SCMI message a frame may carry (header + status + values of a 0x200 SMT area)
MAX_FRAME = 0x200


def encode_frame(message: bytes) -> bytes:
    """Length prefix plus message."""
    return _LEN.pack(len(message)) + message


def _send_all(sock: socket.socket, data: bytes) -> None:
    """sendall without SIGPIPE: a vanished peer is an error, never a dead process."""
    sent = sock.send(data, socket.MSG_NOSIGNAL)
    if sent == len(data):  # the usual case: a frame is far below the socket buffer
        return
    view = memoryview(data)[sent:]
    while view:
        sent = sock.send(view, socket.MSG_NOSIGNAL)
        view = view[sent:]


class FrameBuffer:
    """Accumulates stream bytes and yields whole frames; a bad length raises."""

    def __init__(self, where: str):
        self.where = where
        #: bytes received and not yet returned as frames
        self.data = bytearray()

    @property
    def pending(self) -> int:
        """Bytes buffered and not yet returned as frames."""
        return len(self.data)

    def feed(self, data: bytes) -> None:
        """Append bytes read from the socket."""
        self.data += data

    def next_frame(self) -> bytes | None:
        """The next complete message, or None if more bytes are needed."""
        if len(self.data) < 4:
            return None
        (length,) = _LEN.unpack_from(self.data)
        if not 4 <= length <= MAX_FRAME:
            raise TransportError(
                f"{self.where}: corrupted frame length {length} (byte offset 0 of the frame; "
                f"a message is 4..{MAX_FRAME} bytes)"
            )
        if len(self.data) < 4 + length:
            return None
        frame = bytes(self.data[4 : 4 + length])
        del self.data[: 4 + length]
        return frame


class UnixTransport(Transport):
    """Agent side: connects to a `UnixFrontEnd` (or any peer speaking the same frames)."""

    def __init__(self, path: str | os.PathLike[str], *, connect_timeout_s: float = 2.0):
        self.path = os.fspath(path)
        self.name = f"unix:{self.path}"
        self.max_msg_size = MAX_PAYLOAD_LINUX
        #: agent timeout hint: the peer is a Python process on a possibly busy machine,
        #: so allow more than Linux's 30 ms (memlat probe uses this)
        self.suggested_timeout_s = 0.25
        self._sock = self._connect(connect_timeout_s)
        self._rcvtimeo_ms = 0  # SO_RCVTIMEO now set on the socket (0: none)
        self._frames = FrameBuffer(self.name)
        self._poller = select.poll()
        self._poller.register(self._sock.fileno(), select.POLLIN)
        self._closed = False

    def _connect(self, timeout_s: float) -> socket.socket:
        """Connect, waiting up to `timeout_s` while the server's backlog is full.

        A non-blocking AF_UNIX connect() to a listener whose backlog is full fails at once
        with EAGAIN (Linux unix_stream_connect); that is a busy server, not a missing
        one, so it is retried with a growing pause (1 ms .. 50 ms) until the deadline.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        pause = 0.001
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                sock.connect(self.path)
            except (BlockingIOError, InterruptedError) as exc:
                sock.close()
                if time.monotonic() + pause > deadline:
                    raise TransportError(
                        f"unix:{self.path}: server busy, its connection backlog stayed full "
                        f"for the {timeout_s:g} s connect timeout ({exc.strerror or exc})"
                    ) from exc
                time.sleep(pause)
                pause = min(0.050, pause * 2)
                continue
            except OSError as exc:
                sock.close()
                raise TransportError(
                    f"unix:{self.path}: cannot connect ({exc.strerror or exc}); is `memlat "
                    f"platform serve --unix {self.path}` running?"
                ) from exc
            sock.settimeout(None)
            return sock

    def send(self, message: bytes) -> None:
        """Send one framed message."""
        if self._closed:
            raise TransportError(f"{self.name}: transport is closed")
        frame = _LEN.pack(len(message)) + message
        try:
            if self._sock.send(frame, socket.MSG_NOSIGNAL) != len(frame):
                _send_all(self._sock, frame)  # not reached with frames this small
        except OSError as exc:
            raise TransportError(f"{self.name}: platform is gone ({exc.strerror or exc})") from exc

    def _recv_timeout(self, ms: int) -> None:
        """SO_RCVTIMEO = ms (only when it changes: one syscall per new value)."""
        if ms != self._rcvtimeo_ms:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                  struct.pack("ll", ms // 1000, ms % 1000 * 1000))
            self._rcvtimeo_ms = ms

    def receive(self, timeout_s: float) -> bytes | None:
        """The next framed reply, or None after `timeout_s`.

        The socket stays blocking and the wait is the kernel's SO_RCVTIMEO, so a reply
        costs one recv() (a poll() before it was a second syscall per round trip); the
        option is set again only when the timeout changes (the agent's is fixed)."""
        start = time.monotonic()
        if not self._frames.pending and timeout_s > 0:  # the usual case: one whole reply
            ms = math.ceil(timeout_s * 1000)
            if ms != self._rcvtimeo_ms:
                self._recv_timeout(ms)
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, TimeoutError, InterruptedError):
                data = None  # SO_RCVTIMEO expired (EAGAIN)
            except OSError as exc:
                raise TransportError(f"{self.name}: receive failed ({exc})") from exc
            if data is not None:
                n = len(data)
                if n >= 8 and _LEN.unpack_from(data)[0] == n - 4 <= MAX_FRAME:
                    return data[4:]  # exactly one whole frame: skip the buffer
                self._take(data)
        return self._receive_buffered(start + max(0.0, timeout_s))

    def _take(self, data: bytes) -> None:
        if not data:
            raise TransportError(
                f"{self.name}: platform closed the connection (process exited or was "
                "killed)"
            )
        self._frames.feed(data)

    def _receive_buffered(self, deadline: float) -> bytes | None:
        """`receive` through the frame buffer, until `deadline` (time.monotonic)."""
        while True:
            frame = self._frames.next_frame()
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._recv_timeout(max(1, math.ceil(remaining * 1000)))
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, TimeoutError, InterruptedError):
                continue  # SO_RCVTIMEO expired (EAGAIN): the loop checks the deadline
            except OSError as exc:
                raise TransportError(f"{self.name}: receive failed ({exc})") from exc
            self._take(data)

    def close(self) -> None:
        """Close the connection."""
        if not self._closed:
            self._closed = True
            self._sock.close()

"""Run an emulated platform behind one or more front-ends until SIGINT/SIGTERM.

`serve(platform, unix=..., shm=..., raw_fuse=..., mailbox_fuse=..., vhost_user=...)` is what
`memlat platform serve` (decisions.md §5) calls. Every message is logged at INFO in the
kernel's scmi_msg_dump style (see memlat.scmi.msgdump). Shutdown is clean: FUSE trees
are unmounted, the socket and channel files removed, even when a front-end fails to start.

`memlat platform serve --factory MODULE:FUNC` runs the same loop with any platform
factory (the transport tests serve their echo protocol that way).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from memlat.frontends.base import FrontEnd, as_gate
from memlat.frontends.fuse_mailbox import MailboxFuse
from memlat.frontends.fuse_raw import RawFuse
from memlat.frontends.shm import ShmFrontEnd
from memlat.frontends.unix import UnixFrontEnd
from memlat.frontends.vhost_user import VhostUserFrontEnd
from memlat.scmi.message import Message
from memlat.scmi.msgdump import exchange_lines
from memlat.scmi.platform import Platform
from memlat.transports.shm import DEFAULT_DOORBELL

log = logging.getLogger("memlat.platform")


def _log_exchange(agent_id: int, command: Message, reply: Message | None) -> None:
    if log.isEnabledFor(logging.INFO):
        for line in exchange_lines(command, reply):
            log.info("%s", line)


def build_frontends(platform: Platform, *, unix: str | None = None, shm: str | None = None,
                    raw_fuse: str | None = None, mailbox_fuse: str | None = None,
                    doorbell: str = DEFAULT_DOORBELL,
                    mailbox_read: str = "hexdump",
                    vhost_user: str | None = None,
                    vhost_user_capture: str | None = None) -> list[FrontEnd]:
    """Create (not start) the requested front-ends around one shared platform gate."""
    gate = as_gate(platform)
    frontends: list[FrontEnd] = []
    if unix:
        frontends.append(UnixFrontEnd(gate, unix))
    if shm:
        frontends.append(ShmFrontEnd(gate, shm, doorbell=doorbell))
    if raw_fuse:
        frontends.append(RawFuse(gate, raw_fuse))
    if mailbox_fuse:
        frontends.append(MailboxFuse(gate, mailbox_fuse, read_mode=mailbox_read))
    if vhost_user:
        frontends.append(VhostUserFrontEnd(gate, vhost_user, capture=vhost_user_capture))
    return frontends


def serve(platform: Platform, *, unix: str | None = None, shm: str | None = None,
          raw_fuse: str | None = None, mailbox_fuse: str | None = None,
          doorbell: str = DEFAULT_DOORBELL, mailbox_read: str = "hexdump",
          stop: threading.Event | None = None,
          on_ready: Callable[[list[FrontEnd]], None] | None = None,
          log_messages: bool = True, vhost_user: str | None = None,
          vhost_user_capture: str | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or `stop` is set); returns messages handled (with
    log_messages False: as counted by the unix and shm front-ends).

    Signal handlers are installed before any FUSE mount, so libfuse (which only claims
    signals still at their default) leaves SIGTERM to us. SIGTERM is a clean stop; after
    a SIGINT (Ctrl-C) the same clean shutdown runs, then KeyboardInterrupt is raised as
    Python does by default, so `memlat platform serve` exits 130 like every command.
    """
    if not any((unix, shm, raw_fuse, mailbox_fuse, vhost_user)):
        raise ValueError("nothing to serve: give --unix, --shm, --raw-fuse, --mailbox-fuse "
                         "or --vhost-user")
    stop = stop or threading.Event()
    counted = [0]

    def observe(agent_id: int, command: Message, reply: Message | None) -> None:
        counted[0] += 1
        _log_exchange(agent_id, command, reply)

    if log_messages:  # --quiet: no per-message Python call at all (front-ends count)
        platform.observers.append(observe)
    previous: dict[signal.Signals, Any] = {}
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    started: list[FrontEnd] = []
    try:
        frontends = build_frontends(platform, unix=unix, shm=shm, raw_fuse=raw_fuse,
                                    mailbox_fuse=mailbox_fuse, doorbell=doorbell,
                                    mailbox_read=mailbox_read,
                                    vhost_user=vhost_user,
                                    vhost_user_capture=vhost_user_capture)
        try:
            for frontend in frontends:
                frontend.start()
                started.append(frontend)
                log.info("serving %s", frontend.name)
        finally:
            for frontend in frontends:  # created but never started: remove their files
                if frontend not in started:
                    frontend.stop()
        if on_ready is not None:
            on_ready(started)
        while not stop.wait(0.2):
            for frontend in started:
                if not frontend.running:
                    log.error("%s stopped unexpectedly; shutting down", frontend.name)
                    stop.set()
    finally:
        for frontend in reversed(started):
            frontend.stop()
        if log_messages:
            platform.observers.remove(observe)
        else:
            counted[0] = sum(getattr(f, "messages", 0) for f in started)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped after %d messages", counted[0])
    if signal.SIGINT in received:
        raise KeyboardInterrupt
    return counted[0]

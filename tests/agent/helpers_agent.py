"""Shared test helpers for the agent tests: a refusing wrapper around protocol 0x80."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from memlat.qcom.ids import QcomMessage
from memlat.scmi.platform import CallContext, Command, ProtocolHandler, Reply
from memlat.scmi.status import Status


class Refuser(ProtocolHandler):
    """Wraps a protocol handler; the QCOM commands for which `refuse(n, message_id,
    payload)` is true (n = 1-based count of QCOM commands seen) get `status` and never
    reach the wrapped handler, so they change no state."""

    def __init__(self, inner: ProtocolHandler,
                 refuse: Callable[[int, int, bytes], bool],
                 status: Status = Status.GENERIC_ERROR):
        self.inner = inner
        self.protocol_id = inner.protocol_id
        self.version = inner.version
        self.refuse = refuse
        self.status = status
        self.count = 0

    def commands(self) -> Mapping[int, Command]:
        out = {}
        for mid, cmd in self.inner.commands().items():
            out[mid] = Command(self._wrap(mid, cmd.handler), cmd.sizes, cmd.attributes)
        return out

    def attributes(self, ctx: CallContext) -> int:
        return self.inner.attributes(ctx)

    def _wrap(self, mid: int, handler: Callable[[CallContext, bytes], Reply]
              ) -> Callable[[CallContext, bytes], Reply]:
        def call(ctx: CallContext, payload: bytes) -> Reply:
            if mid in tuple(QcomMessage):
                self.count += 1
                if self.refuse(self.count, mid, payload):
                    return Reply.error(self.status)
            return handler(ctx, payload)

        return call

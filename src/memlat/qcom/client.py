"""Agent-side QCOM generic extension ops, like Linux `qcom_scmi_common_xfer` (v8).

protocol.md §2.2 "Linux agent-side rules": the request is the 16-byte header plus the
param body; GET asks for rx_size bytes, which must not exceed the body (refused before
anything is sent, -EINVAL); a GET reply shorter than rx_size or longer than the body is
a protocol error (-EPROTO); on success exactly rx_size bytes come back. The algorithm
string must be on the client's allow-list (-EINVAL).

Decision (docs/qcom-protocol.md): our agent always asks for the real reply size in both
dialects (0 for SET/START/STOP, the result size for GET). The RFC asked rx_size 128 on
every call, which Linux kernels with the 104-byte payload cap refuse with -ERANGE
(protocol.md §1.5, §4.1); sending correct sizes changes nothing on the wire a platform
sees, because rx_size never travels.
"""

from __future__ import annotations

import errno

from memlat.errors import MemlatError
from memlat.qcom.codec import FreqReply, GetAdaptiveCurFreq, ScalarMsg, Timestamp, encode_request
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID, Algorithm, ParamId, QcomMessage
from memlat.scmi.agent import Agent
from memlat.scmi.status import ScmiStatusError, Status


class QcomClientError(MemlatError):
    """A QCOM call refused by the client rules; `errno` is the negative Linux errno."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


class QcomClient:
    """SET_PARAM / GET_PARAM / START_ACTIVITY / STOP_ACTIVITY over an `Agent`.

    dialect picks the algorithm string sent ("MEMLAT" for v8, "memlat" for rfc2024);
    allowed is the algorithm allow-list (default: only the dialect's string, like v8's
    {MEMLAT}). Failures raise ScmiStatusError naming the message and the param.
    """

    def __init__(self, agent: Agent, dialect: Dialect | str = Dialect.V8, *,
                 allowed: frozenset[int] | None = None) -> None:
        self.agent = agent
        self.dialect = Dialect(dialect)
        self.algo: int = self.dialect.algorithm
        self.allowed = frozenset({self.algo}) if allowed is None else frozenset(allowed)

    def _request(self, message: QcomMessage, param_id: int, body: bytes,
                 algo: int | None) -> tuple[bytes, str]:
        algo = self.algo if algo is None else algo
        what = f"QCOM {message.name} {ParamId.label(param_id)}"
        if algo not in self.allowed:
            raise QcomClientError(f"{what}: algorithm {algo:#x} not in the allow-list",
                                  -errno.EINVAL)
        return encode_request(algo, param_id, body), what

    def _call(self, message: QcomMessage, param_id: int, body: bytes = b"", *,
              algo: int | None = None) -> None:
        payload, what = self._request(message, param_id, body, algo)
        reply = self.agent.xfer(PROTOCOL_ID, message, payload, rx_size=0)
        if reply.status != Status.SUCCESS:
            raise ScmiStatusError(what, reply.status)

    def set_param(self, param_id: int, body: bytes, *, algo: int | None = None) -> None:
        """QCOM_SCMI_SET_PARAM with `body` (rx_size 0: only the status matters)."""
        self._call(QcomMessage.SET_PARAM, param_id, body, algo=algo)

    def get_param(self, param_id: int, body: bytes, rx_size: int, *,
                  algo: int | None = None) -> bytes:
        """QCOM_SCMI_GET_PARAM: send `body`, return exactly rx_size result bytes.

        rx_size > len(body) raises QcomClientError(-EINVAL) before sending; a reply
        shorter than rx_size or longer than body raises QcomClientError(-EPROTO).
        """
        payload, what = self._request(QcomMessage.GET_PARAM, param_id, body, algo)
        if rx_size < 0 or rx_size > len(body):
            raise QcomClientError(
                f"{what}: rx_size {rx_size} exceeds the {len(body)}-byte request buffer",
                -errno.EINVAL)
        reply = self.agent.xfer(PROTOCOL_ID, QcomMessage.GET_PARAM, payload)
        if reply.status != Status.SUCCESS:
            raise ScmiStatusError(what, reply.status)
        values = reply.values
        if len(values) < rx_size or len(values) > len(body):
            raise QcomClientError(
                f"{what}: reply of {len(values)} bytes, expected {rx_size}..{len(body)}",
                -errno.EPROTO)
        return values[:rx_size]

    def start_activity(self, param_id: int = ParamId.START_TIMER, *,
                       algo: int | None = None) -> None:
        """QCOM_SCMI_START_ACTIVITY (START_TIMER): no body."""
        self._call(QcomMessage.START_ACTIVITY, param_id, algo=algo)

    def stop_activity(self, param_id: int = ParamId.STOP_TIMER, *,
                      algo: int | None = None) -> None:
        """QCOM_SCMI_STOP_ACTIVITY (STOP_TIMER): no body."""
        self._call(QcomMessage.STOP_ACTIVITY, param_id, algo=algo)

    # -- typed GETs -------------------------------------------------------------------
    def get_cur_freq(self, hw_type: int, mon_idx: int) -> int:
        """GET_CUR_FREQ: the monitor's last target, kHz (or a 0/1 level in DDR_QOS)."""
        raw = self.get_param(ParamId.GET_CUR_FREQ, ScalarMsg(hw_type, mon_idx, 0).pack(),
                             FreqReply.SIZE)
        return FreqReply.unpack(raw).value

    def get_adaptive_cur_freq(self, hw_type: int) -> int:
        """GET_ADAPTIVE_CUR_FREQ: the group's adaptive current level, kHz."""
        raw = self.get_param(ParamId.GET_ADAPTIVE_CUR_FREQ,
                             GetAdaptiveCurFreq(hw_type).pack(), FreqReply.SIZE)
        return FreqReply.unpack(raw).value

    def get_timestamp(self) -> int:
        """GET_TIMESTAMP: platform time in ns (8 zero bytes sent, protocol.md §5.9)."""
        raw = self.get_param(ParamId.GET_TIMESTAMP, bytes(Timestamp.SIZE), Timestamp.SIZE)
        return Timestamp.unpack(raw).ns


__all__ = ["Algorithm", "QcomClient", "QcomClientError"]

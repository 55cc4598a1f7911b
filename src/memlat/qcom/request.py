"""The one agent-side encoder of QCOM commands (protocol.md §2.2, §2.4).

Probe, readback and every other caller build their requests with `request()`, so the
16-byte header, the message that carries a param and the rx_size always follow the
dialect's rules (`memlat.qcom.dialect`).
"""

from __future__ import annotations

from dataclasses import dataclass

from memlat.qcom.codec import encode_request
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import ParamId, message_for


@dataclass(frozen=True, slots=True)
class QcomRequest:
    """One encoded QCOM command: message id, the whole SCMI payload (16-byte QCOM header
    + param body) and the rx_size the agent asks (protocol.md §2.2)."""

    message_id: int
    param_id: int
    payload: bytes
    rx_size: int


def request(dialect: Dialect | str, param_id: int, body: bytes = b"", *,
            result_size: int = 0) -> QcomRequest:
    """Encode `param_id` with `body` in `dialect`: the message that carries the param
    (protocol.md §2.4), the dialect's algorithm string and its rx_size rule.

    Raises ValueError for a param id no command carries (3, 4 and unknown ids).
    """
    d = Dialect(dialect)
    message = message_for(param_id)
    if message is None:
        raise ValueError(f"{ParamId.label(param_id)} is carried by no QCOM command")
    payload = encode_request(d.algorithm, int(param_id), body)
    return QcomRequest(int(message), int(param_id), payload,
                       d.rules.rx_size(message, result_size))

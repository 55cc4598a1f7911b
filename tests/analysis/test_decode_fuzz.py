"""Decoding never raises: any payload of any message gives fields or an error text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memlat.analysis.decode.ftrace import msg_dump_body, parse_text, render_line
from memlat.analysis.decode.messages import (
    decode_command,
    decode_delayed,
    decode_notification,
    decode_response,
)
from memlat.analysis.decode.session import decode_records
from memlat.qcom.codec import encode_request
from memlat.qcom.ids import Algorithm

PROTOCOLS = st.sampled_from([0x10, 0x11, 0x13, 0x14, 0x80, 0x99])
MESSAGES = st.integers(min_value=0, max_value=0x20)


@given(PROTOCOLS, MESSAGES, st.binary(max_size=64), st.integers(min_value=0, max_value=45))
def test_payload_decoders_never_raise(pt: int, mid: int, data: bytes, param: int) -> None:
    request, _, _ = decode_command(pt, mid, data)
    if request.error is not None:  # undecodable: the bytes are kept, the error names them
        assert request.fields.get("hex", request.fields.get("body_hex")) is not None
        assert "byte offset" in request.error
    decode_response(pt, mid, data, param_id=param, request=request)
    decode_delayed(pt, mid, data)
    decode_notification(pt, mid, data)


@given(st.sampled_from(list(Algorithm)), st.integers(min_value=0, max_value=45),
       st.binary(max_size=60))
def test_qcom_bodies_of_any_length(algo: Algorithm, param: int, body: bytes) -> None:
    decoded, dialect, param_id = decode_command(0x80, 0x10, encode_request(algo, param, body))
    assert param_id == param and dialect is not None
    assert decoded.fields["param_id"] == param
    if decoded.error is not None:
        assert "byte offset" in decoded.error


_TAGS = st.sampled_from(["CMND", "RESP", "DLYD", "NOTI", "cmnd", "resp", "XXXX"])


@given(st.lists(st.tuples(_TAGS, PROTOCOLS, MESSAGES, st.integers(0, 5),
                          st.integers(-12, 0), st.binary(max_size=24)), max_size=40))
def test_any_sequence_of_dumps_pairs(dumps: list[tuple[str, int, int, int, int, bytes]]) -> None:
    lines = [render_line(1_000_000 * (i + 1), "scmi_msg_dump", msg_dump_body(
        instance=0, channel=pt, protocol_id=pt, tag=tag, message_id=mid, seq=seq,
        status=status, payload=payload)) for i, (tag, pt, mid, seq, status, payload)
        in enumerate(dumps)]
    result = decode_records(parse_text("\n".join(lines)))
    used = sorted(n for m in result.messages for n in m.lines)
    assert used == list(range(1, len(dumps) + 1))  # every line in exactly one message
    for m in result.messages:
        m.as_json()

"""SCMI codecs: header golden values, status table, the worked SMT frame, round trips."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlat.errors import DecodeError
from memlat.scmi.agent import Agent
from memlat.scmi.header import Header, MessageType
from memlat.scmi.message import Message
from memlat.scmi.platform import Command, ProtocolHandler, Reply
from memlat.scmi.protocols.base import (
    AgentInfo,
    BaseAttributes,
    DiscoverAgentRequest,
    ListProtocolsRequest,
    MessageAttributesRequest,
    NotifyErrorsRequest,
    ProtocolList,
    ResetAgentConfigurationRequest,
    SetDevicePermissionsRequest,
    SetProtocolPermissionsRequest,
    ShortName,
    U32Value,
)
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.smt import ChannelFlaggedError, SmtArea
from memlat.scmi.status import Status, to_linux_errno
from memlat.transports.inproc import InProcessTransport


# -- protocol.md §1.1 ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proto", "msg", "token", "value"),
    [
        (0x10, 0x0, 0, 0x00004000),  # base PROTOCOL_VERSION token 0
        (0x10, 0x6, 1, 0x00044006),  # base DISCOVER_LIST_PROTOCOLS token 1
        (0x80, 0x10, 5, 0x00160010),  # QCOM SET_PARAM token 5
        (0x80, 0x0, 0, 0x00020000),  # QCOM PROTOCOL_VERSION token 0
    ],
)
def test_header_golden_values(proto: int, msg: int, token: int, value: int) -> None:
    header = Header(msg, proto, token)
    assert header.pack() == value
    assert header.to_bytes() == struct.pack("<I", value)
    assert Header.unpack(value) == header


def test_header_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="token"):
        Header(0, 0x10, 1024)
    with pytest.raises(DecodeError, match="header"):
        Header.from_bytes(b"\x00\x40")


# -- protocol.md §1.2 ---------------------------------------------------------------------
STATUS_TABLE = [
    (0, "SUCCESS", 0),
    (-1, "NOT_SUPPORTED", -errno.EOPNOTSUPP),
    (-2, "INVALID_PARAMETERS", -errno.EINVAL),
    (-3, "DENIED", -errno.EACCES),
    (-4, "NOT_FOUND", -errno.ENOENT),
    (-5, "OUT_OF_RANGE", -errno.ERANGE),
    (-6, "BUSY", -errno.EBUSY),
    (-7, "COMMS_ERROR", -errno.ECOMM),
    (-8, "GENERIC_ERROR", -errno.EIO),
    (-9, "HARDWARE_ERROR", -errno.EREMOTEIO),
    (-10, "PROTOCOL_ERROR", -errno.EPROTO),
    (-11, "IN_USE", -errno.EIO),
    (-12, "PARTIAL", -errno.EIO),
]


@pytest.mark.parametrize(("value", "name", "linux"), STATUS_TABLE)
def test_status_table(value: int, name: str, linux: int) -> None:
    assert Status[name] == value
    assert to_linux_errno(value) == linux
    assert Status(value).errno == linux


@pytest.mark.parametrize("value", [-13, 1, 99, -1000])
def test_unknown_status_maps_to_eio(value: int) -> None:
    assert to_linux_errno(value) == -errno.EIO
    assert "unknown" in Status.describe(value)


# -- protocol.md §1.7 ---------------------------------------------------------------------
def _dump(text: str) -> bytes:
    """Bytes of a hexdump in the spec's layout ("0000: xx xx ...   comment")."""
    out = b""
    for line in text.strip().splitlines():
        hexpart = line.split(":", 1)[1][:49]
        out += bytes.fromhex(hexpart)
    return out


WORKED_COMMAND = _dump("""
0000: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   reserved, status=0 (busy), reserved
0010: 01 00 00 00 38 00 00 00 10 00 16 00 00 00 00 00   flags=1, length=0x38, hdr, ext_id=0
0020: 54 41 4c 4d 45 4d 00 00 11 00 00 00 0f 00 00 00   algo_low, algo_high, param_id, cpumask
0030: 00 00 00 00 00 00 00 00 00 00 00 00 6d 6f 6e 5f   hw_type=0, mon_type=0, mon_idx=0, "mon_
0040: 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   0" + NUL padding to 20 bytes
""")
WORKED_REPLY = _dump("""
0000: 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00   status FREE
0010: 01 00 00 00 08 00 00 00 10 00 16 00 00 00 00 00   length=8, same header, s32 status=0
""")


class _AcceptAll(ProtocolHandler):
    """A stand-in for protocol 0x80 whose SET_PARAM accepts any payload."""

    protocol_id = 0x80
    version = 0x10000

    def commands(self) -> dict[int, Command]:
        return {0x10: Command(lambda ctx, payload: Reply.ok(), sizes=None)}


def _set_monitor_payload() -> bytes:
    algo = int.from_bytes(b"TALMEM\0\0", "little")  # "MEMLAT" v8 string, protocol.md §2.2
    name = b"mon_0".ljust(20, b"\0")
    return struct.pack("<IQIIIII", 0, algo, 17, 0xF, 0, 0, 0) + name


def test_worked_smt_frame_byte_for_byte() -> None:
    platform = make_platform()
    platform.register(_AcceptAll())
    transport = InProcessTransport(platform)
    agent = Agent(transport)
    for _ in range(5):  # tokens 0..4
        agent.call(0x10, 0x0)
    transport.record_frames = True
    payload = _set_monitor_payload()
    assert len(payload) == 0x34
    reply = agent.xfer(0x80, 0x10, payload)
    assert reply.header.token == 5 and reply.status == Status.SUCCESS
    command_frame, reply_frame = transport.frames[-1]
    assert len(WORKED_COMMAND) == 80 and len(WORKED_REPLY) == 32
    assert command_frame == WORKED_COMMAND
    assert reply_frame == WORKED_REPLY


def test_worked_frame_through_smt_area_directly() -> None:
    buffer = bytearray(0x200)
    area = SmtArea(buffer)
    area.reset()
    area.write_command(Message.command(0x80, 0x10, _set_monitor_payload(), token=5))
    assert bytes(buffer[:80]) == WORKED_COMMAND
    command = area.read_command()
    assert command.header.pack() == 0x00160010
    assert area.write_response(Message.response(command.header, Status.SUCCESS)) is True
    assert bytes(buffer[:32]) == WORKED_REPLY


# -- round trips --------------------------------------------------------------------------
u32 = st.integers(0, 0xFFFF_FFFF)
names = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=15)


@given(u32)
def test_header_round_trip_any_u32(value: int) -> None:
    assert Header.unpack(value).pack() == value


@given(st.builds(Header, st.integers(0, 255), st.integers(0, 255), st.integers(0, 1023),
                 st.sampled_from(MessageType), st.integers(0, 15)))
def test_header_round_trip_fields(header: Header) -> None:
    assert Header.from_bytes(header.to_bytes()) == header


@given(st.binary(min_size=4, max_size=200))
def test_message_round_trip(data: bytes) -> None:
    message = Message.from_bytes(data)
    assert message.to_bytes() == data
    assert Message.from_bytes(message.to_bytes()) == message


CODECS = [
    st.builds(MessageAttributesRequest, u32),
    st.builds(ListProtocolsRequest, u32),
    st.builds(DiscoverAgentRequest, u32),
    st.builds(NotifyErrorsRequest, u32),
    st.builds(SetDevicePermissionsRequest, u32, u32, u32),
    st.builds(SetProtocolPermissionsRequest, u32, u32, u32, u32),
    st.builds(ResetAgentConfigurationRequest, u32, u32),
    st.builds(U32Value, u32),
    st.builds(BaseAttributes, st.integers(0, 255), st.integers(0, 255)),
    st.builds(ShortName, names),
    st.builds(ProtocolList, st.lists(st.integers(0, 255), max_size=40).map(tuple)),
    st.builds(AgentInfo, u32, names),
]


@given(st.one_of(*CODECS))
def test_every_base_codec_round_trips(value: object) -> None:
    raw = value.pack()  # type: ignore[attr-defined]
    assert type(value).unpack(raw) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize(("cls", "size"), [
    (SetDevicePermissionsRequest, 12), (SetProtocolPermissionsRequest, 16),
    (ResetAgentConfigurationRequest, 8), (AgentInfo, 20), (ShortName, 16),
])
def test_codec_sizes_and_short_input(cls: type, size: int) -> None:
    value = cls.unpack(bytes(size))
    assert len(value.pack()) == size
    with pytest.raises(DecodeError) as info:
        cls.unpack(bytes(size - 1), base=4)
    assert info.value.offset is not None and info.value.offset >= 4


def test_protocol_list_padding() -> None:
    assert ProtocolList((0x13, 0x80)).pack() == bytes.fromhex("02000000 13800000")
    assert ProtocolList((1, 2, 3, 4, 5)).pack() == bytes.fromhex("05000000 01020304 05000000")
    assert ProtocolList(()).pack() == bytes(4)


def test_smt_area_size_must_fit_buffer() -> None:
    with pytest.raises(ValueError, match="over a 64-byte buffer"):
        SmtArea(bytearray(64), size=128)
    with pytest.raises(ValueError, match="smaller than 28"):
        SmtArea(bytearray(16))


# -- SMT one-call operations (the cross-process hot paths) -------------------------------
AREA_BYTES = st.binary(min_size=0x1C, max_size=0x80).map(lambda b: b.ljust(0x80, b"\0"))


def _with_status(area_bytes: bytes, status: int) -> bytearray:
    buffer = bytearray(area_bytes)
    struct.pack_into("<I", buffer, 0x04, status)
    return buffer


@given(AREA_BYTES, st.integers(0, 3))
def test_take_command_is_read_command_once_handed_over(area_bytes: bytes, status: int) -> None:
    area = SmtArea(_with_status(area_bytes, status))
    if status & 1:  # FREE: the agent still owns the channel, a ring is spurious
        assert area.take_command() is None
        return
    try:
        expected = area.read_command().to_bytes()
    except DecodeError as exc:
        with pytest.raises(DecodeError, match=str(exc.field)):
            area.take_command()
        return
    assert area.take_command() == expected


@given(AREA_BYTES, st.integers(0, 3))
def test_take_response_is_read_response_once_free(area_bytes: bytes, status: int) -> None:
    area = SmtArea(_with_status(area_bytes, status))
    if not status & 1:  # the platform still owns it
        assert area.take_response() is None
        return
    if status & 2:
        with pytest.raises(ChannelFlaggedError, match=r"CHANNEL_ERROR.*channel_status"):
            area.take_response()
        return
    try:
        expected = area.read_response().to_bytes()
    except DecodeError:
        with pytest.raises(DecodeError, match="field length"):
            area.take_response()
        return
    assert area.take_response() == expected


@given(AREA_BYTES, st.integers(0, 3), st.binary(min_size=4, max_size=40), st.booleans())
def test_post_command_writes_like_write_command_bytes_only_when_free(
        area_bytes: bytes, status: int, message: bytes, interrupt: bool) -> None:
    buffer = _with_status(area_bytes, status)
    reference = bytearray(buffer)
    posted = SmtArea(buffer).post_command(message, interrupt=interrupt)
    assert posted == bool(status & 1)
    if posted:
        SmtArea(reference).write_command_bytes(message, interrupt=interrupt)
    assert buffer == reference  # written exactly as write_command_bytes, or not at all


def test_post_command_refuses_a_message_the_area_cannot_hold() -> None:
    area = SmtArea(bytearray(0x80))
    area.reset()
    with pytest.raises(ValueError, match=r"4\.\.104"):
        area.post_command(bytes(4 + 0x80 - 0x1C + 1))
    assert area.is_free  # nothing written

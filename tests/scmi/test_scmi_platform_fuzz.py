"""Property tests: the platform answers any bytes with one well-formed reply or refuses
them at transport level, never raises, and a refused or failed command changes nothing."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from memlat.cpucp.service import CpucpService
from memlat.scmi.header import Header, MessageType
from memlat.scmi.message import Message
from memlat.scmi.platform import Command, ProtocolHandler
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.protocols.identity import AgentIdentity, PlatformIdentity
from memlat.scmi.smt import SmtArea
from memlat.scmi.status import Status

IDENTITY = PlatformIdentity(
    agents=(AgentIdentity(id=1, name="OSPM"), AgentIdentity(id=2, name="PSCI")),
    protocols=(0x13, 0x80),
    trusted_agents=frozenset({1}),
)


class _Raising(ProtocolHandler):
    """A buggy protocol: its one command raises; the platform must still answer."""

    protocol_id = 0x13
    version = 0x30000

    def commands(self) -> dict[int, Command]:
        return {0x3: Command(lambda ctx, payload: 1 // 0, sizes=None)}


def _platform():
    platform = make_platform(IDENTITY)
    platform.register(_Raising())
    platform.register(CpucpService())  # 0x80: its snapshot is part of Platform.state()
    # some state to lose: agent 2 denied 0x80 and notifications on for agent 1
    platform.denied.add((2, 0x80))
    platform.handlers[0x10].notify_errors.add(1)
    return platform


def _commands() -> st.SearchStrategy[bytes]:
    """Mostly headers aimed at real protocols and messages, with random words after."""
    header = st.builds(
        Header,
        st.integers(0, 0x10),
        st.sampled_from([0x10, 0x13, 0x80, 0x11, 0xFF]),
        st.integers(0, 1023),
        st.sampled_from(MessageType),
        st.integers(0, 15),
    ).map(Header.to_bytes)
    word = st.one_of(st.integers(0, 4), st.sampled_from([0x10, 0x13, 0x80, 0xFFFF_FFFF]),
                     st.integers(0, 0xFFFF_FFFF)).map(lambda v: struct.pack("<I", v))
    payload = st.lists(word, max_size=5).map(b"".join)
    tail = st.binary(max_size=3)
    return st.tuples(header, payload, tail).map(lambda t: b"".join(t))


ANY_BYTES = st.one_of(st.binary(max_size=40), _commands())


@given(ANY_BYTES, st.sampled_from([0, 1, 2, 3, 7]))
def test_handle_bytes_answers_once_or_refuses(data: bytes, agent_id: int) -> None:
    platform = _platform()
    before = platform.state()
    reply = platform.handle_bytes(data, agent_id)
    if reply is None:
        # transport-level refusal: no header, or not a command
        assert len(data) < 4 or Header.from_bytes(data).type != MessageType.COMMAND
        assert platform.state() == before
        return
    assert len(data) >= 4
    assert reply[:4] == data[:4]  # same header, token included
    assert len(reply) >= 8  # status word present
    (status,) = struct.unpack_from("<i", reply, 4)
    assert status in {int(s) for s in Status}
    if status != Status.SUCCESS:
        assert len(reply) == 8
        assert platform.state() == before


@given(st.binary(max_size=40))
def test_random_bytes_never_change_state_unless_success(data: bytes) -> None:
    platform = _platform()
    before = platform.state()
    reply = platform.handle_bytes(data, 2)  # untrusted caller: nothing may change
    assert reply is None or platform.state() == before


@given(st.binary(min_size=0x1C, max_size=0x80))
def test_serve_area_never_raises_on_garbage(area_bytes: bytes) -> None:
    platform = _platform()
    before = platform.state()
    buffer = bytearray(area_bytes.ljust(0x80, b"\0"))
    area = SmtArea(buffer)
    platform.serve_area(area)
    assert area.is_free  # the platform always hands the channel back
    if area.channel_status & 0x2:  # channel error: nothing was dispatched
        assert platform.state() == before
    else:
        assert area.length >= 8


def test_raising_handler_gives_generic_error() -> None:
    platform = _platform()
    reply = platform.handle_bytes(Header(0x3, 0x13, 9).to_bytes(), 1)
    assert reply == Header(0x3, 0x13, 9).to_bytes() + struct.pack("<i", Status.GENERIC_ERROR)


def test_non_command_types_are_refused() -> None:
    platform = _platform()
    for kind in (MessageType.DELAYED_RESPONSE, MessageType.NOTIFICATION, MessageType.RESERVED):
        assert platform.handle_bytes(Header(0, 0x10, 1, kind).to_bytes()) is None
    assert platform.handle_bytes(b"\x00\x40\x00") is None


def test_payload_over_the_channel_limit_is_protocol_error() -> None:
    platform = _platform()
    header = Header(0x9, 0x10, 4).to_bytes()  # SET_DEVICE_PERMISSIONS, 12-byte payload
    allow_nothing = struct.pack("<3I", 2, 0, 0)
    before = platform.state()
    for size in (105, 4096, 16 << 20):  # 104 is Linux's SCMI_SHMEM_MAX_PAYLOAD_SIZE
        data = header + allow_nothing + bytes(size - len(allow_nothing))
        assert platform.handle_bytes(data, 1) == header + struct.pack("<i", -10)
    assert platform.state() == before
    # exactly 104 bytes reaches the handler (which wants 12: its own PROTOCOL_ERROR)
    assert platform.handle_bytes(header + bytes(104), 1) == header + struct.pack("<i", -10)
    assert platform.handle_bytes(header + allow_nothing, 1) == header + b"\0" * 4
    assert platform.state() != before


def test_oversized_command_in_an_smt_area_is_protocol_error() -> None:
    platform = _platform()
    area = SmtArea(bytearray(0x200))
    area.reset()
    area.write_command(Message(Header(0x0, 0x10, 5), bytes(200)))
    platform.serve_area(area)
    assert area.read_response().status == Status.PROTOCOL_ERROR


def test_reserved_header_bits_are_protocol_error() -> None:
    platform = _platform()
    before = platform.state()
    for reserved in range(1, 16):
        header = Header(0x0, 0x10, 2, reserved=reserved).to_bytes()
        assert platform.handle_bytes(header, 1) == header + struct.pack("<i", -10)
    assert platform.state() == before
    clean = Header(0x0, 0x10, 2).to_bytes()
    assert platform.handle_bytes(clean, 1) == clean + struct.pack("<iI", 0, 0x20000)


@given(ANY_BYTES, st.sampled_from([0, 1, 2, 3, 7]))
def test_fast_path_answers_exactly_as_the_decoded_path(data: bytes, agent_id: int) -> None:
    """Without observers handle_bytes goes from the u32 header straight to reply bytes;
    an observer makes it decode a Message first. Both give the same bytes and leave the
    same state, for every input."""
    fast, decoded = _platform(), _platform()
    seen: list[Message] = []
    decoded.observers.append(lambda _agent, command, _reply: seen.append(command))
    assert fast.handle_bytes(data, agent_id) == decoded.handle_bytes(data, agent_id)
    assert fast.state() == decoded.state()
    assert len(seen) == (len(data) >= 4)  # the observer did see the decoded path run

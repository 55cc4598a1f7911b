"""Agent core (tokens, timeouts, late replies, size limits) and base discovery."""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable

import pytest

from memlat.errors import ScmiTimeout, TransportError
from memlat.scmi.agent import DEFAULT_TIMEOUT_S, Agent, Exchange, MessageSizeError
from memlat.scmi.header import Header
from memlat.scmi.message import Message
from memlat.scmi.platform import Command, Platform, ProtocolHandler, Reply
from memlat.scmi.protocols.base import QCOM_VENDOR, BaseMessage
from memlat.scmi.protocols.base_agent import discover, protocol_version
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.protocols.identity import AgentIdentity, PlatformIdentity
from memlat.scmi.status import ScmiStatusError, Status
from memlat.scmi.transport import Transport
from memlat.transports.inproc import InProcessTransport
from memlat.wire import s32, u32s


class QueueTransport(Transport):
    """Real bytes through `Platform.handle_bytes`, with replies held back on demand.

    `hold` replies are kept back (the platform answered, the doorbell is "late"); they
    are delivered, oldest first, before the reply to the next command sent.
    `override(command bytes) -> reply bytes | None` can replace the platform's answer.
    """

    name = "queue"

    def __init__(self, platform: Platform | None, *, override: Callable[[bytes], bytes | None]
                 | None = None):
        self.platform = platform
        self.override = override
        self.hold = 0
        self.held: deque[bytes] = deque()
        self.ready: deque[bytes] = deque()
        self.sent: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.sent.append(message)
        reply = self.override(message) if self.override else None
        if reply is None and self.platform is not None:
            reply = self.platform.handle_bytes(message)
        if reply is None:
            return
        if self.hold:
            self.hold -= 1
            self.held.append(reply)
            return
        self.ready.extend(self.held)
        self.held.clear()
        self.ready.append(reply)

    def receive(self, timeout_s: float) -> bytes | None:
        return self.ready.popleft() if self.ready else None

    def release(self) -> None:
        """Deliver held replies now."""
        self.ready.extend(self.held)
        self.held.clear()


def _sent_ids(transport: QueueTransport) -> list[tuple[int, int]]:
    return [(Header.from_bytes(m).protocol_id, Header.from_bytes(m).message_id)
            for m in transport.sent]


# -- tokens --------------------------------------------------------------------------------
def test_tokens_are_monotonic_modulo_1024() -> None:
    agent = Agent(InProcessTransport(make_platform()))
    for _ in range(1030):
        agent.xfer(0x10, 0x0)
    tokens = [e.token for e in agent.log]
    assert tokens[:3] == [0, 1, 2]
    assert tokens[1023:1026] == [1023, 0, 1]
    assert tokens == [i % 1024 for i in range(1030)]
    assert agent.in_flight == frozenset()


def test_token_allocation_skips_in_flight_tokens() -> None:
    transport = QueueTransport(None)  # nobody answers
    agent = Agent(transport)
    first = agent.send(0x10, 0x0)
    assert first.token == 0
    agent._last_token = 1022  # as if 1023 tokens had been used since
    tokens = [agent.send(0x10, 0x0).token for _ in range(3)]
    assert tokens == [1023, 1, 2]  # 0 is still in flight
    assert agent.in_flight == frozenset({0, 1023, 1, 2})


def test_all_tokens_in_flight_is_refused() -> None:
    agent = Agent(QueueTransport(None))
    for _ in range(1024):
        agent.send(0x10, 0x0)
    with pytest.raises(TransportError, match="1024 tokens"):
        agent.send(0x10, 0x0)


# -- timeouts and late replies ---------------------------------------------------------------
def test_default_timeout_is_30_ms() -> None:
    assert DEFAULT_TIMEOUT_S == 0.030
    assert Agent(QueueTransport(None)).timeout_s == 0.030


def test_timeout_is_configurable_and_reported() -> None:
    agent = Agent(QueueTransport(None), timeout_s=0.002)
    with pytest.raises(ScmiTimeout, match="within 2 ms"):
        agent.xfer(0x10, 0x0)
    assert agent.log[-1].error is not None and agent.log[-1].status is None
    assert agent.in_flight == frozenset()


def test_late_reply_is_filed_in_errors() -> None:
    transport = QueueTransport(make_platform())
    agent = Agent(transport, timeout_s=0.002)
    transport.hold = 1
    with pytest.raises(ScmiTimeout):
        agent.xfer(0x10, BaseMessage.DISCOVER_VENDOR)
    reply = agent.xfer(0x10, BaseMessage.PROTOCOL_VERSION)  # late vendor reply arrives first
    assert reply.status == Status.SUCCESS and reply.values == u32s(0x20000)
    assert len(agent.errors) == 1
    stray = agent.errors[0]
    assert stray.late is True
    assert (stray.header.token, stray.header.message_id) == (0, BaseMessage.DISCOVER_VENDOR)
    assert stray.data[8:16] == b"Qualcomm"


def test_unexpected_reply_is_filed_not_late() -> None:
    transport = QueueTransport(make_platform())
    agent = Agent(transport)
    first = agent.send(0x10, BaseMessage.PROTOCOL_VERSION)
    second = agent.send(0x10, BaseMessage.PROTOCOL_ATTRIBUTES)
    reply = agent.wait(second)  # replies come in order: the first one is unexpected here
    assert reply.header.token == second.token
    assert [(e.header.token, e.late) for e in agent.errors] == [(first.token, False)]


def test_drain_collects_late_replies() -> None:
    transport = QueueTransport(make_platform())
    agent = Agent(transport, timeout_s=0.001)
    transport.hold = 1
    with pytest.raises(ScmiTimeout):
        agent.xfer(0x10, 0x0)
    transport.release()
    new = agent.drain()
    assert [(s.header.token, s.late) for s in new] == [(0, True)]


def test_reply_without_status_word_is_a_transport_error() -> None:
    def short(message: bytes) -> bytes:
        return message[:4]

    agent = Agent(QueueTransport(None, override=short))
    with pytest.raises(TransportError, match="no status word"):
        agent.xfer(0x10, 0x0)


# -- size limits -------------------------------------------------------------------------
def test_payload_above_104_bytes_is_refused_before_sending() -> None:
    transport = QueueTransport(make_platform())
    agent = Agent(transport)
    assert agent.max_msg_size == 104
    with pytest.raises(MessageSizeError, match="105 bytes"):
        agent.xfer(0x10, 0x0, bytes(105))
    with pytest.raises(MessageSizeError, match="requested reply"):
        agent.xfer(0x10, 0x0, rx_size=105)
    assert transport.sent == [] and agent.in_flight == frozenset()
    reply = agent.xfer(0x10, 0x0, bytes(104))  # at the limit: sent (and refused by size)
    assert reply.status == Status.PROTOCOL_ERROR
    assert len(transport.sent) == 1


def test_max_size_is_configurable() -> None:
    agent = Agent(QueueTransport(make_platform()), max_msg_size=128)
    assert agent.xfer(0x10, 0x0, bytes(128)).status == Status.PROTOCOL_ERROR


def test_rx_size_clips_values_like_fetch_response() -> None:
    agent = Agent(InProcessTransport(make_platform()))
    reply = agent.xfer(0x10, BaseMessage.DISCOVER_VENDOR, rx_size=4)
    assert reply.values == b"Qual"


def test_call_raises_status_error() -> None:
    agent = Agent(InProcessTransport(make_platform()))
    with pytest.raises(ScmiStatusError, match="NOT_FOUND") as info:
        agent.call(0x10, 0x42, what="bogus")
    assert info.value.status == Status.NOT_FOUND


def test_exchange_json_uses_plain_ints() -> None:
    agent = Agent(InProcessTransport(make_platform()))
    agent.xfer(0x10, BaseMessage.DISCOVER_LIST_PROTOCOLS, u32s(0))
    line = agent.log[-1].as_json()
    assert line == {"protocol": 16, "message_id": 6, "token": 0, "status": 0,
                    "payload": "00000000", "reply": "0100000080000000"}
    assert type(line["message_id"]) is int


# -- discovery -----------------------------------------------------------------------------
class _Qcom(ProtocolHandler):
    """A stand-in for 0x80 with a configurable version and optional message 0x10."""

    protocol_id = 0x80

    def __init__(self, version: int, negotiate: bool):
        self.version = version
        self.negotiate = negotiate

    def commands(self) -> dict[int, Command]:
        if not self.negotiate:
            return {}
        return {0x10: Command(lambda ctx, payload: Reply.ok(), sizes=(4,))}


def test_discover_follows_linux_order() -> None:
    identity = PlatformIdentity(
        agents=(AgentIdentity(id=1, name="OSPM"), AgentIdentity(id=2, name="PSCI")),
        protocols=tuple(range(0x11, 0x1B)),
        list_protocols_per_reply=4,
        implementation_version=7,
    )
    transport = QueueTransport(make_platform(identity))
    info = discover(Agent(transport))
    m = BaseMessage
    assert [mid for _, mid in _sent_ids(transport)] == [
        m.PROTOCOL_VERSION, m.PROTOCOL_ATTRIBUTES, m.DISCOVER_VENDOR, m.DISCOVER_SUB_VENDOR,
        m.DISCOVER_IMPLEMENTATION_VERSION, m.DISCOVER_LIST_PROTOCOLS, m.DISCOVER_LIST_PROTOCOLS,
        m.DISCOVER_LIST_PROTOCOLS, m.DISCOVER_AGENT, m.DISCOVER_AGENT,
    ]
    skips = [m_[4:] for m_ in transport.sent[5:8]]
    assert skips == [u32s(0), u32s(4), u32s(8)]
    assert [m_[4:] for m_ in transport.sent[8:]] == [u32s(0), u32s(1)]
    assert info.version == 0x20000 and info.num_protocols == 10 and info.num_agents == 2
    assert (info.vendor, info.sub_vendor, info.implementation_version) == ("Qualcomm", "CPUCP", 7)
    assert info.protocols == tuple(range(0x11, 0x1B))
    assert info.agents == {0: "platform", 1: "OSPM"}
    assert info.warnings == []


def _base_override(message_id: int, reply_values: Callable[[bytes], bytes | None]):
    """An override answering base `message_id` with crafted values (status included)."""
    def override(raw: bytes) -> bytes | None:
        header = Header.from_bytes(raw)
        if header.protocol_id == 0x10 and header.message_id == message_id:
            values = reply_values(raw[4:])
            return None if values is None else raw[:4] + values
        return None
    return override


def _discover_with(identity: PlatformIdentity, message_id: int, values) -> tuple:
    transport = QueueTransport(make_platform(identity),
                               override=_base_override(message_id, values))
    info = discover(Agent(transport))
    return info, transport


FIVE = PlatformIdentity(protocols=(0x11, 0x12, 0x13, 0x14, 0x80), list_protocols_per_reply=2)


def test_list_reply_claiming_more_than_remaining_aborts() -> None:
    def values(payload: bytes) -> bytes | None:
        if payload == u32s(2):  # second page claims 4 of the 3 remaining
            return s32(0) + u32s(4) + bytes([0x13, 0x14, 0x80, 0x15])
        return None

    info, transport = _discover_with(FIVE, BaseMessage.DISCOVER_LIST_PROTOCOLS, values)
    assert info.protocols == (0x11, 0x12)
    assert any("> 3 remaining" in w for w in info.warnings)
    assert _sent_ids(transport).count((0x10, BaseMessage.DISCOVER_LIST_PROTOCOLS)) == 2
    assert not info.instantiable(0x80, QCOM_VENDOR)


def test_list_reply_shorter_than_8_bytes_aborts() -> None:
    info, _ = _discover_with(FIVE, BaseMessage.DISCOVER_LIST_PROTOCOLS,
                             lambda p: s32(0) + u32s(1))
    assert info.protocols == ()
    assert any("truncated" in w for w in info.warnings)


def test_list_size_check_is_4_ceil_n_over_4() -> None:
    # 3 ids need 4 list bytes: 4 bytes accepted, then an extra word only warns
    long_reply = PlatformIdentity(protocols=(0x11, 0x12, 0x13), list_protocols_per_reply=3)
    info, _ = _discover_with(long_reply, BaseMessage.DISCOVER_LIST_PROTOCOLS,
                             lambda p: s32(0) + u32s(3) + bytes([0x11, 0x12, 0x13, 0]) + bytes(4))
    assert info.protocols == (0x11, 0x12, 0x13)
    assert any("malformed" in w for w in info.warnings)
    # 5 ids need 8 list bytes: 6 bytes are too few -> abort
    info, _ = _discover_with(FIVE, BaseMessage.DISCOVER_LIST_PROTOCOLS,
                             lambda p: s32(0) + u32s(5) + bytes([0x11, 0x12, 0x13, 0x14, 0x80, 0]))
    assert info.protocols == ()
    assert any("malformed" in w for w in info.warnings)


def test_list_reply_with_zero_ids_stops_paging() -> None:
    info, transport = _discover_with(FIVE, BaseMessage.DISCOVER_LIST_PROTOCOLS,
                                     lambda p: s32(0) + u32s(0))
    assert info.protocols == () and info.warnings == []
    assert _sent_ids(transport).count((0x10, BaseMessage.DISCOVER_LIST_PROTOCOLS)) == 1


def test_protocol_attributes_failure_is_fatal() -> None:
    transport = QueueTransport(make_platform(), override=_base_override(
        BaseMessage.PROTOCOL_ATTRIBUTES, lambda p: s32(Status.DENIED)))
    with pytest.raises(ScmiStatusError, match="PROTOCOL_ATTRIBUTES"):
        discover(Agent(transport))
    assert len(transport.sent) == 2


@pytest.mark.parametrize("message", [BaseMessage.DISCOVER_VENDOR, BaseMessage.DISCOVER_SUB_VENDOR,
                                     BaseMessage.DISCOVER_IMPLEMENTATION_VERSION,
                                     BaseMessage.DISCOVER_AGENT])
def test_vendor_impl_and_agent_errors_are_ignored(message: int) -> None:
    info, transport = _discover_with(PlatformIdentity(), message, lambda p: s32(Status.DENIED))
    assert info.protocols == (0x80,)
    assert any("DENIED" in w for w in info.warnings)
    assert len(transport.sent) == 7  # every step still ran


@pytest.mark.parametrize(("vendor", "listed", "expected"), [
    ("Qualcomm", (0x80,), True), ("QUALCOMM", (0x80,), True), ("qualcomm", (0x13, 0x80), True),
    ("Qualcom", (0x80,), False), ("Arm", (0x80,), False), ("Qualcomm", (0x13,), False),
])
def test_vendor_protocol_instantiation_rule(vendor: str, listed: tuple, expected: bool) -> None:
    platform = make_platform(PlatformIdentity(vendor=vendor, protocols=listed))
    info = discover(Agent(InProcessTransport(platform)))
    assert info.instantiable(0x80, QCOM_VENDOR) is expected
    assert info.instantiable(0x13) is (0x13 in listed)


@pytest.mark.parametrize(("reported", "negotiate", "messages", "negotiated"), [
    (0x10000, True, [0x0], None),  # equal: no negotiation (protocol.md §1.3)
    (0x20000, False, [0x0, 0x2], None),  # higher, NEGOTIATE not implemented
    (0x20000, True, [0x0, 0x2, 0x10], 0x10000),  # higher, negotiated down
])
def test_protocol_version_negotiation(reported, negotiate, messages, negotiated) -> None:
    platform = make_platform()
    platform.register(_Qcom(reported, negotiate))
    transport = QueueTransport(platform)
    version = protocol_version(Agent(transport), 0x80, 0x10000)
    assert [mid for _, mid in _sent_ids(transport)] == messages
    assert version.reported == reported and version.negotiated == negotiated
    if negotiated is not None:
        assert transport.sent[-1][4:] == u32s(0x10000)
    assert version.effective == (negotiated or reported)


def test_inproc_round_trip_uses_real_smt_bytes() -> None:
    transport = InProcessTransport(make_platform())
    transport.record_frames = True
    agent = Agent(transport)
    agent.call(0x10, BaseMessage.DISCOVER_AGENT, u32s(0xFFFF_FFFF))
    command, reply = transport.frames[0]
    assert Message.from_bytes(reply[0x18:]).values[4:8] == b"OSPM"
    assert command[0x14:0x18] == u32s(8)  # length = header + 4-byte payload


def test_unterminated_and_non_ascii_names_are_cut_like_strscpy() -> None:
    info, _ = _discover_with(PlatformIdentity(), BaseMessage.DISCOVER_VENDOR,
                             lambda p: s32(0) + b"Qualcomm12345678")
    assert info.vendor == "Qualcomm1234567" and info.instantiable(0x80, QCOM_VENDOR) is False
    info, _ = _discover_with(PlatformIdentity(), BaseMessage.DISCOVER_SUB_VENDOR,
                             lambda p: s32(0) + b"CP\xffUCP".ljust(16, b"\0"))
    assert info.sub_vendor == "CP?UCP" and info.warnings == []


class _SlowSilence(Transport):
    """Never replies; each receive() sleeps its whole timeout, like a real wait."""

    name = "silence"

    def __init__(self) -> None:
        self.waits: list[float] = []

    def send(self, message: bytes) -> None:
        pass

    def receive(self, timeout_s: float) -> bytes | None:
        self.waits.append(timeout_s)
        time.sleep(timeout_s)
        return None


def test_the_timeout_is_one_budget_across_the_fast_and_slow_waits() -> None:
    """The first receive() gets the whole timeout; when it brings nothing, the agent
    looks once more (with nothing left) instead of starting a second full wait."""
    transport = _SlowSilence()
    agent = Agent(transport, timeout_s=0.05)
    with pytest.raises(ScmiTimeout, match="within 50 ms"):
        agent.xfer(0x10, 0x0)
    assert transport.waits[0] == 0.05
    assert sum(transport.waits[1:]) < 0.05  # what was left of the budget, not a new one
    assert agent.in_flight == frozenset()
    assert [e.error is not None for e in agent.log] == [True]


def test_a_stray_reply_before_ours_goes_to_errors_and_ours_is_returned() -> None:
    transport = QueueTransport(make_platform())
    agent = Agent(transport)
    stray = struct.pack("<IiI", 0x10 << 10 | 0x2 | 900 << 18, 0, 7)  # token 900, nobody's
    transport.ready.append(stray)
    assert agent.call(0x10, 0x0) == u32s(0x20000)
    assert [(e.header.token, e.late, e.data) for e in agent.errors] == [(900, False, stray)]
    assert isinstance(agent.log[-1], Exchange) and agent.log[-1].status == 0

"""Numbers of the QCOM generic extension: messages, param ids, hw types, algorithms.

protocol.md §2.1-§2.4 and §2.6; the two dialects are in `memlat.qcom.dialect`.
"""

from __future__ import annotations

from enum import IntEnum

PROTOCOL_ID = 0x80
PROTOCOL_VERSION = 0x0001_0000  # exactly 1.0: Linux negotiates otherwise (protocol.md §1.3)
HEADER_SIZE = 16  # ext_id, algo_low, algo_high, param_id (protocol.md §2.2)


class QcomMessage(IntEnum):
    """Vendor message ids of protocol 0x80 (protocol.md §2.1)."""

    SET_PARAM = 0x10
    GET_PARAM = 0x11
    START_ACTIVITY = 0x12
    STOP_ACTIVITY = 0x13


class ParamId(IntEnum):
    """MEMLAT param ids (protocol.md §2.4; numbering unchanged since the RFC).

    ADAPTIVE_LEVEL_1 (40) exists only in the downstream V4 enum (algorithm.md §2.10) and
    is not supported here: the platform answers NOT_SUPPORTED, like any unknown id.
    """

    SET_LOG_LEVEL = 3
    FLUSH_LOGBUF = 4
    SET_MEM_GROUP = 16
    SET_MONITOR = 17
    SET_COMMON_EV_MAP = 18
    SET_GRP_EV_MAP = 19
    ADAPTIVE_LOW_FREQ = 20
    ADAPTIVE_HIGH_FREQ = 21
    GET_ADAPTIVE_CUR_FREQ = 22
    IPM_CEIL = 23
    FE_STALL_FLOOR = 24
    BE_STALL_FLOOR = 25
    WB_PCT = 26
    IPM_FILTER = 27
    FREQ_SCALE_PCT = 28
    FREQ_SCALE_CEIL_MHZ = 29
    FREQ_SCALE_FLOOR_MHZ = 30
    SAMPLE_MS = 31
    MON_FREQ_MAP = 32
    SET_MIN_FREQ = 33
    SET_MAX_FREQ = 34
    GET_CUR_FREQ = 35
    START_TIMER = 36
    STOP_TIMER = 37
    GET_TIMESTAMP = 38
    SET_EFFECTIVE_FREQ_METHOD = 39

    @classmethod
    def label(cls, value: int) -> str:
        """The name of a known id, else `param <n>`."""
        try:
            return cls(value).name
        except ValueError:
            return f"param {value}"


#: Not a member of ParamId on purpose: V4-only, refused with NOT_SUPPORTED.
ADAPTIVE_LEVEL_1 = 40

#: Which param ids each command carries (protocol.md §2.4 "Cmd" column). 3 and 4 have
#: no known command type or payload (protocol.md §5.10), so they belong to none.
GET_PARAMS = frozenset({ParamId.GET_ADAPTIVE_CUR_FREQ, ParamId.GET_CUR_FREQ,
                        ParamId.GET_TIMESTAMP})
START_PARAMS = frozenset({ParamId.START_TIMER})
STOP_PARAMS = frozenset({ParamId.STOP_TIMER})
SET_PARAMS = frozenset(
    p for p in ParamId
    if p not in GET_PARAMS | START_PARAMS | STOP_PARAMS
    and p not in (ParamId.SET_LOG_LEVEL, ParamId.FLUSH_LOGBUF)
)


class HwType(IntEnum):
    """Memory group ids (protocol.md §2.3; v8 names hw_type 2 DDR_QOS_COMPUTE)."""

    DDR = 0
    LLCC = 1
    DDR_QOS = 2
    DDR_QOS_MOBILE = 3
    ALL = 0xFF  # "all groups": only in the common event map

    @property
    def group_name(self) -> str:
        """Lower-case name used in logs and replay output (decisions.md §5)."""
        return self.name.lower()

    @classmethod
    def label(cls, value: int) -> str:
        """The lower-case name of a known hw_type, else `hw<n>`."""
        try:
            return cls(value).group_name
        except ValueError:
            return f"hw{value}"


#: hw_types a memory group may have (ALL is a sentinel, not a group).
GROUP_HW_TYPES = frozenset({HwType.DDR, HwType.LLCC, HwType.DDR_QOS, HwType.DDR_QOS_MOBILE})


class Algorithm(IntEnum):
    """Algorithm strings as the u64 of the header (protocol.md §2.2).

    "MEMLAT" reads as text when the u64 is written big-endian (wire bytes "TALMEM");
    the RFC's "memlat" reads as text in wire (little-endian) order.
    """

    MEMLAT = 0x0000_4D45_4D4C_4154  # "MEMLAT", 2024-06 ... v8
    MEMLAT_RFC = 0x0000_7461_6C6D_656D  # "memlat", RFC 2024-01

    @property
    def text(self) -> str:
        """The readable string ("MEMLAT" or "memlat")."""
        return "MEMLAT" if self is Algorithm.MEMLAT else "memlat"


def algorithm_text(value: int) -> str:
    """A readable name for an algorithm u64: the string if known, else hex."""
    try:
        return Algorithm(value).text
    except ValueError:
        return f"{value:#018x}"


#: Group-event slot order (protocol.md §2.3).
GROUP_EVENT_ORDER = ("miss", "wb", "acc")


def message_for(param_id: int) -> QcomMessage | None:
    """The command that carries `param_id` (protocol.md §2.4), None for 3, 4 and unknown ids."""
    if param_id in GET_PARAMS:
        return QcomMessage.GET_PARAM
    if param_id in START_PARAMS:
        return QcomMessage.START_ACTIVITY
    if param_id in STOP_PARAMS:
        return QcomMessage.STOP_ACTIVITY
    if param_id in SET_PARAMS:
        return QcomMessage.SET_PARAM
    return None

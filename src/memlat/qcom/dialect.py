"""The two wire dialects of the QCOM generic extension and every rule that differs.

decisions.md §1 of the project specification names two dialects: ``v8`` (the 2024-06 ...
v8 series, algorithm string "MEMLAT") and ``rfc2024`` (the January 2024 RFC, "memlat").
Everything that depends on the dialect is a field of one frozen `DialectRules` here, so
the agent (probe, readback), the configuration checks and the emulated CPUCP read the
same facts instead of comparing strings:

========================  =========================  ==============================
rule                      v8                         rfc2024
========================  =========================  ==============================
algorithm string          "MEMLAT" (§2.2)            "memlat" (§4.1)
MON_FREQ_MAP rows         10 (52-byte body)          6 (36-byte body) (§4.3)
common event slots        inst cyc const fe be (5)   inst cyc fe be (4) (§2.3)
rx_size asked             exact result size          128 on every command (§4.1)
SET_MEM_GROUP cpumask     the group's CPUs (§3.5)    0 (§4.4)
BE_STALL_FLOOR sent       yes (§3.5)                 no (§4.4)
EFFECTIVE_FREQ_METHOD     sent (§3.5)                not sent (§4.4)
default monitor name      mon_<i>                    monitor-<i>
on a refusal              abort, STOP_TIMER (§3.6)   log and continue (§4.4)
0x80 version mismatch     fatal                      logged only (§4.1)
non-ascending map rows    refused by the config      kept, with a warning (§5.13)
========================  =========================  ==============================

(§ numbers are protocol.md sections of the project specification.)

`memlat.qcom.request.request()` is the one agent-side encoder of a QCOM command built on
these rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from memlat.qcom.ids import Algorithm, QcomMessage

ErrorPolicy = Literal["abort", "continue"]


@dataclass(frozen=True, slots=True)
class DialectRules:
    """What one dialect sends and how (see the module table).

    fixed_rx_size: the rx_size every command asks (the RFC's 128), or None for exact
    sizes (0 for SET/START/STOP, the result size for GET). max_msg_size: the largest
    message the dialect's kernels accepted (the RFC's mailbox limit 128, else the
    104-byte SMT payload cap of protocol.md §1.5). keeps_unsorted_maps: the RFC's own
    DT ships a map whose CPU MHz do not ascend (protocol.md §5 point 13); for wire
    fidelity the configuration keeps it (with a warning) instead of refusing it.
    """

    algorithm: Algorithm
    map_rows: int
    common_event_order: tuple[str, ...]
    fixed_rx_size: int | None
    max_msg_size: int
    sends_group_cpumask: bool
    sends_be_stall_floor: bool
    sends_const_cyc: bool
    sends_freq_method: bool
    monitor_name_prefix: str
    error_policy: ErrorPolicy
    version_mismatch_fatal: bool
    keeps_unsorted_maps: bool

    @property
    def common_event_slots(self) -> int:
        """Slots in an event map message: 5 (28 B) or 4 (24 B)."""
        return len(self.common_event_order)

    def monitor_name(self, index: int) -> str:
        """The default mon_name of monitor `index`: mon_0 (v8) or monitor-0 (rfc2024)."""
        return f"{self.monitor_name_prefix}{index}"

    def rx_size(self, message: QcomMessage, result_size: int = 0) -> int:
        """The rx_size the agent asks for `message` whose result is `result_size` bytes."""
        if self.fixed_rx_size is not None:
            return self.fixed_rx_size
        return result_size if message is QcomMessage.GET_PARAM else 0


V8_RULES = DialectRules(
    algorithm=Algorithm.MEMLAT, map_rows=10,
    common_event_order=("inst", "cyc", "const_cyc", "fe_stall", "be_stall"),
    fixed_rx_size=None, max_msg_size=104, sends_group_cpumask=True,
    sends_be_stall_floor=True, sends_const_cyc=True, sends_freq_method=True,
    monitor_name_prefix="mon_", error_policy="abort", version_mismatch_fatal=True,
    keeps_unsorted_maps=False)

RFC2024_RULES = DialectRules(
    algorithm=Algorithm.MEMLAT_RFC, map_rows=6,
    common_event_order=("inst", "cyc", "fe_stall", "be_stall"),
    fixed_rx_size=128, max_msg_size=128, sends_group_cpumask=False,
    sends_be_stall_floor=False, sends_const_cyc=False, sends_freq_method=False,
    monitor_name_prefix="monitor-", error_policy="continue", version_mismatch_fatal=False,
    keeps_unsorted_maps=True)


class Dialect(StrEnum):
    """A wire dialect (decisions.md §1); `.rules` holds everything that differs."""

    V8 = "v8"
    RFC2024 = "rfc2024"

    @property
    def rules(self) -> DialectRules:
        """This dialect's frozen rules."""
        return V8_RULES if self is Dialect.V8 else RFC2024_RULES

    @property
    def algorithm(self) -> Algorithm:
        """The algorithm string this dialect sends."""
        return self.rules.algorithm

    @property
    def map_rows(self) -> int:
        """Rows in a MON_FREQ_MAP message: 10 (52 B) or 6 (36 B)."""
        return self.rules.map_rows

    @property
    def common_event_slots(self) -> int:
        """Slots in an event map message: 5 (28 B) or 4 (24 B)."""
        return self.rules.common_event_slots

    @property
    def common_event_order(self) -> tuple[str, ...]:
        """What each common-event slot counts (protocol.md §2.3; the RFC had no CONST_CYC)."""
        return self.rules.common_event_order

    @classmethod
    def for_algorithm(cls, value: int) -> Dialect | None:
        """The dialect whose algorithm string is `value`, or None."""
        for dialect in cls:
            if dialect.algorithm == value:
                return dialect
        return None


DIALECTS: tuple[str, ...] = tuple(d.value for d in Dialect)

"""Hand-built governor configurations for the governor tests.

x1e80100 ("hamoa") from protocol.md §3.2 and SM8550 ("kalama") from algorithm.md §3.3
with the post_boot tunables of §3.2 (used by the worked vectors of §3.6). Built by hand
on purpose, independent of the SoC profiles.
"""

from __future__ import annotations

from memlat.governor.spec import (
    UNUSED_EVENT,
    CommonEvents,
    GovernorConfig,
    GroupSpec,
    MonitorSpec,
)

_DDR_ROWS = ((999, 547), (1440, 768), (1671, 1555), (2189, 2092), (2516, 3187), (3860, 4224))
_LLCC_ROWS = ((999, 300), (1440, 466), (1671, 600), (2189, 806), (2516, 933), (3860, 1066))
_QOS_ROWS = ((2189, 0), (3860, 1))
_CLUSTERS = (0x00F, 0x0F0, 0xF00)


def _lat(mask: int, rows: tuple[tuple[int, int], ...], lo: int, hi: int, i: int) -> MonitorSpec:
    return MonitorSpec(cpumask=mask, map_rows=rows, min_freq=lo, max_freq=hi,
                       ipm_ceil=20_000_000, be_stall_floor=1, name=f"mon_{i}")


def hamoa_config() -> GovernorConfig:
    """x1e80100: 12 CPUs, groups ddr/llcc/ddr_qos, 10 monitors (protocol.md §3.2)."""
    ddr = GroupSpec(hw_type=0, name="ddr", monitors=(
        *(_lat(m, _DDR_ROWS, 200000, 4224000, i) for i, m in enumerate(_CLUSTERS)),
        MonitorSpec(cpumask=0xFFF, map_rows=((1440, 547), (2189, 768), (2516, 1555),
                                             (3860, 2092)),
                    min_freq=200000, max_freq=4224000, compute=True, name="mon_3"),
    ))
    llcc = GroupSpec(hw_type=1, name="llcc", monitors=tuple(
        _lat(m, _LLCC_ROWS, 300000, 1066000, i) for i, m in enumerate(_CLUSTERS)))
    qos = GroupSpec(hw_type=2, name="ddr_qos", monitors=tuple(
        _lat(m, _QOS_ROWS, 0, 1, i) for i, m in enumerate(_CLUSTERS)))
    return GovernorConfig(
        ncpus=12, groups=(ddr, llcc, qos),
        common=CommonEvents(inst=2, cyc=0, const_cyc=1, fe_stall=UNUSED_EVENT, be_stall=3),
        sample_ms=4, method=1, cluster_max_mhz=(3400,) * 12)


# SM8550 counter ids for the test trace: the CPUCP slots of algorithm.md §1.1
# (0x11 -> 0 cycles, 0x08 -> 2 instructions, 0x17 -> 4, 0x37 -> 6, 0x1000 -> 8).
SM8550_MISS_DDR = 8
SM8550_MISS_LLCC = 6
SM8550_MISS_L3 = 4


def _khz_rows(rows: tuple[tuple[int, int], ...], level: bool = False
              ) -> tuple[tuple[int, int], ...]:
    """DT kHz pairs -> (cpu MHz, mem MHz or level) (algorithm.md §2.2, §2.10)."""
    return tuple((c // 1000, m if level else m // 1000) for c, m in rows)


def sm8550_config() -> GovernorConfig:
    """SM8550 tables of algorithm.md §3.3 with the kalama post_boot tunables (§3.2)."""
    ddr_gold = _khz_rows(((883200, 547000), (1113600, 768000), (1344000, 1555000),
                          (1881600, 2092000), (2476800, 3187000), (2707200, 4224000)))
    ddr_lo, ddr_hi = 547000, 4224000
    ddr = GroupSpec(hw_type=0, name="ddr", miss_event=SM8550_MISS_DDR, monitors=(
        MonitorSpec(0x07, _khz_rows(((1113600, 547000), (1516800, 768000),
                                     (1824000, 1555000))), ddr_lo, ddr_hi, ipm_ceil=400,
                    name="silver"),
        MonitorSpec(0x78, ddr_gold, ddr_lo, ddr_hi, ipm_ceil=400, name="gold"),
        MonitorSpec(0x80, ddr_gold, ddr_lo, ddr_hi, ipm_ceil=400, freq_scale_pct=25,
                    freq_scale_floor_mhz=1500, freq_scale_ceil_mhz=2726, name="prime"),
        MonitorSpec(0xF8, _khz_rows(((1881600, 547000), (2707200, 1555000))), ddr_lo,
                    ddr_hi, compute=True, name="gold-compute"),
        MonitorSpec(0x80, _khz_rows(((2476800, 547000), (2707200, 4224000))), ddr_lo,
                    ddr_hi, ipm_ceil=25000, name="prime-latfloor"),
    ))
    llcc_lo, llcc_hi = 300000, 1066000
    llcc = GroupSpec(hw_type=1, name="llcc", miss_event=SM8550_MISS_LLCC, monitors=(
        MonitorSpec(0x07, _khz_rows(((614400, 300000), (1516800, 466000),
                                     (1824000, 600000))), llcc_lo, llcc_hi, ipm_ceil=400,
                    name="silver"),
        MonitorSpec(0xF8, _khz_rows(((652800, 300000), (1113600, 466000), (1344000, 600000),
                                     (1881600, 806000), (2476800, 933000),
                                     (2707200, 1066000))), llcc_lo, llcc_hi, ipm_ceil=400,
                    name="gold"),
        MonitorSpec(0xF8, _khz_rows(((1881600, 300000), (2707200, 600000))), llcc_lo,
                    llcc_hi, compute=True, name="gold-compute"),
    ))
    l3_gold = _khz_rows(((307200, 307200), (537600, 614400), (883200, 710400),
                         (1136000, 902400), (1344000, 998400), (1555200, 1228800),
                         (1996800, 1420800), (2342400, 1536000), (2707200, 1651200)))
    # L3 values are not whole MHz (e.g. 1420800 kHz) and the firmware map carries MHz
    # (protocol.md §2.3), so 1420800 becomes 1420 MHz -> target 1420000 kHz.
    l3_lo, l3_hi = 307200, 1651200
    l3_silver = _khz_rows(((307200, 307200), (403200, 403200), (614400, 614400),
                           (729400, 710400), (825600, 806400), (921600, 902400),
                           (1113600, 998400), (1228800, 1113600), (1324800, 1228800),
                           (1516800, 1420800), (1632000, 1536000), (1824000, 1651200)))
    l3 = GroupSpec(hw_type=2, name="l3", miss_event=SM8550_MISS_L3, monitors=(
        MonitorSpec(0x07, l3_silver, l3_lo, l3_hi, ipm_ceil=400, name="silver"),
        MonitorSpec(0x78, l3_gold, l3_lo, l3_hi, ipm_ceil=4000, name="gold"),
        MonitorSpec(0x80, l3_gold, l3_lo, l3_hi, ipm_ceil=20000, name="prime"),
        MonitorSpec(0x80, _khz_rows(((1996800, 307200), (2707200, 1651200))), l3_lo, l3_hi,
                    compute=True, name="prime-compute"),
    ))
    qos = GroupSpec(hw_type=3, name="ddr_qos", miss_event=SM8550_MISS_DDR, monitors=(
        MonitorSpec(0xF8, _khz_rows(((1881600, 0), (2707200, 1)), True), 0, 1, ipm_ceil=50,
                    name="gold"),
        MonitorSpec(0x80, _khz_rows(((1401600, 0), (2707200, 1)), True), 0, 1, ipm_ceil=100,
                    name="prime"),
        MonitorSpec(0x80, _khz_rows(((1996800, 0), (2707200, 1)), True), 0, 1,
                    ipm_ceil=25000, name="prime-latfloor"),
    ))
    return GovernorConfig(
        ncpus=8, groups=(ddr, llcc, l3, qos),
        common=CommonEvents(inst=2, cyc=0, const_cyc=UNUSED_EVENT, fe_stall=UNUSED_EVENT,
                            be_stall=UNUSED_EVENT),
        sample_ms=8, method=1, cluster_max_mhz=(2016,) * 3 + (2803,) * 4 + (3187,))

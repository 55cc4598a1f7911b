"""The reference governor: one window at a time, plain integer Python.

This is the executable form of algorithm.md §2.11 with the choices of decisions.md §2.
It favours readability over speed; `memlat.governor.engine` must agree with it on every
window (tests/governor/test_governor_differential.py checks that).

Integer conventions (algorithm.md §1.4):
* u32(x) = x mod 2**32, applied exactly where the firmware holds a value in a u32;
* every division by zero gives 0 (AArch64 UDIV semantics);
* method-0 frequency multiplies in u64 (the product wraps mod 2**64) before dividing.
"""

from __future__ import annotations

from dataclasses import dataclass

from memlat.governor.spec import (
    N_COUNTERS,
    UNUSED_EVENT,
    CounterWindow,
    GovernorConfig,
    GroupSpec,
    MonitorSpec,
)

U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF


def u32(x: int) -> int:
    """x reduced modulo 2**32 (a C u32 store)."""
    return x & U32


def div0(a: int, b: int) -> int:
    """a // b for non-negative integers, 0 when b <= 0 (algorithm.md §1.4)."""
    return a // b if b > 0 else 0


def mult_frac_100(n: int, d: int) -> int:
    """The kernel's mult_frac(100, n, d) with V3/V4 u32 casts (algorithm.md §1.4).

    n and d are first truncated to u32; both partial products are u32 and may wrap.
    """
    n, d = u32(n), u32(d)
    if d == 0:
        return 0
    q, r = 100 // d, 100 % d
    return u32(u32(q * n) + u32(r * n) // d)


def map_lookup(rows: tuple[tuple[int, int], ...], cand_mhz: int) -> int:
    """Value of the first row whose CPU MHz >= cand_mhz, else of the last row.

    A candidate of 0 therefore gives the first row (decisions.md §2). An empty table
    gives 0.
    """
    if not rows:
        return 0
    for cpu_mhz, value in rows:
        if cpu_mhz >= cand_mhz:
            return value
    return rows[-1][1]


def monitor_target(mon: MonitorSpec, best_mhz: int) -> int:
    """MAP(best) in kHz (or level), clamped to [min_freq, max_freq] (algorithm.md §2.1)."""
    value = map_lookup(mon.map_rows, best_mhz)
    mem = value if mon.is_level else value * 1000
    return min(max(mem, mon.min_freq), mon.max_freq)


def adaptive_snap(group: GroupSpec, vote: int) -> tuple[int, int]:
    """Adaptive quantizer, V3 rule without level_1 (algorithm.md §2.4 step 2).

    Returns (vote after the snap, the adaptive "current" level it records). With both
    knobs 0 the vote is unchanged and the recorded level is 0, so the rule is stateless.
    """
    low, high = group.adaptive_low_khz, group.adaptive_high_khz
    if vote < low:
        return low, low
    if vote < high:
        return high, high
    return vote, high


@dataclass(slots=True)
class CpuStats:
    """Derived per-CPU statistics of one window (algorithm.md §1.4)."""

    freq_mhz: int
    fe_pct: int
    be_pct: int
    ipm: list[int]  # per group
    wb_pct: list[int]  # per group


@dataclass(slots=True)
class WindowResult:
    """What one window decided.

    monitor_targets[g][m]: monitor m of group g's target (kHz or level);
    group_votes[g]: the group vote after the adaptive snap;
    changed[g]: whether that vote differs from the previous window's (first window:
    compared with 0).
    """

    monitor_targets: list[list[int]]
    group_votes: list[int]
    changed: list[bool]


def _counter(row: list[int], event: int) -> int:
    """Delta of counter `event` for one CPU, 0 for an unused slot or unknown id."""
    if event == UNUSED_EVENT or not 0 <= event < N_COUNTERS:
        return 0
    return row[event]


class ReferenceGovernor:
    """The emulated CPUCP memlat governor, stepped one window at a time.

    State: the stale IPM per CPU and group (decisions.md §2: kept when a window has no
    misses, initially 0), each monitor's last target (GET_CUR_FREQ), each group's last
    vote and adaptive current level (GET_ADAPTIVE_CUR_FREQ).
    """

    def __init__(self, config: GovernorConfig) -> None:
        self.config = config
        self._ipm: dict[tuple[int, int], int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget all state, as after boot."""
        cfg = self.config
        self._ipm = {}
        self._targets = [[0] * len(g.monitors) for g in cfg.groups]
        self._votes = [0] * len(cfg.groups)
        self._adaptive_cur = [0] * len(cfg.groups)

    def cur_freq(self, group: int, monitor: int) -> int:
        """The monitor's last target, kHz or level (GET_CUR_FREQ, protocol.md §2.4)."""
        return self._targets[group][monitor]

    def adaptive_cur(self, group: int) -> int:
        """The group's adaptive current level, kHz (GET_ADAPTIVE_CUR_FREQ)."""
        return self._adaptive_cur[group]

    def group_vote(self, group: int) -> int:
        """The group's last vote (0 before the first window)."""
        return self._votes[group]

    def cpu_stats(self, cpu: int, dt_us: int, row: list[int]) -> CpuStats:
        """Derive one CPU's statistics and update its stale IPM (algorithm.md §1.4)."""
        cfg = self.config
        ev = cfg.common
        cyc = _counter(row, ev.cyc)
        if cfg.method == 0:
            const = _counter(row, ev.const_cyc)
            cluster_max = cfg.cluster_max_mhz[cpu] if cpu < len(cfg.cluster_max_mhz) else 0
            # decisions.md §2 method 0; the firmware multiplies in u64 (wraps)
            freq = u32(div0((cyc * cluster_max) & U64, const))
        else:
            freq = u32(div0(cyc, dt_us))
        fe = 100 if ev.fe_stall == UNUSED_EVENT else mult_frac_100(
            _counter(row, ev.fe_stall), cyc)
        be = 100 if ev.be_stall == UNUSED_EVENT else mult_frac_100(
            _counter(row, ev.be_stall), cyc)
        inst = _counter(row, ev.inst)
        ipms: list[int] = []
        wbs: list[int] = []
        for g, grp in enumerate(cfg.groups):
            miss = _counter(row, grp.miss_event)
            if miss > 0:
                self._ipm[cpu, g] = u32(inst // miss)
            ipms.append(self._ipm.get((cpu, g), 0))  # stale when miss == 0 (V4)
            if grp.wb_event != UNUSED_EVENT and grp.acc_event != UNUSED_EVENT:
                wbs.append(mult_frac_100(_counter(row, grp.wb_event),
                                         _counter(row, grp.acc_event)))
            else:
                wbs.append(0)
        return CpuStats(freq, fe, be, ipms, wbs)

    @staticmethod
    def candidate(mon: MonitorSpec, st: CpuStats, g: int) -> int | None:
        """One CPU's candidate frequency for monitor `mon` of group g, or None.

        algorithm.md §2.1 steps 1-3: compute monitors and write-back-bound CPUs qualify
        unscaled; latency-bound CPUs (ipm <= ipm_ceil) may get the boost, which the stall
        floors gate (and only the boost).
        """
        f, ipm, wb = st.freq_mhz, st.ipm[g], st.wb_pct[g]
        if mon.compute or (wb >= mon.wb_pct and ipm <= mon.ipm_filter):
            return f
        if ipm > mon.ipm_ceil:
            return None
        cand = f
        if (mon.freq_scale_pct != 0
                and mon.freq_scale_floor_mhz < f < mon.freq_scale_ceil_mhz
                and (st.fe_pct >= mon.fe_stall_floor or st.be_pct >= mon.be_stall_floor)):
            diff = mon.ipm_ceil - ipm
            boost = div0(u32(f * diff * mon.freq_scale_pct), u32(mon.ipm_ceil * 100))
            cand = min(mon.freq_scale_ceil_mhz, u32(f + boost))
        return cand

    def step(self, window: CounterWindow) -> WindowResult:
        """Run one window: derive statistics, decide every monitor and group."""
        cfg = self.config
        deltas = window.deltas
        ncpus_present = int(deltas.shape[0])
        stats: dict[int, CpuStats] = {}
        for cpu in range(ncpus_present):
            row = [int(x) for x in deltas[cpu]]
            stats[cpu] = self.cpu_stats(cpu, int(window.dt_us[cpu]), row)

        targets: list[list[int]] = []
        votes: list[int] = []
        changed: list[bool] = []
        for g, grp in enumerate(cfg.groups):
            group_targets: list[int] = []
            vote = 0
            for mon in grp.monitors:
                best = 0
                for cpu in mon.cpus():
                    st = stats.get(cpu)
                    if st is None:  # a CPU the trace lacks is idle: it adds nothing
                        continue
                    cand = self.candidate(mon, st, g)
                    if cand is not None and cand > best:
                        best = cand
                target = monitor_target(mon, best)
                group_targets.append(target)
                vote = max(vote, target)
            vote, self._adaptive_cur[g] = adaptive_snap(grp, vote)
            changed.append(vote != self._votes[g])
            self._votes[g] = vote
            self._targets[g] = group_targets
            targets.append(group_targets)
            votes.append(vote)
        return WindowResult(targets, votes, changed)

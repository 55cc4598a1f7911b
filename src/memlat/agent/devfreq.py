"""Devfreq view of the buses: the statistics and sysfs files Linux would show.

The remote governor (protocol.md §3.7) records, for each bus, the frequency the firmware
reports; devfreq keeps a transition matrix and time-in-state per OPP. This module
reproduces Linux drivers/devfreq/devfreq.c: `devfreq_update_status()` for the
accounting and `trans_stat_show()` (and the other attribute `*_show()` functions) for
the text, byte for byte. Time is the platform's simulated clock in milliseconds, i.e.
jiffies at HZ=1000, so `jiffies64_to_msecs()` is the identity.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAGE_SIZE = 4096  # sysfs buffer; trans_stat_show fails with -EFBIG at PAGE_SIZE - 1
GOVERNOR_REMOTE = "remote"
TIMER_NAMES = ("deferrable", "delayed")  # devfreq.c timer_name[]
HZ_PER_KHZ = 1000  # PM QoS frequency requests are in kHz


def find_freq_ceil(table: Sequence[int], freq: int) -> int | None:
    """dev_pm_opp_find_freq_ceil(): the lowest OPP >= freq, or None (-ERANGE)."""
    above = [f for f in table if f >= freq]
    return min(above) if above else None


def find_freq_floor(table: Sequence[int], freq: int) -> int | None:
    """dev_pm_opp_find_freq_floor(): the highest OPP <= freq, or None (-ERANGE)."""
    below = [f for f in table if f <= freq]
    return max(below) if below else None


def recommended_opp(table: Sequence[int], freq: int, *, upper_bound: bool = False) -> int:
    """devfreq_recommended_opp(): the OPP a requested frequency lands on.

    Without DEVFREQ_FLAG_LEAST_UPPER_BOUND `freq` is a lower bound: the ceiling OPP,
    or the floor when none is above; with it (upper_bound) the floor, or the ceiling
    when none is below. An empty table returns `freq` unchanged.
    """
    if not table:
        return freq
    first, second = (find_freq_floor, find_freq_ceil) if upper_bound else \
        (find_freq_ceil, find_freq_floor)
    found = first(table, freq)
    if found is None:
        found = second(table, freq)
    assert found is not None
    return found


@dataclass
class DevfreqStats:
    """`struct devfreq_stats` plus `previous_freq`, updated as devfreq does.

    freq_table: the OPP frequencies in Hz, ascending (devfreq set_freq_table order).
    """

    freq_table: tuple[int, ...]
    previous_freq: int = 0
    last_update_ms: int = 0
    total_trans: int = 0
    trans_table: list[int] = field(default_factory=list)
    time_in_state_ms: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.freq_table)
        if not self.trans_table:
            self.trans_table = [0] * (n * n)
        if not self.time_in_state_ms:
            self.time_in_state_ms = [0] * n

    @property
    def max_state(self) -> int:
        """Number of OPPs."""
        return len(self.freq_table)

    def level(self, freq: int) -> int:
        """devfreq_get_freq_level(): the index of `freq` in the table, or -EINVAL."""
        try:
            return self.freq_table.index(freq)
        except ValueError:
            return -errno.EINVAL

    def update_status(self, freq: int, now_ms: int) -> int:
        """devfreq_update_status(): charge time to the previous OPP, count a transition.

        Returns 0 or a negative errno (previous or new frequency not an OPP); like the
        kernel, the update time moves on in every case.
        """
        ret = 0
        if self.previous_freq:
            prev = self.level(self.previous_freq)
            if prev < 0:
                ret = prev
            else:
                self.time_in_state_ms[prev] += now_ms - self.last_update_ms
                lev = self.level(freq)
                if lev < 0:
                    ret = lev
                elif lev != prev:
                    self.trans_table[prev * self.max_state + lev] += 1
                    self.total_trans += 1
        self.last_update_ms = now_ms
        return ret

    def reset(self, now_ms: int) -> None:
        """trans_stat_store("0"): clear the counters (previous_freq is kept)."""
        n = self.max_state
        self.trans_table = [0] * (n * n)
        self.time_in_state_ms = [0] * n
        self.total_trans = 0
        self.last_update_ms = now_ms


def render_trans_stat(stats: DevfreqStats) -> str:
    """trans_stat_show() text for `stats` as it stands (no time update).

    Raises OSError(EFBIG) when the text reaches PAGE_SIZE - 1 bytes, as mainline
    Linux does since its PAGE_SIZE guard was added.
    """
    n = stats.max_state
    if n == 0:
        return "Not Supported.\n"
    out = ["     From  :   To\n", "           :"]
    out += [f"{f:10d}" for f in stats.freq_table]
    out.append("   time(ms)\n")
    for i, freq in enumerate(stats.freq_table):
        out.append("*" if freq == stats.previous_freq else " ")
        out.append(f"{freq:10d}:")
        out += [f"{stats.trans_table[i * n + j]:10d}" for j in range(n)]
        out.append(f"{stats.time_in_state_ms[i]:10d}\n")
    out.append(f"Total transition : {stats.total_trans}\n")
    text = "".join(out)
    if len(text) >= PAGE_SIZE - 1:
        raise OSError(errno.EFBIG, "devfreq transition table exceeds PAGE_SIZE")
    return text


def _freq_list(freqs: Iterable[int]) -> str:
    """available_frequencies_show(): "%lu " each, trailing space replaced by newline."""
    text = "".join(f"{f} " for f in freqs)
    return (text[:-1] if text else text) + "\n"


@dataclass
class DevfreqDevice:
    """One bus as a devfreq device driven by the remote governor (protocol.md §3.7).

    min_freq/max_freq are the user's PM QoS requests in Hz (None: no request), as
    `min_freq_store()`/`max_freq_store()` leave them (see store_min_freq); they clamp
    the recorded value only, nothing is sent to the firmware.
    """

    name: str
    stats: DevfreqStats
    polling_ms: int
    governor: str = GOVERNOR_REMOTE
    timer: int = 0
    min_freq: int | None = None
    max_freq: int | None = None
    stop_polling: bool = False

    @classmethod
    def create(cls, name: str, opps_hz: Sequence[int], polling_ms: int, initial_freq: int,
               now_ms: int = 0) -> DevfreqDevice:
        """devfreq_add_device(): sorted OPP table, previous_freq = initial_freq."""
        stats = DevfreqStats(tuple(sorted(opps_hz)), previous_freq=initial_freq,
                             last_update_ms=now_ms)
        return cls(name, stats, polling_ms)

    def store_min_freq(self, value_hz: int) -> None:
        """min_freq_store(): the request is kept in kHz, rounded down; 0 removes it."""
        self.min_freq = (value_hz // HZ_PER_KHZ) * HZ_PER_KHZ or None

    def store_max_freq(self, value_hz: int) -> None:
        """max_freq_store(): kHz rounded up (DIV_ROUND_UP) so the interval never shrinks;
        0 means no limit (PM_QOS_MAX_FREQUENCY_DEFAULT_VALUE)."""
        self.max_freq = -(-value_hz // HZ_PER_KHZ) * HZ_PER_KHZ if value_hz else None

    def freq_range(self) -> tuple[int, int]:
        """devfreq_get_freq_range(): the OPP table's range (whichever order it is in),
        narrowed by the PM QoS requests, then by the OPP interface limits (the enabled
        OPPs: the whole table here); when min > max, max takes precedence."""
        table = self.stats.freq_table
        lo, hi = (min(table), max(table)) if table else (0, 0)
        if self.min_freq is not None:
            lo = max(lo, self.min_freq)
        if self.max_freq is not None:
            hi = min(hi, self.max_freq)
        if table:
            lo, hi = max(lo, min(table)), min(hi, max(table))  # scaling_min/max_freq
        return min(lo, hi), hi

    def record(self, freq: int, now_ms: int) -> bool:
        """update_devfreq() with TRACK_REMOTE: clamp, account, remember; True on a change.

        The value is clamped to freq_range() (below min -> min, above max -> max) and,
        as the remote governor skips profile->target(), not snapped to an OPP: a value
        that is not an OPP is still remembered (the kernel logs "Couldn't update
        frequency transition information" and skips the statistics).
        """
        lo, hi = self.freq_range()
        if freq < lo:
            freq = lo
        if freq > hi:
            freq = hi
        old = self.stats.previous_freq
        self.stats.update_status(freq, now_ms)
        self.stats.previous_freq = freq
        return freq != old

    def trans_stat(self, now_ms: int) -> str:
        """Reading trans_stat, as trans_stat_show() does.

        "Not Supported." without OPPs; unless polling is stopped, first
        devfreq_update_status(previous_freq) brings time-in-state up to now, and when
        that fails (previous_freq is not an OPP) the read is empty (it returns 0).
        """
        if not self.stats.max_state:
            return render_trans_stat(self.stats)
        if not self.stop_polling and self.stats.update_status(self.stats.previous_freq,
                                                              now_ms):
            return ""
        return render_trans_stat(self.stats)

    def files(self, now_ms: int, cur_freq: int | None = None) -> dict[str, str]:
        """The sysfs attribute files, name -> content (target_freq omitted: -EINVAL).

        cur_freq: what a fresh get_cur_freq returned; None (the read failed) shows
        previous_freq, as cur_freq_show() does. trans_stat may be "" (an empty read).
        """
        lo, hi = self.freq_range()
        cur = self.stats.previous_freq if cur_freq is None else cur_freq
        return {
            "name": f"{self.name}\n",
            "governor": f"{self.governor}\n",
            "available_governors": f"{self.governor}\n",  # immutable governor: only itself
            "available_frequencies": _freq_list(self.stats.freq_table),
            "cur_freq": f"{cur}\n",
            "min_freq": f"{lo}\n",
            "max_freq": f"{hi}\n",
            "polling_interval": f"{self.polling_ms}\n",
            "timer": f"{TIMER_NAMES[self.timer]}\n",
            "trans_stat": self.trans_stat(now_ms),
        }


def write_tree(devices: Iterable[DevfreqDevice], out: Path | str, now_ms: int) -> list[Path]:
    """Write each device's files under `out/<name>/`; returns the paths written."""
    written: list[Path] = []
    for dev in devices:
        folder = Path(out) / dev.name
        folder.mkdir(parents=True, exist_ok=True)
        for fname, text in dev.files(now_ms).items():
            path = folder / fname
            path.write_text(text)
            written.append(path)
    return written

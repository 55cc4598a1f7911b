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

    min_freq/max_freq are the local PM-QoS clamps in Hz (None: the OPP range); they
    clamp the recorded value only, nothing is sent to the firmware.
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

    def freq_range(self) -> tuple[int, int]:
        """devfreq_get_freq_range(): the OPP range narrowed by the user clamps."""
        table = self.stats.freq_table
        lo, hi = (table[0], table[-1]) if table else (0, 0)
        if self.min_freq is not None:
            lo = max(lo, self.min_freq)
        if self.max_freq is not None:
            hi = min(hi, self.max_freq)
        return lo, hi

    def record(self, freq: int, now_ms: int) -> bool:
        """update_devfreq() with TRACK_REMOTE: clamp, account, remember; True on a change.

        A frequency that is not an OPP is still remembered (the kernel logs "Couldn't
        update frequency transition information" and skips the statistics).
        """
        lo, hi = self.freq_range()
        freq = min(max(freq, lo), hi)
        old = self.stats.previous_freq
        self.stats.update_status(freq, now_ms)
        self.stats.previous_freq = freq
        return freq != old

    def trans_stat(self, now_ms: int) -> str:
        """Reading trans_stat: bring time-in-state up to now, then render."""
        if self.stats.max_state and not self.stop_polling:
            self.stats.update_status(self.stats.previous_freq, now_ms)
        return render_trans_stat(self.stats)

    def files(self, now_ms: int, cur_freq: int | None = None) -> dict[str, str]:
        """The sysfs attribute files, name -> content (target_freq omitted: -EINVAL).

        cur_freq: what a fresh get_cur_freq returned (None: the recorded value).
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

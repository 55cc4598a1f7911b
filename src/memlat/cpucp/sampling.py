"""The emulated CPUCP's sampling loop: every sample_ms, one governor window.

While started, every `sample_ms` of platform time the loop pulls one window of counter
deltas from a `CounterSource`, runs the governor (`ReferenceGovernor.step`), records
each monitor's target (what GET_CUR_FREQ returns) and each group's vote, and tells
subscribers about every group vote that changed (protocol.md §2.5 step 3,
algorithm.md §2.4 step 4).

Two ways to drive it:
* simulated time: `advance(ns)` moves a `SimClock` forward and runs every window that
  falls due on the way, each at its exact due time (deterministic);
* wall-clock time: `start_thread()` runs a background thread that sleeps until the next
  window is due; missed windows are skipped rather than replayed (`stop_thread()`).

Windows are due at start + k x sample_ms; each covers the time since the previous one
(dt_us). A new sample_ms applies from the window after the next one. State changes
and windows are serialised by one re-entrant lock, shared with the SCMI service, so
a command never sees half a window.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from memlat.clock import Clock, SimClock
from memlat.governor.reference import ReferenceGovernor, WindowResult
from memlat.governor.spec import N_COUNTERS, CounterWindow, GovernorConfig

NS_PER_MS = 1_000_000

#: A subscriber gets (time_ns, group hw_type, new vote): kHz, or a 0/1 level.
VoteSubscriber = Callable[[int, int, int], None]


@runtime_checkable
class CounterSource(Protocol):
    """Where the firmware's per-CPU counter deltas come from.

    `window` returns one window of deltas ending at `now_ns` (dt_us long nominally, for
    `ncpus` CPUs), or None when the source has nothing for this window; the loop then
    skips the window (no governor step, targets and votes unchanged).
    """

    def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow | None:
        """One window of counter deltas, or None."""
        ...


@dataclass(frozen=True, slots=True)
class VoteEvent:
    """A group vote that changed: when, which group (hw_type), and the new value."""

    time_ns: int
    hw_type: int
    value: int


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """What one window decided: its time, and (hw_type, vote) per group."""

    time_ns: int
    votes: tuple[tuple[int, int], ...]


def idle_window(dt_us: int, ncpus: int) -> CounterWindow:
    """A window in which every CPU was idle: all deltas 0."""
    return CounterWindow(np.full(ncpus, dt_us, dtype=np.int64),
                         np.zeros((ncpus, N_COUNTERS), dtype=np.uint64))


class SamplingLoop:
    """Runs the governor every sample_ms while started (see the module docstring).

    `source` None means every window is idle (all deltas zero).
    """

    def __init__(self, clock: Clock, source: CounterSource | None = None, *,
                 lock: threading.RLock | None = None, history: int = 4096) -> None:
        self.clock = clock
        self.source = source
        self.lock = lock if lock is not None else threading.RLock()
        self.subscribers: list[VoteSubscriber] = []
        self.history: deque[WindowRecord] = deque(maxlen=history)
        self.windows_run = 0
        self.last_result: WindowResult | None = None
        self._config: GovernorConfig | None = None
        self._governor: ReferenceGovernor | None = None
        self._next_due: int | None = None
        self._last_ns = 0  # end of the previous window (or the START time)
        self._targets: dict[tuple[int, int], int] = {}
        self._votes: dict[int, int] = {}
        self._adaptive: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._wake = threading.Event()

    # -- control (called by the service under its lock) -------------------------------
    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._next_due is not None

    @property
    def next_due_ns(self) -> int | None:
        """Platform time of the next window, None when stopped."""
        return self._next_due

    def start(self, config: GovernorConfig) -> None:
        """Begin sampling with `config`; the first window is due sample_ms from now.

        Starting an already running loop changes nothing. The governor starts fresh
        (stale IPMs forgotten); last targets and votes are kept, so only real changes
        are reported.
        """
        with self.lock:
            if self.running:
                return
            self._config = config
            self._governor = ReferenceGovernor(config)
            self._last_ns = self.clock.now_ns()
            self._next_due = self._last_ns + config.sample_ms * NS_PER_MS
        self._wake.set()

    def stop(self) -> None:
        """Stop sampling; targets and votes stay readable."""
        with self.lock:
            self._next_due = None
        self._wake.set()

    def reconfigure(self, config: GovernorConfig) -> None:
        """Use a new configuration from the next window on (the governor restarts)."""
        with self.lock:
            if config == self._config:
                return
            self._config = config
            self._governor = ReferenceGovernor(config)
        self._wake.set()

    # -- readback ---------------------------------------------------------------------
    def cur_freq(self, hw_type: int, mon_idx: int) -> int | None:
        """The monitor's last target (kHz or level), None before its first window."""
        with self.lock:
            return self._targets.get((hw_type, mon_idx))

    def group_vote(self, hw_type: int) -> int | None:
        """The group's last vote, None before its first window."""
        with self.lock:
            return self._votes.get(hw_type)

    def adaptive_cur(self, hw_type: int) -> int | None:
        """The group's adaptive current level in kHz, None before its first window."""
        with self.lock:
            return self._adaptive.get(hw_type)

    def subscribe(self, callback: VoteSubscriber) -> None:
        """Call `callback(time_ns, hw_type, value)` on every group vote change."""
        self.subscribers.append(callback)

    def unsubscribe(self, callback: VoteSubscriber) -> None:
        """Stop calling `callback`."""
        self.subscribers.remove(callback)

    # -- running windows --------------------------------------------------------------
    def _run_window(self, time_ns: int) -> list[VoteEvent]:
        """One window at `time_ns` (lock held). Returns the vote changes."""
        config, governor = self._config, self._governor
        assert config is not None and governor is not None
        # the window covers the time since the previous one (sample_ms unless it changed)
        dt_us = max(1, (time_ns - self._last_ns) // 1000)
        self._last_ns = time_ns
        window = (idle_window(dt_us, config.ncpus) if self.source is None
                  else self.source.window(time_ns, dt_us, config.ncpus))
        if window is None:
            return []
        result = governor.step(window)
        self.windows_run += 1
        self.last_result = result
        events: list[VoteEvent] = []
        votes: list[tuple[int, int]] = []
        for g, group in enumerate(config.groups):
            hw = group.hw_type
            for m, target in enumerate(result.monitor_targets[g]):
                self._targets[hw, m] = target
            vote = result.group_votes[g]
            self._adaptive[hw] = governor.adaptive_cur(g)
            votes.append((hw, vote))
            # the first window after boot reports every group (no vote existed before)
            if self._votes.get(hw) != vote:
                self._votes[hw] = vote
                events.append(VoteEvent(time_ns, hw, vote))
        self.history.append(WindowRecord(time_ns, tuple(votes)))
        return events

    def _notify(self, events: list[VoteEvent]) -> None:
        for event in events:
            for callback in list(self.subscribers):
                callback(event.time_ns, event.hw_type, event.value)

    def run_due(self, *, catch_up: bool = True) -> int:
        """Run every window due at the clock's current time; returns how many ran.

        With catch_up False (wall-clock mode) at most one window runs and the schedule
        restarts from now, so a stalled host does not replay a burst of stale windows.
        """
        ran = 0
        while True:
            with self.lock:
                due = self._next_due
                now = self.clock.now_ns()
                if due is None or due > now or self._config is None:
                    break
                events = self._run_window(due)
                period = self._config.sample_ms * NS_PER_MS
                self._next_due = due + period
                if not catch_up and self._next_due <= now:
                    self._next_due = now + period
            ran += 1
            self._notify(events)
            if not catch_up:
                break
        return ran

    def advance(self, ns: int) -> int:
        """Simulated time: move the SimClock forward by `ns`, running each window that
        falls due at its exact time. Returns the number of windows run."""
        clock = self.clock
        if not isinstance(clock, SimClock):
            raise TypeError("advance() needs a SimClock; a WallClock moves by itself")
        target = clock.now_ns() + ns
        ran = 0
        while True:
            due = self._next_due
            if due is None or due > target:
                break
            clock.set(max(due, clock.now_ns()))
            ran += self.run_due()
        clock.set(target)
        return ran

    # -- wall-clock mode --------------------------------------------------------------
    def start_thread(self) -> None:
        """Run windows in a background thread as the clock reaches them (wall-clock mode)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._thread_main, name="cpucp-sampling",
                                        daemon=True)
        self._thread.start()

    def stop_thread(self, timeout_s: float = 2.0) -> None:
        """Stop the background thread and wait for it."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _thread_main(self) -> None:
        while not self._halt.is_set():
            due = self._next_due
            wait_s = 1.0 if due is None else max(0.0, (due - self.clock.now_ns()) / 1e9)
            if wait_s > 0:
                self._wake.wait(wait_s)
                self._wake.clear()
                continue
            self.run_due(catch_up=False)

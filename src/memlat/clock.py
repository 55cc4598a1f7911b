"""Clocks: one interface, `now_ns()`, for simulated and real time.

The emulated CPUCP reads its time (GET_TIMESTAMP, sampling deadlines) through a Clock,
so tests and simulations advance time explicitly (`SimClock`) while a platform serving
real agents uses the host's monotonic clock (`WallClock`).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the time in nanoseconds (monotonic, non-decreasing)."""

    def now_ns(self) -> int:
        """Current time in nanoseconds."""
        ...


class SimClock:
    """Simulated time: starts at `start_ns` and moves only when told to. Thread-safe."""

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {start_ns}")
        self._now = start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """Current simulated time in nanoseconds."""
        return self._now

    def advance(self, ns: int) -> int:
        """Move forward by `ns` (>= 0); returns the new time."""
        if ns < 0:
            raise ValueError(f"a clock cannot go back ({ns} ns)")
        with self._lock:
            self._now += ns
            return self._now

    def set(self, ns: int) -> None:
        """Move to absolute time `ns`, which must not be in the past."""
        with self._lock:
            if ns < self._now:
                raise ValueError(f"a clock cannot go back (now {self._now}, asked {ns})")
            self._now = ns


class WallClock:
    """Host monotonic time (`time.monotonic_ns`), optionally relative to creation."""

    def __init__(self, *, from_zero: bool = False) -> None:
        self._origin = time.monotonic_ns() if from_zero else 0

    def now_ns(self) -> int:
        """Nanoseconds of the host's monotonic clock (minus the origin)."""
        return time.monotonic_ns() - self._origin

"""`memlat bench`: benchmark suites, each a function returning a dict of figures.

Figures are throughputs and ratios against a baseline measured in the same run, never
absolute timings in tests. Each area adds a module here and lists it in SUITES.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# suite name -> "module:function"; the function takes `quick: bool` and returns a dict
SUITES: dict[str, str] = {
    "governor": "memlat.bench.governor:run",
    "transports": "memlat.bench.transports:run",
    "sim": "memlat.bench.sim:run",
    "faults": "memlat.bench.faults:run",
}


def load_suite(name: str) -> Callable[..., dict[str, Any]]:
    """Import the function of suite `name`."""
    module_name, func = SUITES[name].split(":")
    return getattr(importlib.import_module(module_name), func)


def run_all(names: list[str] | None = None, *, quick: bool = False) -> dict[str, Any]:
    """Run the named suites (all by default) and merge their figures into one dict."""
    figures: dict[str, Any] = {}
    for name in names or list(SUITES):
        try:
            suite = load_suite(name)
        except (ImportError, AttributeError):
            continue  # the suite's issue has not landed yet
        figures.update(suite(quick=quick))
    return figures

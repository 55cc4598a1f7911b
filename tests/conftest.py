"""Shared test configuration: deterministic hypothesis, repository paths."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile(
    "memlat",
    derandomize=True,  # tests are deterministic: fixed example generation
    deadline=None,  # no timed assertions; speed is measured by `memlat bench`
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("memlat")

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO.parent / "shared" / "spec"

"""Transport URIs of `memlat probe --transport` (decisions.md §5) to transports.

- ``inproc``: an in-process platform built by `platform_factory` (required for inproc)
- ``unix:PATH``: `UnixTransport` to `memlat platform serve --unix PATH`
- ``shm:PATH``: `ShmTransport` to `memlat platform serve --shm PATH`
- ``raw:DIR``: `RawTransport` on a Linux SCMI raw-mode directory, e.g.
  ``raw:/sys/kernel/debug/scmi/0`` (or a `memlat platform serve --raw-fuse DIR` tree)
"""

from __future__ import annotations

from collections.abc import Callable

from memlat.errors import ConfigError
from memlat.scmi.platform import Platform
from memlat.scmi.transport import Transport
from memlat.transports.inproc import InProcessTransport
from memlat.transports.raw import RawTransport
from memlat.transports.shm import ShmTransport
from memlat.transports.unix import UnixTransport

SCHEMES = ("inproc", "unix", "shm", "raw")


def parse_uri(uri: str) -> tuple[str, str]:
    """Split a transport URI into (scheme, path); ConfigError names what is wrong."""
    if uri == "inproc":
        return "inproc", ""
    scheme, sep, path = uri.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"unknown transport {uri!r}; use inproc, unix:PATH, shm:PATH or raw:DIR",
            source="--transport",
        )
    if scheme == "inproc":
        raise ConfigError("inproc takes no path", source="--transport", location=uri)
    if not path:
        raise ConfigError(f"{scheme}: needs a path, e.g. {scheme}:/tmp/memlat",
                          source="--transport", location=uri)
    return scheme, path


def open_transport(uri: str, *, platform_factory: Callable[[], Platform] | None = None,
                   **options: object) -> Transport:
    """Open the transport named by `uri`. Extra `options` go to the transport class."""
    scheme, path = parse_uri(uri)
    if scheme == "inproc":
        if platform_factory is None:
            raise ConfigError("inproc needs a platform factory", source="--transport",
                              location=uri)
        return InProcessTransport(platform_factory(), **options)  # type: ignore[arg-type]
    if scheme == "unix":
        return UnixTransport(path, **options)  # type: ignore[arg-type]
    if scheme == "shm":
        return ShmTransport(path, **options)  # type: ignore[arg-type]
    return RawTransport(path, **options)  # type: ignore[arg-type]


def suggested_timeout_s(transport: Transport, default: float = 0.030) -> float:
    """A sensible agent timeout for `transport`: its own hint, else `default`."""
    hint = getattr(transport, "suggested_timeout_s", None)
    return float(hint) if hint else default

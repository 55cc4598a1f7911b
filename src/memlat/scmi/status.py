"""SCMI status codes and their Linux errno mapping (protocol.md §1.2)."""

from __future__ import annotations

import errno
from enum import IntEnum

from memlat.errors import MemlatError


class Status(IntEnum):
    """The s32 status word that opens every response payload."""

    SUCCESS = 0
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    DENIED = -3
    NOT_FOUND = -4
    OUT_OF_RANGE = -5
    BUSY = -6
    COMMS_ERROR = -7
    GENERIC_ERROR = -8
    HARDWARE_ERROR = -9
    PROTOCOL_ERROR = -10
    IN_USE = -11
    PARTIAL = -12

    @classmethod
    def describe(cls, value: int) -> str:
        """`NAME (value)` for a known status, `unknown status value` otherwise."""
        try:
            return f"{cls(value).name} ({value})"
        except ValueError:
            return f"unknown status {value}"

    @property
    def errno(self) -> int:
        """The negative Linux errno that scmi_to_linux_errno() gives."""
        return to_linux_errno(int(self))


# Linux drivers/firmware/arm_scmi/driver.c scmi_linux_errmap; IN_USE and PARTIAL are
# not in the mainline table (2026), so they fall to -EIO like any unknown value.
_LINUX_ERRNO: dict[int, int] = {
    0: 0,
    -1: -errno.EOPNOTSUPP,
    -2: -errno.EINVAL,
    -3: -errno.EACCES,
    -4: -errno.ENOENT,
    -5: -errno.ERANGE,
    -6: -errno.EBUSY,
    -7: -errno.ECOMM,
    -8: -errno.EIO,
    -9: -errno.EREMOTEIO,
    -10: -errno.EPROTO,
}


def to_linux_errno(status: int) -> int:
    """Map an SCMI status to the errno Linux reports; anything unknown is -EIO."""
    return _LINUX_ERRNO.get(status, -errno.EIO)


class ScmiStatusError(MemlatError):
    """A command answered with a non-SUCCESS status; `status` is the raw int32."""

    def __init__(self, what: str, status: int):
        self.what = what
        self.status = status
        super().__init__(f"{what} failed: {Status.describe(status)}")

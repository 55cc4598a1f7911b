"""Message log lines in the style of the kernel's `scmi_msg_dump` trace event.

include/trace/events/scmi.h prints
``id=%d ch=%02X pt=%02X t=%s msg_id=%02X seq=%04X s=%d pyld=%s`` with the payload as
plain lower-case hex (`__print_hex_str`). Tags: "CMND" for a command, "RESP" for its
reply ("cmnd"/"resp" for raw-mode traffic, as raw_mode.c logs). A command line carries
status 0 and the parameters; a reply line the status and the values after it. All our
traffic uses one channel, the base protocol's (ch=10), like a single-channel mailbox.
"""

from __future__ import annotations

from memlat.scmi.message import Message

BASE_CHANNEL = 0x10


def msg_dump(*, instance: int, channel: int, protocol_id: int, tag: str, message_id: int,
             seq: int, status: int, payload: bytes) -> str:
    """One scmi_msg_dump line."""
    return (f"id={instance} ch={channel:02X} pt={protocol_id:02X} t={tag} "
            f"msg_id={message_id:02X} seq={seq:04X} s={status} pyld={payload.hex()}")


def exchange_lines(command: Message, reply: Message | None, *, instance: int = 0,
                   raw: bool = False) -> list[str]:
    """The command line and, when there is one, the reply line."""
    h = command.header
    cmd_tag, resp_tag = ("cmnd", "resp") if raw else ("CMND", "RESP")
    lines = [msg_dump(instance=instance, channel=BASE_CHANNEL, protocol_id=h.protocol_id,
                      tag=cmd_tag, message_id=h.message_id, seq=h.token, status=0,
                      payload=command.payload)]
    if reply is not None:
        status = reply.status if len(reply.payload) >= 4 else 0
        lines.append(msg_dump(instance=instance, channel=BASE_CHANNEL,
                              protocol_id=reply.header.protocol_id, tag=resp_tag,
                              message_id=reply.header.message_id, seq=reply.header.token,
                              status=status, payload=reply.values))
    return lines

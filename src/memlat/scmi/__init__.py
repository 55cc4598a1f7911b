"""ARM SCMI (DEN0056): codecs without I/O, the agent and platform cores, transports.

Module map: header (32-bit message header), status (status codes and errno), message
(a header plus payload, to and from bytes), smt (the shared-memory channel layout),
transport (the one interface every transport implements), inproc (bytes through an SMT
buffer in one process), platform (the firmware-side dispatcher), agent (the OS-side
core), protocols/ (one module per protocol, codec plus both sides).
"""

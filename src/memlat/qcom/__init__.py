"""The QCOM generic extension (SCMI vendor protocol 0x80) and the emulated CPUCP memlat.

Module map: ids (message, param, hw_type, algorithm and dialect constants), codec (the
16-byte QCOM header and the typed param payloads, no I/O), client (agent-side
SET/GET/START/STOP over `memlat.scmi.agent.Agent`), cpucp (the platform-side memlat
service: state, validation, GET paths), sampling (the firmware's sampling loop over a
counter source), service (`make_cpucp_platform`: a Platform with base and 0x80).
"""

"""One module per SCMI protocol: its codec, its platform-side handler, its agent-side client.

base (0x10): discovery and permissions, plus `make_platform`; identity: the configurable
platform identity the base protocol reports. The QCOM generic extension (0x80) lives in
its own module and registers on a platform built by `base.make_platform`.
"""

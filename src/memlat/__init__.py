"""memlat: the Qualcomm SCMI memlat system, end to end, in Python.

Data flows one way: config -> agent -> wire -> platform -> governor -> votes -> analysis.
See docs/architecture.md for the module map.
"""

__version__ = "0.1.0"

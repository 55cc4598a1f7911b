"""The memlat governor the emulated CPUCP runs (algorithm.md §2.11, decisions.md §2).

spec (the configuration the governor runs on, plain data), reference (one window at a
time, readable, integer-exact), engine (whole traces at once with numpy).
"""

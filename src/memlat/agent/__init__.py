"""The memlat agent (the OS side): probe, remote-governor readback, devfreq view.

probe.py programs the firmware over SCMI (protocol.md §3.5 / §4.4), readback.py polls
GET_CUR_FREQ like the "remote" devfreq governor (protocol.md §3.7), devfreq.py renders
the devfreq sysfs files from what the readback recorded.
"""

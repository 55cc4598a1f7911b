"""devfreq accounting and sysfs text (Linux drivers/devfreq/devfreq.c rules)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from memlat.agent.devfreq import DevfreqDevice, DevfreqStats, render_trans_stat, write_tree

SNAPSHOTS = Path(__file__).parent / "snapshots"
HAMOA_DDR_HZ = [f * 1_000_000 for f in (200, 547, 768, 1555, 1708, 2092, 2736, 3187, 3686,
                                        4224)]


def kernel_trans_stat(table: list[int], prev: int, trans: list[int], tis: list[int],
                      total: int) -> str:
    """The C format strings of trans_stat_show(), applied with printf semantics."""
    n = len(table)
    s = "     From  :   To\n" + "           :"
    for f in table:
        s += "%10lu".replace("l", "") % f
    s += "   time(ms)\n"
    for i in range(n):
        s += "*" if table[i] == prev else " "
        s += "%10lu:".replace("l", "") % table[i]
        for j in range(n):
            s += "%10u" % trans[i * n + j]  # noqa: UP031 - the C format, literally
        s += "%10llu\n".replace("ll", "") % tis[i]
    s += "Total transition : %u\n" % total  # noqa: UP031
    return s


def test_small_table_by_hand() -> None:
    stats = DevfreqStats((1, 100), previous_freq=100, total_trans=3,
                         trans_table=[0, 2, 1, 0], time_in_state_ms=[12, 30])
    expected = (
        "     From  :   To\n"
        "           :         1       100   time(ms)\n"
        "          1:         0         2        12\n"
        "*       100:         1         0        30\n"
        "Total transition : 3\n"
    )
    assert render_trans_stat(stats) == expected


def _hamoa_ddr_scenario() -> DevfreqDevice:
    dev = DevfreqDevice.create("ddr", HAMOA_DDR_HZ, polling_ms=2, initial_freq=200_000_000)
    for t, f in ((2, 547_000_000), (4, 547_000_000), (10, 768_000_000), (14, 547_000_000),
                 (16, 4_224_000_000)):
        dev.record(f, t)
    return dev


def test_hamoa_ddr_snapshot() -> None:
    dev = _hamoa_ddr_scenario()
    text = dev.trans_stat(now_ms=20)
    n = len(HAMOA_DDR_HZ)
    trans = [0] * (n * n)
    trans[0 * n + 1] = 1  # 200 -> 547
    trans[1 * n + 2] = 1  # 547 -> 768
    trans[2 * n + 1] = 1  # 768 -> 547
    trans[1 * n + 9] = 1  # 547 -> 4224
    tis = [2, 8 + 2, 4, 0, 0, 0, 0, 0, 0, 4]
    assert text == kernel_trans_stat(HAMOA_DDR_HZ, 4_224_000_000, trans, tis, 4)
    assert text == (SNAPSHOTS / "hamoa_ddr_trans_stat.txt").read_text()


def test_ddr_qos_initial_zero_then_levels_snapshot() -> None:
    # DDR_QOS initial_freq is 0: the first poll charges no time and counts nothing.
    dev = DevfreqDevice.create("ddr-qos", [1, 100], polling_ms=2, initial_freq=0)
    dev.record(1, 2)
    dev.record(100, 6)
    dev.record(100, 8)
    dev.record(1, 12)
    text = dev.trans_stat(now_ms=14)
    assert text == kernel_trans_stat([1, 100], 1, [0, 1, 1, 0], [4 + 2, 6], 2)
    assert text == (SNAPSHOTS / "ddr_qos_trans_stat.txt").read_text()


def test_off_table_frequency_skips_statistics() -> None:
    dev = DevfreqDevice.create("llcc", [300_000_000, 466_000_000], 2, 300_000_000)
    dev.record(400_000_000, 4)  # not an OPP: time charged to 300 MHz, no transition
    assert dev.stats.time_in_state_ms == [4, 0]
    assert dev.stats.total_trans == 0
    assert dev.stats.previous_freq == 400_000_000
    dev.record(466_000_000, 10)  # previous not an OPP: nothing charged
    assert dev.stats.time_in_state_ms == [4, 0]
    assert dev.stats.total_trans == 0
    assert dev.stats.previous_freq == 466_000_000
    text = dev.trans_stat(12)
    assert "*" in text.splitlines()[3]  # 466 MHz is marked current
    assert dev.stats.time_in_state_ms == [4, 2]


def test_user_clamp_and_reset() -> None:
    dev = DevfreqDevice.create("ddr", HAMOA_DDR_HZ, 2, 200_000_000)
    dev.max_freq = 768_000_000
    dev.record(4_224_000_000, 2)
    assert dev.stats.previous_freq == 768_000_000
    dev.stats.reset(now_ms=5)
    assert dev.stats.total_trans == 0 and sum(dev.stats.time_in_state_ms) == 0
    assert dev.files(now_ms=9)["max_freq"] == "768000000\n"
    assert dev.stats.time_in_state_ms[2] == 4


def test_files_and_tree(tmp_path: Path) -> None:
    dev = _hamoa_ddr_scenario()
    files = dev.files(now_ms=20)
    assert files["name"] == "ddr\n"
    assert files["governor"] == "remote\n"
    assert files["available_frequencies"] == " ".join(str(f) for f in HAMOA_DDR_HZ) + "\n"
    assert files["cur_freq"] == "4224000000\n"
    assert files["min_freq"] == "200000000\n" and files["max_freq"] == "4224000000\n"
    assert files["polling_interval"] == "2\n"
    written = write_tree([dev], tmp_path, now_ms=20)
    assert (tmp_path / "ddr" / "trans_stat").read_text() == files["trans_stat"]
    assert len(written) == len(files)


def test_not_supported_and_efbig() -> None:
    assert render_trans_stat(DevfreqStats(())) == "Not Supported.\n"
    big = DevfreqStats(tuple(range(1_000_000_000, 1_000_000_020)))  # 20 OPPs > 1 page
    with pytest.raises(OSError) as info:
        render_trans_stat(big)
    assert info.value.errno == errno.EFBIG


# -- the corners of drivers/devfreq/devfreq.c, one test each (docs/agent.md) -------------

L3_HZ = [307_200_000, 403_200_000, 614_400_000, 806_400_000]


def test_trans_stat_reads_empty_when_previous_freq_is_not_an_opp() -> None:
    """devfreq.c trans_stat_show(): `if (!devfreq->stop_polling &&
    devfreq_update_status(devfreq, devfreq->previous_freq)) return 0;` - a read of 0
    bytes; devfreq_update_status() fails (-EINVAL from devfreq_get_freq_level) when
    previous_freq is not in freq_table."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    dev.record(806_000_000, 4)  # the whole-MHz vote, recorded raw (TRACK_REMOTE)
    assert dev.stats.previous_freq == 806_000_000
    assert dev.trans_stat(6) == ""
    assert dev.files(8)["trans_stat"] == ""
    assert dev.stats.time_in_state_ms == [4, 0, 0, 0]  # nothing charged after the vote


def test_trans_stat_with_polling_stopped_skips_the_update() -> None:
    """trans_stat_show(): with stop_polling set (devfreq_monitor_suspend) no update is
    attempted, so the table is printed even for a non-OPP previous_freq, without `*`."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    dev.record(806_000_000, 4)
    dev.stop_polling = True
    text = dev.trans_stat(10)
    assert text.startswith("     From  :   To\n") and "*" not in text
    assert dev.stats.time_in_state_ms == [4, 0, 0, 0]


def test_user_requests_are_pm_qos_khz() -> None:
    """min_freq_store(): `value / HZ_PER_KHZ` (round down); max_freq_store():
    DIV_ROUND_UP(value, HZ_PER_KHZ), 0 -> PM_QOS_MAX_FREQUENCY_DEFAULT_VALUE (no limit).
    min_freq_show()/max_freq_show() print get_freq_range()."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    dev.store_min_freq(403_200_999)
    dev.store_max_freq(614_400_001)
    assert (dev.min_freq, dev.max_freq) == (403_200_000, 614_401_000)
    files = dev.files(0)
    assert (files["min_freq"], files["max_freq"]) == ("403200000\n", "614401000\n")
    dev.store_max_freq(0)
    dev.store_min_freq(0)
    assert dev.freq_range() == (307_200_000, 806_400_000)


def test_max_takes_precedence_over_min() -> None:
    """devfreq_get_freq_range(): `if (*min_freq > *max_freq) *min_freq = *max_freq;`
    ("max_freq takes precedence over min_freq"), after the PM QoS requests and the OPP
    limits (scaling_min_freq / scaling_max_freq)."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    dev.store_min_freq(806_400_000)
    dev.store_max_freq(403_200_000)
    assert dev.freq_range() == (403_200_000, 403_200_000)
    dev.store_max_freq(0)
    dev.store_min_freq(2_000_000_000)  # above every OPP: the OPP limit caps max
    assert dev.freq_range() == (806_400_000, 806_400_000)


def test_update_devfreq_clamps_and_does_not_snap() -> None:
    """update_devfreq(): freq < min -> min, freq > max -> max (the min/max of
    devfreq_get_freq_range); with the remote governor (TRACK_REMOTE, protocol.md §3.7)
    profile->target() is skipped, so a clamp that is not an OPP is recorded as is."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    dev.store_max_freq(700_000_000)
    dev.record(806_400_000, 2)
    assert dev.stats.previous_freq == 700_000_000
    assert dev.trans_stat(4) == ""
    dev.store_max_freq(0)
    dev.store_min_freq(614_400_000)
    dev.record(307_200_000, 6)
    assert dev.stats.previous_freq == 614_400_000


def test_cur_freq_shows_the_fresh_read_else_previous_freq() -> None:
    """cur_freq_show(): get_cur_freq() when it succeeds, else previous_freq."""
    dev = DevfreqDevice.create("l3", L3_HZ, 2, 307_200_000)
    assert dev.files(0, cur_freq=614_400_000)["cur_freq"] == "614400000\n"
    assert dev.files(0, cur_freq=None)["cur_freq"] == "307200000\n"


@pytest.mark.parametrize(("freq", "upper", "expected"), [
    (806_000_000, False, 806_400_000),    # ceil
    (900_000_000, False, 806_400_000),    # above the top: -ERANGE -> floor
    (806_000_000, True, 614_400_000),     # least upper bound: floor
    (100_000_000, True, 307_200_000),     # below the bottom: -ERANGE -> ceil
    (614_400_000, False, 614_400_000),    # an OPP is itself
])
def test_recommended_opp(freq: int, upper: bool, expected: int) -> None:
    """devfreq.c devfreq_recommended_opp(): DEVFREQ_FLAG_LEAST_UPPER_BOUND -> floor else
    ceil (dev_pm_opp_find_freq_floor/ceil), the other one when the first is -ERANGE."""
    from memlat.agent.devfreq import recommended_opp

    assert recommended_opp(L3_HZ, freq, upper_bound=upper) == expected

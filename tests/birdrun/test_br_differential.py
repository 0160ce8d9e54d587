"""BIRD 1.6.8 and bgpd-bird on the same configuration, the same peer and the same kernel
routes: every command's reply, line for line (br_compare.comparable: times, ticking timers,
memory sizes, the version string and the export change counters aside).

Two moments: during the graceful-restart recovery both were started into (``-R``: 0024,
``wait`` states, GR lines, exports held) and after it (routes exported to the peer and
into the kernel)."""

from __future__ import annotations

import br_lab as lab
import pytest
from br_compare import comparable


@pytest.mark.parametrize("command", lab.READ_ONLY)
def test_same_reply_during_recovery(recovery, command):
    i = lab.READ_ONLY.index(command) + 1
    assert comparable(recovery["bgpd"][i]) == comparable(recovery["bird"][i])


@pytest.mark.parametrize("command", lab.READ_ONLY)
def test_same_reply_after_recovery(steady, command):
    i = lab.READ_ONLY.index(command) + 1
    assert comparable(steady["bgpd"][i]) == comparable(steady["bird"][i])


def test_greeting(recovery):
    assert recovery["bird"][0] == ["0001 BIRD 1.6.8 ready."]
    assert recovery["bgpd"][0] == [f"0001 BIRD {lab.CALICO_VERSION} ready."]


def test_the_lab_covers_what_calico_sees(recovery, steady):
    """The comparisons above are about something: the states, errors and route kinds."""

    def text(replies, cmd):
        return "\n".join(replies["bird"][lab.READ_ONLY.index(cmd) + 1])

    status = text(recovery, "show status")
    assert "0024-Graceful restart recovery in progress" in status
    # the passive GR peer and the refused one: neither ever sends End-of-RIB
    assert "Waiting for 2 protocols to recover" in status
    assert "Wait timer is" in status and f"/{lab.GR_WAIT}" in status
    rows = text(recovery, "show protocols")
    assert f" {lab.MESH} BGP      master   wait" in rows  # established, its export held
    assert "kernel1  Kernel   master   wait" in rows
    assert f"{lab.REFUSED} BGP      master   start" in rows
    assert "Socket: Connection refused" in rows
    assert f" {lab.NODE} BGP      master   down" in rows and "Passive" in rows
    details = text(recovery, "show protocols all")
    assert "GR recovery:    pending\n" in details  # the refused peer holds the recovery
    assert "GR recovery:    waiting\n" in details  # the mesh peer (End-of-RIB in) and kernel
    assert "0024" not in text(steady, "show status")
    rows = text(steady, "show protocols")
    assert f" {lab.MESH} BGP      master   up" in rows and "kernel1  Kernel   master   up" in rows
    routes = text(steady, "show route all")
    for word in (
        "blackhole",
        "unreachable",
        " dev brv0 ",
        " dev cali1a2b3c ",
        "via 192.0.2.2 on brv0",
        "[AS65002i]",
        "(100/0)",
        "(200/0)",  # the import filter's preference 200 for a high LOCAL_PREF
        "BGP.community: (65001,42)",
        "BGP.large_community: (64512, 1, 2)",
        "Kernel.source: 3",
    ):
        assert word in routes, word
    exported = text(steady, f"show route export {lab.MESH}")
    assert "10.65.0.0/26" in exported and "10.65.1.0/26" in exported
    # the workload /32 inside a block: calico_aggr exports the block, not the /32
    assert "10.65.0.5/32" in text(steady, f"show route noexport {lab.MESH}")
    assert "172.16.1.0/24" in text(steady, "show route export kernel1")


def test_kernel_sync_after_recovery(lab_sides, steady):
    """Both kernels got the same routes from the kernel protocol's filter (krt_metric
    512 on the workload block, the BGP routes as BIRD installs them)."""

    def ours(side):
        out = lab.ip("-n", side.a, "route", "show", "proto", "bird").stdout
        return sorted(line.strip() for line in out.splitlines())

    assert ours(lab_sides.bgpd) == ours(lab_sides.bird)
    assert any(r.startswith("172.16.1.0/24 via 192.0.2.2") for r in ours(lab_sides.bgpd))

"""Which start of bgpd is a graceful restart, with a real kernel (a network namespace): kernel
routes of ours that a previous run left (``kill -9`` or a crash with ``kernel.persist``) are
adopted, so forwarding state survived and the start is a restart (R bit, deferral, then the
sweep of what nobody announced again); without them, a cold start that waits for nothing.

The neighbor is configured but never answers: the case where a restart waits for the
selection-deferral timer and a cold start must not.
"""

from __future__ import annotations

from gr_helpers import wait_sync

LEFTOVER = "10.77.0.0/24"  # a route of ours (proto bgp, 186) a previous run left


def node(namespaces, leftover: bool):
    ns = namespaces()
    namespaces.veth(ns, "v0", None, "v1")
    ns.up("v0", "10.0.0.1/24")
    ns.up("v1")
    if leftover:
        ns.ip("route", "add", LEFTOVER, "via", "10.0.0.2", "proto", "186")
    return ns


def start(bgpd, ns):
    return bgpd(
        ns=ns,
        name=f"bgpd-{ns.name}",
        address="10.0.0.1",
        asn=65001,
        neighbors=[{"address": "10.0.0.2", "asn": 65002}],  # nobody there
        networks=["10.1.1.0/24"],
        extra={
            "kernel": {"install": True, "persist": True},
            "graceful_restart": {"restart_time": 30, "selection_deferral": 3},
            "connect_retry": 1,
        },
    )


def gr(d) -> dict:
    return d.request("show_summary")["graceful_restart"]


def test_adopted_kernel_routes_make_the_start_a_restart(namespaces, bgpd):
    ns = node(namespaces, leftover=True)
    d = start(bgpd, ns)
    s = gr(d)
    assert s["start"] == "restart", s
    assert s["start_reason"] == "1 kernel routes of a previous run adopted"
    assert s["restarting"] and s["waiting_for_eor"] == ["10.0.0.2"]
    (e,) = d.start_events()
    assert (e["mode"], e["reason"]) == ("restart", s["start_reason"])
    assert "Graceful restart: restart (1 kernel routes" in d.cli("show", "summary").stdout
    assert d.request("health")["ready_reason"].startswith(
        "not ready: graceful restart in progress: ours (1 kernel routes"
    )
    assert ns.routes(LEFTOVER), "adopted, kept while the restart is in progress"
    # The deferral timer ends the restart (the neighbor never sent End-of-RIB); then the
    # kernel sweep removes the adopted route nobody announced again.
    wait_sync(lambda: not gr(d)["restarting"], 10, what="the deferral timer")
    wait_sync(lambda: not ns.routes(LEFTOVER), 10, what="the sweep of the leftover route")
    assert gr(d)["start"] == "restart"


def test_no_kernel_routes_of_ours_is_a_cold_start(namespaces, bgpd):
    ns = node(namespaces, leftover=False)
    d = start(bgpd, ns)
    s = gr(d)
    assert s["start"] == "cold" and not s["restarting"] and s["waiting_for_eor"] == []
    assert s["start_reason"] == (
        "no --graceful-restart, no marker of a graceful stop, no kernel routes of ours"
    )
    # A graceful stop leaves the marker; the next start is a restart because of it.
    d.stop()
    assert d.marker_path.exists()
    d.start()
    s = gr(d)
    assert s["start"] == "restart" and s["start_reason"].startswith("graceful stop "), s
    assert not d.marker_path.exists()

"""The mesh profile (lab_cluster.py): the cluster a default Calico install gives, every node
also peering with its rack's ToR, run once with bgpd-bird and once with BIRD 1.6.8 on the
nodes (the ``mesh_lab`` fixture), the same scenarios on each, the figures side by side
(conftest.FIGURES; tests/lab/README.md).

The probes send an echo every 10 ms per flow (lab_probe.py). Where BIRD promises no loss
(a reload, a graceful restart after a crash) the test asserts none, for both daemons;
where BIRD 1.6.8 loses traffic by design (SIGTERM sends Cease) bgpd-bird must do as it
does and lose no more; elsewhere it measures and asserts only that the traffic comes back.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import lab_cluster as lc
import lab_net
from lab_figures import full, loss, record, unreachable
from lab_ops import (
    GRACEFUL,
    LEAVE_DROP,
    LEAVE_WAIT,
    POD,
    fam,
    pod_ns,
    protocols,
    restart_node,
    run_flows,
    stop_flows,
    tor_routes,
    vias,
)

# --- steady state -------------------------------------------------------------------------


def test_pods_reach_pods_across_nodes_and_racks(mesh_lab):
    lab = mesh_lab
    assert unreachable(lab) == []
    record(lab, "start", "every pod reaches every pod (v4, v6)", {"ms": round(lab.ready_s * 1000)})
    # as Felix and confd have it: n1's block a blackhole, rack A's blocks straight to the
    # node, rack B's through the ToR, the outside network from the ToR (BGP); the same
    # in IPv6
    r4 = "\n".join(lab.routes("n1"))
    assert re.search(r"^blackhole 10\.65\.1\.0/26 proto bird", r4, re.M), r4
    assert "10.65.2.0/26 via 10.192.1.2 dev eth0 proto bird metric 1024" in r4
    assert "10.65.5.0/26 via 10.192.1.254 dev eth0 proto bird metric 1024" in r4
    assert re.search(r"^172\.31\.1\.0/24 via 10\.192\.1\.254 dev eth0 proto bird", r4, re.M)
    assert "172.31.99.0" not in r4, "BGPFilter tor: the bogus network is refused"
    assert "10.96.0.0" not in r4 and "198.51.100.0/24" not in r4, "services not in the kernel"
    r6 = "\n".join(lab.routes("n1", family=6))
    assert re.search(r"^blackhole fd00:65:0:1::/122 dev lo proto bird", r6, re.M), r6
    assert "fd00:65:0:2::/122 via fd00:192:1::2 dev eth0 proto bird metric 1024" in r6
    assert "fd00:65:0:5::/122 via fd00:192:1::fe dev eth0 proto bird metric 1024" in r6
    # from the ToR's link-local next hop, as BIRD 1.6.8 installs it (the session's
    # interface: both BGP next hops are on it)
    assert re.search(r"^fd00:31:1::/64 via fe80::\S+ dev eth0 proto bird", r6, re.M), r6
    assert "fd00:31:99" not in r6
    # each session's own graceful restart time (BIRD 1.6's per protocol): the ToR peering
    # has maxRestartTime 10 s, the mesh the default 120 s
    tor_view = lab.birdc("tor1", "show", "protocols", "all", "n1_4")
    told = tor_view.split("Neighbor capabilities", 1)[1].split("Restart time:", 1)[1].split()[0]
    assert told == "10", tor_view
    # the daemons are found as calico-node finds them: argv[0] "bird" / "bird6"
    for name, d in lab.daemons.items():
        if name.startswith("n"):
            argv0 = Path(f"/proc/{d.proc.pid}/cmdline").read_bytes().split(b"\0")[0]
            assert argv0 == name.split("-")[1].encode(), (name, argv0)
    # the outside host reaches pods in both racks
    got = lab.reach(lab.ns("ext"), [POD["n2a"].v4, POD["n2a"].v6, POD["n6a"].v4, POD["n6a"].v6])
    assert None not in got.values(), got


def test_services_reach_the_tor_with_calico_communities(mesh_lab):
    lab = mesh_lab
    cluster = tor_routes(lab, "tor1", "10.96.0.0/16")
    rack_a = [v for v in vias(cluster) if v.startswith("10.192.1.")]
    assert sorted(rack_a) == [lc.node_v4(n) for n in ("n1", "n2", "n3", "n4")], cluster
    assert "BGP.community: (65000,100)" in cluster
    lb = tor_routes(lab, "tor1", "198.51.100.0/24")
    assert "BGP.community: (65000,300)" in lb and "BGP.large_community: (65000, 1, 2)" in lb, lb
    local = tor_routes(lab, "tor1", "198.51.100.10/32")
    assert vias(local) == [lc.node_v4("n4")], local
    assert "BGP.community: (65000,300)" in local
    ext = tor_routes(lab, "tor1", "203.0.113.0/24")
    assert "BGP.as_path: 64512 64512" in ext, ext  # the BGPFilter's prepend
    assert "community" not in ext
    # the other rack's ToR, IPv6
    cluster6 = tor_routes(lab, "tor2", "fd00:96::/112")
    rack_b = [v for v in vias(cluster6) if v.startswith("fd00:192:2::")]
    assert sorted(rack_b) == [lc.node_v6("n5"), lc.node_v6("n6")], cluster6
    assert "BGP.community: (65000,100)" in cluster6
    lb6 = tor_routes(lab, "tor1", "fd00:198::10/128")
    assert vias(lb6) == [lc.node_v6("n4")] and "(65000, 1, 2)" in lb6, lb6
    # pods are not passed on by the nodes (BGPFilter: no routes learnt from peers)
    block5 = tor_routes(lab, "tor1", "10.65.5.0/26")
    assert vias(block5) == [lc.TOR_LINK["tor2"][0]], block5
    # and the outside host reaches the services
    got = lab.reach(lab.ns("ext"), [lc.LOCAL_LB[0], lc.LOCAL_LB[1], "10.96.0.10", "fd00:96::a"])
    assert None not in got.values(), got


# --- confd rewrites the files and sends SIGHUP -------------------------------------------------


def test_confd_reload_loses_nothing(mesh_lab):
    """A new Local LoadBalancer service on n2 and a new BGPFilter rule: confd rewrites
    bird.cfg, bird_aggr.cfg and bird_ipam.cfg (and bird6*) on every node and sends SIGHUP;
    then back. No session resets, no echo lost, the new address at the ToR with its
    communities and the new rule's AS path."""
    lab = mesh_lab
    before = {(n, f): protocols(lab, n, f) for n in lc.NODES for f in (4, 6)}
    flows = {
        "n1a->n5a": (pod_ns(lab, "n1a"), [POD["n5a"].v4, POD["n5a"].v6]),
        "n3a->n2a": (pod_ns(lab, "n3a"), [POD["n2a"].v4, POD["n2a"].v6]),
        "ext->n2a": (lab.ns("ext"), [POD["n2a"].v4, POD["n2a"].v6]),
    }
    h = run_flows(lab, flows, "reload")
    t0 = time.time()
    try:
        changed = lab.write_configs(lc.services_changed(lab.cluster))
        assert set(changed) == set(lc.NODES)
        lab.hup(changed)

        def announced():
            # the new rule accepts before calico_export_to_bgp_peers(), so before
            # apply_communities(): the AS path prepended, no community (BIRD 1.6.8 too)
            r = tor_routes(lab, "tor1", f"{lc.NEW_LB[0]}/32")
            return "BGP.as_path: 64512 64512 64512" in r and "community" not in r

        lab_net.wait_until(announced, 30, "the new service at the ToR", 0.05)
        t_new = time.time() - t0
        lab_net.wait_until(
            lambda: lc.NEW_LB[1] in tor_routes(lab, "tor1", f"{lc.NEW_LB[1]}/128"), 30, "v6", 0.05
        )
        time.sleep(1.0)
        lab.hup(lab.write_configs(lc.cluster("mesh")))
        lab_net.wait_until(
            lambda: "Network not found" in tor_routes(lab, "tor1", f"{lc.NEW_LB[0]}/32"),
            30,
            "the service withdrawn again",
            0.05,
        )
        time.sleep(1.0)
    finally:
        results = stop_flows(h)
    record(lab, "SIGHUP reload", "new service at tor1", {"ms": round(t_new * 1000)})
    for (label, t), res in results.items():
        fig = loss(res, t0)
        record(lab, "SIGHUP reload", f"{label} {fam(t)}", fig)
        assert fig["lost"] == 0, (label, t, fig)
    after = {(n, f): protocols(lab, n, f) for n in lc.NODES for f in (4, 6)}
    assert after == before, "a reload reset sessions"


# --- bgpd on one node restarted with -R --------------------------------------------------------


def _n2_flows(lab) -> dict:
    return {
        "n1a->n2a": (pod_ns(lab, "n1a"), [POD["n2a"].v4, POD["n2a"].v6]),
        "n2a->n6a": (pod_ns(lab, "n2a"), [POD["n6a"].v4, POD["n6a"].v6]),
        "ext->n2a": (lab.ns("ext"), [POD["n2a"].v4, POD["n2a"].v6]),
    }


def test_graceful_restart_after_a_crash_loses_nothing(mesh_lab):
    """bird and bird6 on n2 killed (SIGKILL), started again with -R as runit does: the
    neighbours keep n2's routes (graceful restart), n2's kernel keeps its own (persist),
    the recovery holds the kernel until End-of-RIB. No echo lost, either daemon."""
    restart_node(
        mesh_lab, "n2", signal.SIGKILL, "restart -R after SIGKILL", "zero", _n2_flows(mesh_lab)
    )


@full
def test_restart_after_sigterm_as_bird(mesh_lab):
    """``sv restart bird``: SIGTERM, then -R. BIRD 1.6.8 sends Cease and its neighbours
    drop n2's routes until it is back; bgpd-bird does the same (measured side by side) and
    may lose no more than BIRD did plus lab_ops.LOSS_MARGIN."""
    lab = mesh_lab
    restart_node(lab, "n2", signal.SIGTERM, "restart -R after SIGTERM", "as bird", _n2_flows(lab))


@full
def test_graceful_restart_command_loses_nothing(mesh_lab):
    """The lossless restart an operator asks for: ``birdcl -s bird.ctl graceful restart``
    (and bird6.ctl), then runit's -R start. bgpd-bird ends its sessions without a
    NOTIFICATION, the neighbours keep n2's routes, nothing is lost. BIRD 1.6.8 does not
    have the command (its client answers "No such command"; recorded)."""
    lab = mesh_lab
    restart_node(lab, "n2", GRACEFUL, "restart -R after graceful restart", "zero", _n2_flows(lab))


# --- a block moves --------------------------------------------------------------------------------


@full
def test_block_moves(mesh_lab):
    """Pod m (10.65.3.70, in n3's second block) moves to n2, keeping its address (as a live
    migration does): Felix removes it on n3, makes it on n2 (/32 dev caliX); n2 advertises
    the /32 (a borrowed address: inside the pool, outside its blocks), everyone routes it
    to n2 while n3's blackhole still covers the block. Then IPAM moves the block's
    affinity: confd rewrites n3's and n2's bird_aggr.cfg (the blackhole withdrawn on n3,
    made on n2, the /32 aggregated away) and sends SIGHUP."""
    lab = mesh_lab
    m = lc.MOVER
    flows = {
        "n1a->m": (pod_ns(lab, "n1a"), [m.v4, m.v6]),
        "n6a->m": (pod_ns(lab, "n6a"), [m.v4, m.v6]),
        "ext->m": (lab.ns("ext"), [m.v4]),
    }
    h = run_flows(lab, flows, "move")
    t0 = time.time()
    moved = lc.Pod("n2", "m", m.v4, m.v6)
    try:
        lab.del_pod(m)
        lab.add_pod(moved)

        def routed_to_n2(where: str) -> bool:
            r4 = lab.routes(where, f"{m.v4}/32")
            r6 = lab.routes(where, f"{m.v6}/128", family=6)
            return bool(r4) and bool(r6) and all("proto bird" in x for x in r4 + r6)

        lab_net.wait_until(lambda: routed_to_n2("n1") and routed_to_n2("n6"), 30, "/32 via n2")
        t_32 = time.time() - t0
        time.sleep(1.0)
        t1 = time.time()
        lab.hup(lab.write_configs(lc.block_moved(lab.cluster, lc.MOVED_BLOCKS, "n3", "n2")))

        def aggregated() -> bool:
            r = lab.routes("n1", "10.65.3.64/26")
            return not lab.routes("n1", f"{m.v4}/32") and any("via 10.192.1.2" in x for x in r)

        lab_net.wait_until(aggregated, 30, "the block routed to n2, the /32 gone")
        t_block = time.time() - t1
        time.sleep(1.0)
    finally:
        results = stop_flows(h)
        # put it back for the scenarios after this one
        lab.del_pod(moved)
        lab.add_pod(m)
        lab.hup(lab.write_configs(lc.cluster("mesh")))
    record(lab, "block moves", "/32 routed to n2 on n1 and n6", {"ms": round(t_32 * 1000)})
    record(lab, "block moves", "affinity moved: block via n2", {"ms": round(t_block * 1000)})
    for (label, t), res in results.items():
        record(lab, "block moves", f"{label} {fam(t)}", loss(res, t0))
        assert res["received"] > 0
    lab_net.wait_until(lambda: not unreachable(lab), 60, "every pod reachable again", 0.5)


# --- a node leaves, a node joins ----------------------------------------------------------


@full
def test_node_leaves_then_joins(mesh_lab):
    """n4 leaves: calico-node gets SIGTERM (bird, bird6), 0.2 s later the node is off the
    network (its switch port down), 1 s later confd on the other nodes removes it (files,
    SIGHUP). An outside client talks to the Local LoadBalancer address n4 alone advertises
    (its /32 beats the /24 every node advertises; every node answers for it): the loss is
    how long the ToR keeps sending to n4. Traffic between other pods must not notice.
    Then n4 joins again: port up, confd adds it everywhere, its daemons start, then its
    pod; measured: until the pod answers from n1 and from outside."""
    lab = mesh_lab
    lb4, lb6 = lc.LOCAL_LB
    flows = {
        "ext->LB (n4 only)": (lab.ns("ext"), [lb4, lb6]),
        "n1a->n5a": (pod_ns(lab, "n1a"), [POD["n5a"].v4, POD["n5a"].v6]),
    }
    h = run_flows(lab, flows, "leave")
    gone = lab_net.Watch(lambda: "Network not found" in tor_routes(lab, "tor1", f"{lb4}/32"))
    t0 = time.time()
    try:
        lab.stop_node("n4", signal.SIGTERM)
        time.sleep(0.2)
        lab.batch(lab.ns("swa"), ["link set n4 down"])
        time.sleep(0.8)
        lab.hup(lab.write_configs(lc.without_node(lab.cluster, "n4")))
        # BIRD 1.6.8 ends its sessions with a Cease: tor1 drops n4's routes at once, and so
        # must bgpd-bird (its SIGTERM is BIRD's; a graceful stop is asked for explicitly)
        gone.wait(LEAVE_WAIT)
        t_gone = gone.at - t0 if gone.at is not None else None
        time.sleep(1.0)
    finally:
        gone.stop()
        results = stop_flows(h)
    if t_gone is None:
        stale = tor_routes(lab, "tor1", f"{lb4}/32")
        record(lab, "node leaves", "tor1 drops n4's /32",
               {"ms": None, "note": f"still routed to n4 after {LEAVE_WAIT} s (stale)"})  # fmt: skip
        raise AssertionError(f"tor1 kept n4's /32 for {LEAVE_WAIT} s: {stale}")
    record(lab, "node leaves", "tor1 drops n4's /32", {"ms": round(t_gone * 1000)})
    assert t_gone < LEAVE_DROP, f"tor1 dropped n4's /32 after {t_gone:.2f} s"
    for (label, t), res in results.items():
        fig = loss(res, t0)
        record(lab, "node leaves", f"{label} {fam(t)}", fig)
        if label.startswith("n1a"):
            assert fig["lost"] == 0, (label, t, fig)
        else:
            assert res["received"] > 0

    # n4 joins again (its pod made after its daemons, as the kubelet would)
    pod = POD["n4a"]
    lab.del_pod(pod)
    lab.batch(lab.ns("swa"), ["link set n4 up"])
    flows = {
        "n1a->n4a": (pod_ns(lab, "n1a"), [pod.v4, pod.v6]),
        "ext->n4a": (lab.ns("ext"), [pod.v4, pod.v6]),
        "n1a->n5a": (pod_ns(lab, "n1a"), [POD["n5a"].v4, POD["n5a"].v6]),
    }
    probes = {}
    for label, (src, targets) in flows.items():
        probes[label] = lab.probe(src, targets, f"join-{label[:3]}{len(probes)}")
    probes["n1a->n5a"].wait_flowing()
    t0 = time.time()
    try:
        lab.hup(lab.write_configs(lc.cluster("mesh")))
        lab.start_node("n4", restart=True)
        lab.add_pod(pod)
        lab_net.wait_until(
            lambda: all(
                probes[k].received().get(t, 0) > 20 for k in ("n1a->n4a", "ext->n4a")
                for t in flows[k][1]
            ),
            90,
            "n4's pod answers",
            0.1,
        )  # fmt: skip
        lab_net.wait_until(lab.sessions_up, 60, "every session up")
        time.sleep(1.0)
    finally:
        results = {k: p.stop() for k, p in probes.items()}
    for label, res in results.items():
        for t, r in res.items():
            fig = loss(r, t0)
            if label == "n1a->n5a":
                record(lab, "node joins", f"{label} {fam(t)}", fig)
                assert fig["lost"] == 0, (label, t, fig)
            else:  # until the new pod first answers
                reach = fig["last_ms"] if fig["last_ms"] is not None else 0
                record(lab, "node joins", f"{label} {fam(t)}: first answer", {"ms": reach})
    lab_net.wait_until(lambda: not unreachable(lab), 60, "every pod reachable again", 0.5)


# --- a ToR session flaps --------------------------------------------------------------------


@full
def test_tor_session_flaps(mesh_lab):
    """tor1 restarts its sessions with n2 (``birdc restart n2_4 n2_6``: a Cease, then
    connecting again): n2 loses the outside network and tor1 n2's block (learnt from n2
    alone: the nodes pass on nothing they learnt from their peers) until the sessions are
    back. A pod on n2 talks to the outside host (measured); one on n1 must not notice."""
    lab = mesh_lab
    flows = {
        "n2a->ext": (pod_ns(lab, "n2a"), [lc.EXT[0], lc.EXT[1]]),
        "n1a->ext": (pod_ns(lab, "n1a"), [lc.EXT[0]]),
    }
    h = run_flows(lab, flows, "torflap")
    t0 = time.time()
    try:
        lab.birdc("tor1", "restart", "n2_4")
        lab.birdc("tor1", "restart", "n2_6")
        time.sleep(0.5)

        def back() -> bool:
            out = lab.birdc("tor1", "show", "protocols")
            rows = [ln for ln in out.splitlines() if ln.startswith(("n2_4", "n2_6"))]
            return len(rows) == 2 and all("Established" in r for r in rows)

        lab_net.wait_until(back, 90, "tor1's sessions with n2 back")
        t_back = time.time() - t0
        lab_net.wait_until(
            lambda: lab.routes("n2", lc.EXT_NETS[0]) and lab.routes("n2", lc.EXT_NETS[1], family=6),
            30,
            "n2 routes the outside again",
        )
        time.sleep(1.0)
    finally:
        results = stop_flows(h)
    record(lab, "ToR session flap", "sessions Established again", {"ms": round(t_back * 1000)})
    for (label, t), res in results.items():
        fig = loss(res, t0)
        record(lab, "ToR session flap", f"{label} {fam(t)}", fig)
        if label.startswith("n1a"):
            assert fig["lost"] == 0, (label, t, fig)
        else:
            assert res["received"] > 0

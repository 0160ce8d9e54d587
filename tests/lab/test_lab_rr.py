"""The rr profile (lab_cluster.py): an AS per rack, no mesh, a route reflector per rack
(nodes with ``routeReflectorClusterID``), the reflectors peering with their ToR, run once
with bgpd-bird and once with BIRD 1.6.8 on the nodes (the ``rr_lab`` fixture)."""

from __future__ import annotations

import re
import signal

import lab_cluster as lc
import lab_net
from lab_figures import full, record, unreachable
from lab_ops import POD, pod_ns, protocols, restart_node, tor_routes, vias


def test_rr_pods_reach_pods_across_nodes_and_racks(rr_lab):
    lab = rr_lab
    assert unreachable(lab) == []
    record(lab, "start", "every pod reaches every pod (v4, v6)", {"ms": round(lab.ready_s * 1000)})
    # n1 reflects: its clients are rr clients, n2 sees only n1
    assert set(protocols(lab, "n1", 4)) == {
        "Node_10_192_1_2",
        "Node_10_192_1_3",
        "Node_10_192_1_4",
        "Node_10_192_1_254",
    }
    assert set(protocols(lab, "n2", 4)) == {"Node_10_192_1_1"}
    # a client's routes: rack A's blocks straight to their node (reflected, next hop
    # unchanged), rack B's through the ToR
    r4 = "\n".join(lab.routes("n2"))
    assert "10.65.3.0/26 via 10.192.1.3 dev eth0 proto bird metric 1024" in r4, r4
    # (learnt over eBGP: LOCAL_PREF 100, so the kernel metric is 2^31-1-100)
    assert "10.65.6.0/26 via 10.192.1.254 dev eth0 proto bird metric 2147483547" in r4, r4
    r6 = "\n".join(lab.routes("n6", family=6))
    assert "fd00:65:0:5::/122 via fd00:192:2::5 dev eth0 proto bird metric 1024" in r6, r6
    assert re.search(
        r"^fd00:65:0:2::/122 via (fd00:192:2::fe|fe80::\S+) dev eth0 proto bird", r6, re.M
    ), r6


def test_rr_passes_clients_routes_and_services_to_the_tor(rr_lab):
    lab = rr_lab
    # next hop keep on the reflector's eBGP session: the ToR forwards straight to the node
    block = tor_routes(lab, "tor1", "10.65.2.0/26")
    assert vias(block) == [lc.node_v4("n2")], block
    assert "BGP.as_path: 65001" in block
    # the Local LoadBalancer address of a client, re-advertised by its reflector (confd's
    # "Configured as a RR" accept), with Calico's communities
    local = tor_routes(lab, "tor1", f"{lc.LOCAL_LB[0]}/32")
    assert vias(local) == [lc.node_v4("n4")], local
    assert "BGP.community: (65000,300)" in local
    local6 = tor_routes(lab, "tor1", f"{lc.LOCAL_LB[1]}/128")
    assert vias(local6) == [lc.node_v6("n4")], local6
    got = lab.reach(lab.ns("ext"), [lc.LOCAL_LB[0], lc.LOCAL_LB[1], POD["n6a"].v4, POD["n6a"].v6])
    assert None not in got.values(), got


def _rr_flows(lab) -> dict:
    return {
        "n2a->n3a": (pod_ns(lab, "n2a"), [POD["n3a"].v4, POD["n3a"].v6]),
        "n2a->n6a": (pod_ns(lab, "n2a"), [POD["n6a"].v4, POD["n6a"].v6]),
        "ext->n3a": (lab.ns("ext"), [POD["n3a"].v4, POD["n3a"].v6]),
    }


def test_route_reflector_restart_loses_nothing(rr_lab):
    """The rack A reflector (n1) killed and started again with -R: its clients and the ToR
    keep its routes (graceful restart), no echo lost between its clients, across the racks
    or from outside."""
    lab = rr_lab
    restart_node(lab, "n1", signal.SIGKILL, "RR restart -R after SIGKILL", "zero", _rr_flows(lab))


@full
def test_route_reflector_restart_after_sigterm(rr_lab):
    """``sv restart bird`` on the reflector: as BIRD 1.6.8 (Cease, its clients and the ToR
    drop its routes until it is back), losing no more than BIRD did plus LOSS_MARGIN."""
    lab = rr_lab
    flows = _rr_flows(lab)
    restart_node(lab, "n1", signal.SIGTERM, "RR restart -R after SIGTERM", "as bird", flows)
    lab_net.wait_until(lambda: not unreachable(lab), 60, "every pod reachable again", 0.5)

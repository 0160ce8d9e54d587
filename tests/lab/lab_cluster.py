"""The lab's Calico cluster: addressing, pods and the two profiles' Calico resources.

Two racks. Rack A: nodes n1-n4 on one L2 segment (10.192.1.0/24, fd00:192:1::/64) with
its ToR (tor1, .254 / ::fe). Rack B, behind the ToRs: n5, n6 (10.192.2.0/24,
fd00:192:2::/64) with tor2. The ToRs are BIRD 2 routers (AS 65101, 65102) joined by a /30
and an eBGP session; tor1 also has an outside host ``ext`` (172.31.1.0/24, fd00:31:1::/64)
and a network the nodes' BGPFilter refuses (172.31.99.0/24, fd00:31:99::/64). Every node
has a route to the node networks through its ToR (10.192.0.0/16, fd00:192::/32) and nothing
else: pod and outside routes come from BGP.

IPAM: pools 10.65.0.0/16 and fd00:65::/48 (no encapsulation, so BIRD programs their routes:
Calico's default ``programClusterRoutes: EnabledNoEncapOnly``); node nI has the blocks
10.65.I.0/26 and fd00:65:0:I::/122, n3 also 10.65.3.64/26 and fd00:65:0:3::40/122 (the
block that moves). Pods: ``a`` on every node (10.65.I.11, fd00:65:0:I::11), ``b`` on n1
(.12, ::12), and ``m`` on n3 in its second block (10.65.3.70, fd00:65:0:3::46).

Profiles:

* ``mesh``: Calico's default, one AS (64512), node-to-node mesh across both racks (iBGP
  multihop through the ToRs), and every node peering with its rack's ToR (BGPPeer with a
  ``rack`` node selector, eBGP, ``maxRestartTime: 10s``, BGPFilter ``tor``). Services:
  cluster IPs 10.96.0.0/16, external IPs 203.0.113.0/24, LoadBalancer IPs
  198.51.100.0/24 (and IPv6 ranges), communities on the cluster and LoadBalancer ranges,
  one ``externalTrafficPolicy: Local`` LoadBalancer address (198.51.100.10,
  fd00:198::10) advertised by n4 alone.
* ``rr``: AS per rack (65001, 65002), no mesh, a route reflector per rack (n1 with
  cluster id 224.0.0.1, n5 with 224.0.0.2; label ``route-reflector``), the other nodes
  its clients (BGPPeer ``peerSelector`` per rack), the reflectors peering with their ToR
  (``keepOriginalNextHop``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lab_calico import Block, Cluster, Filter, Node, Peer, Pool, Rule

PROFILES = ("mesh", "rr")
NODES = ("n1", "n2", "n3", "n4", "n5", "n6")
RACK = {"n1": "a", "n2": "a", "n3": "a", "n4": "a", "n5": "b", "n6": "b"}
TOR = {"a": "tor1", "b": "tor2"}
TOR_ASN = {"tor1": 65101, "tor2": 65102}
RACK_NET = {"a": 1, "b": 2}


def node_index(node: str) -> int:
    return int(node[1:])


def node_v4(node: str) -> str:
    return f"10.192.{RACK_NET[RACK[node]]}.{node_index(node)}"


def node_v6(node: str) -> str:
    return f"fd00:192:{RACK_NET[RACK[node]]}::{node_index(node)}"


def tor_v4(tor: str) -> str:
    return f"10.192.{1 if tor == 'tor1' else 2}.254"


def tor_v6(tor: str) -> str:
    return f"fd00:192:{1 if tor == 'tor1' else 2}::fe"


TOR_LINK = {"tor1": ("10.0.12.1", "fd00:12::1"), "tor2": ("10.0.12.2", "fd00:12::2")}
EXT = ("172.31.1.2", "fd00:31:1::2")  # the outside host behind tor1
EXT_GW = ("172.31.1.1", "fd00:31:1::1")
EXT_NETS = ("172.31.1.0/24", "fd00:31:1::/64")
BOGUS_NETS = ("172.31.99.0/24", "fd00:31:99::/64")  # tor1 announces it; the nodes refuse it

POOLS = ("10.65.0.0/16", "fd00:65::/48")
CLUSTER_IPS = ("10.96.0.0/16", "fd00:96::/112")
EXTERNAL_IPS = ("203.0.113.0/24", "fd00:203::/112")
LB_IPS = ("198.51.100.0/24", "fd00:198::/112")
LOCAL_LB = ("198.51.100.10", "fd00:198::10")  # externalTrafficPolicy: Local, endpoint on n4
NEW_LB = ("198.51.100.20", "fd00:198::20")  # added by the reload scenario, endpoint on n2
SERVICE_ADDRS = (  # on every node's kube-ipvs0 (kube-proxy's dummy; a veth here)
    ("10.96.0.10", "fd00:96::a"),
    LOCAL_LB,
    NEW_LB,
)
COMMUNITIES = {"svc": "65000:100", "lb": "65000:300", "lb-large": "65000:1:2"}


def blocks(node: str) -> list[Block]:
    i = node_index(node)
    out = [Block(f"10.65.{i}.0/26"), Block(f"fd00:65:0:{i}::/122")]
    if node == "n3":
        out += [Block("10.65.3.64/26"), Block("fd00:65:0:3::40/122")]
    return out


@dataclass(frozen=True)
class Pod:
    node: str
    name: str  # "a", "b", "m"
    v4: str
    v6: str

    @property
    def key(self) -> str:
        return f"{self.node}{self.name}"


def pods() -> list[Pod]:
    out = [
        Pod(n, "a", f"10.65.{node_index(n)}.11", f"fd00:65:0:{node_index(n)}::11") for n in NODES
    ]
    out.append(Pod("n1", "b", "10.65.1.12", "fd00:65:0:1::12"))
    out.append(Pod("n3", "m", "10.65.3.70", "fd00:65:0:3::46"))
    return out


MOVER = next(p for p in pods() if p.name == "m")


def _tor_filter(profile: str) -> Filter:
    """BGPFilter ``tor``: refuse the ToR's bogus network; prepend on the external IP range.
    In the mesh every node peers with the ToR itself, so what a node learnt from its mesh
    peers is not passed on (without this rule the ToR would send rack B's traffic to a
    rack A node that sends it back through the ToR); a route reflector must pass on its
    clients' routes, so the rr profile has no such rule."""
    f = Filter("tor")
    for fam in (4, 6):
        i = 0 if fam == 4 else 1
        setattr(f, f"import_v{fam}", [Rule("Reject", cidr=BOGUS_NETS[i])])
        export = [Rule("Accept", cidr=EXTERNAL_IPS[i], prepend_as_path=[64512])]
        if profile == "mesh":
            export.insert(0, Rule("Reject", source="RemotePeers"))
        setattr(f, f"export_v{fam}", export)
    return f


def _nodes(profile: str) -> list[Node]:
    out = []
    for n in NODES:
        node = Node(
            n,
            f"{node_v4(n)}/24",
            f"{node_v6(n)}/64",
            labels={"rack": RACK[n]},
            blocks=blocks(n),
        )
        if profile == "rr":
            node.asn = 65001 if RACK[n] == "a" else 65002
            if n in ("n1", "n5"):
                node.rr_cluster_id = "224.0.0.1" if n == "n1" else "224.0.0.2"
                node.labels["route-reflector"] = "true"
        out.append(node)
    return out


def cluster(profile: str) -> Cluster:
    """The cluster as the lab starts it."""
    c = Cluster(
        asn=64512,
        mesh=profile == "mesh",
        communities=dict(COMMUNITIES),
        prefix_advertisements=[
            (CLUSTER_IPS[0], ["svc"]),
            (LB_IPS[0], ["lb", "lb-large"]),
            (CLUSTER_IPS[1], ["svc"]),
            (LB_IPS[1], ["lb", "lb-large"]),
        ],
        service_cluster_ips=list(CLUSTER_IPS),
        service_external_ips=list(EXTERNAL_IPS),
        service_lb_ips=list(LB_IPS),
        service_ips={LOCAL_LB[0]: ["n4"], LOCAL_LB[1]: ["n4"]},
        pools=[Pool(POOLS[0]), Pool(POOLS[1])],
        nodes=_nodes(profile),
        filters=[_tor_filter(profile)],
    )
    if profile == "mesh":
        for rack, tor in TOR.items():
            for fam, addr in ((4, tor_v4(tor)), (6, tor_v6(tor))):
                c.peers.append(
                    Peer(
                        f"{tor}-v{fam}",
                        addr,
                        TOR_ASN[tor],
                        node_selector=f"rack == '{rack}'",
                        max_restart_time=10,
                        filters=["tor"],
                    )
                )
    else:
        for rack, tor in TOR.items():
            c.peers.append(
                Peer(
                    f"rr-{rack}",
                    node_selector=f"rack == '{rack}'",
                    peer_selector=f"rack == '{rack}' && has(route-reflector)",
                )
            )
            for fam, addr in ((4, tor_v4(tor)), (6, tor_v6(tor))):
                c.peers.append(
                    Peer(
                        f"{tor}-v{fam}",
                        addr,
                        TOR_ASN[tor],
                        node_selector=f"rack == '{rack}' && has(route-reflector)",
                        keep_original_next_hop=True,
                        max_restart_time=10,
                        filters=["tor"],
                    )
                )
    return c


# --- what the operations change (confd's view after the change) --------------------------


def without_node(c: Cluster, name: str) -> Cluster:
    """The node deleted (it leaves the cluster)."""
    c = copy.deepcopy(c)
    c.nodes = [n for n in c.nodes if n.name != name]
    c.service_ips = {ip: [n for n in ns if n != name] for ip, ns in c.service_ips.items()}
    return c


def block_moved(c: Cluster, cidrs: tuple[str, str], src: str, dst: str) -> Cluster:
    """The blocks' affinity moved from ``src`` to ``dst``."""
    c = copy.deepcopy(c)
    moving = [b for b in c.node(src).blocks if b.cidr in cidrs]
    c.node(src).blocks = [b for b in c.node(src).blocks if b.cidr not in cidrs]
    c.node(dst).blocks += moving
    return c


def services_changed(c: Cluster) -> Cluster:
    """A new Local LoadBalancer service with its endpoint on n2, and a new rule in the
    ToR filter: that address goes out with two more 64512 on its AS path."""
    c = copy.deepcopy(c)
    c.service_ips[NEW_LB[0]] = ["n2"]
    c.service_ips[NEW_LB[1]] = ["n2"]
    f = next(f for f in c.filters if f.name == "tor")
    f.export_v4.insert(-1, Rule("Accept", cidr=f"{NEW_LB[0]}/32", operator="Equal",
                                prepend_as_path=[64512, 64512]))  # fmt: skip
    return c


MOVED_BLOCKS = ("10.65.3.64/26", "fd00:65:0:3::40/122")


def config_variants(profile: str):
    """Every (label, cluster) whose files the lab writes."""
    base = cluster(profile)
    yield "base", base
    yield "without-n4", without_node(base, "n4")
    yield "block-moved", block_moved(base, MOVED_BLOCKS, "n3", "n2")
    yield "services-changed", services_changed(base)

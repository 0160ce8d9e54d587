"""What a differential case feeds both daemons, derived from the golden configuration itself.

:func:`plan` reads the configuration (with bgpd's parser: the protocols, the static routes)
and its text (the pools, the prefixes and interface globs the filters name) and returns a
:class:`Plan`: the node's addresses, the peers (address, port, AS, who connects), the host
(interfaces, addresses, routes as Felix and an admin would make them) and, per peer, the
routes it announces. Every choice is deterministic, so the BIRD side and the bgpd side get
byte-identical inputs, and a failure reproduces.

The inputs (docs/bird-diff.md has the list with the reason for each):

* host: ``eth0`` with the node's address; workload interfaces ``cali1``/``cali2`` and
  ``/32`` (``/128``) workload routes in the node's blocks with metrics 1024 and 512 (a
  KubeVirt migration), a borrowed IP, ``tunl0``/``vxlan.calico`` with their addresses and
  Felix's onlink routes, ``kube-ipvs0`` (direct must skip it), a ``bpf*.cali`` route, an
  admin route and a blackhole outside the pools, optionally a default route, and a route
  into every prefix the filters name, on an interface each glob matches;
* peers: their own block (LOCAL_PREF = 2^31-1 - 1024, Calico's encoding of metric 1024),
  a block every peer announces alike (ECMP), a local workload /32 with a higher priority
  (LOCAL_PREF 2^31-1 - 511: preference 200, it must beat the local workload route), a
  route with communities, a large community, MED and an AS path, routes whose next hop is
  unresolvable, another node's (third party) or at the preference threshold, routes outside
  the pools (LOCAL_PREF absent, NO_EXPORT), a default route from eBGP peers, a second
  ADD-PATH path, and a route into every prefix the filters name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from bgpd.bird import load

MAXLP = 2147483647
THRESHOLD = MAXLP - 1024  # Calico's import filter: LOCAL_PREF above this gets preference 200

_PREFIX4 = re.compile(r"\b(\d+\.\d+\.\d+\.\d+)/(\d+)")
_PREFIX6 = re.compile(r"(?<![\w:])([0-9a-fA-F]{0,4}:[0-9a-fA-F:]*:[0-9a-fA-F]*)/(\d+)")
_POOL = re.compile(r"if \(net ~ ([0-9a-fA-F.:]+/\d+)\) then \{ (?:accept|reject); \}")
_GLOB = re.compile(r'ifname\s*~\s*"([^"]*)"')
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass
class Step:
    """Changes applied to both sides at once, after which both are compared again."""

    name: str
    host: list = field(default_factory=list)  # ``ip -n NODE ...`` argument lists
    announce: dict = field(default_factory=dict)  # peer name -> routes
    withdraw: dict = field(default_factory=dict)  # peer name -> [{"prefix", "path_id"}]


@dataclass
class PeerPlan:
    name: str  # the BIRD protocol
    address: str
    port: int  # where the peer listens (``neighbor ... port``)
    asn: int
    node_asn: int  # the node's AS on this session
    connect: bool  # the node's protocol is passive: the peer connects
    router_id: str
    add_path: bool
    ibgp: bool
    routes: list = field(default_factory=list)

    def spec(self, node_address: str, node_port: int) -> dict:
        return {
            "name": self.name,
            "local": self.address,
            "listen_port": self.port,
            "remote": node_address,
            "port": node_port,
            "asn": self.asn,
            "router_id": self.router_id,
            "connect": self.connect,
            "add_path": self.add_path,
            "ibgp": self.ibgp,
            "routes": self.routes,
        }


@dataclass
class Plan:
    ipv6: bool
    node_addresses: list  # "10.192.0.2/16"
    node_address: str  # the one peers connect to
    node_port: int
    subnet: ipaddress._BaseNetwork
    gateway: str  # an address in the peers' namespace, inside the node's subnet
    peers: list  # PeerPlan
    peer_addresses: list  # "10.192.0.3/16" or "/32" outside the subnet (and gateways)
    links: list  # interface names in the node namespace (veths)
    link_addresses: list  # (interface, "addr/len")
    routes: list  # ``ip route add`` argument lists, in the node namespace
    pools: list
    local_blocks: list
    workloads: dict  # role -> prefix text (w1: metric 1024, w2: metric 512...)
    blocks: dict  # role -> prefix text of remote blocks


def _ip(value, ipv6: bool) -> str:
    """A parsed address (bgpd.bird.values.Ip, an int) as text."""
    return str(ipaddress.IPv6Address(int(value)) if ipv6 else ipaddress.IPv4Address(int(value)))


def _net(text: str):
    return ipaddress.ip_network(text, strict=False)


def _subnet(pool, length: int, k: int):
    """The k-th subnet of ``pool`` of ``length`` (wrapping inside the pool)."""
    length = max(length, pool.prefixlen)
    count = 1 << (length - pool.prefixlen)
    step = 1 << (pool.max_prefixlen - length)
    base = int(pool.network_address) + (k % count) * step
    return ipaddress.ip_network((base, length))


def _host(net, k: int) -> str:
    return str(net.network_address + k)


def _iface_for(glob: str) -> str:
    name = glob.replace("*", "x").replace("?", "y").replace("\\", "")
    return name[:15] or "x"


def plan(main_path: str, text: str, ipv6: bool, default_route: bool = False) -> Plan:
    """The inputs of a case (``text``: every file of the case, concatenated)."""
    conf = load(main_path, ipv6=ipv6)
    bgps = [p for p in conf.of_kind("bgp") if p.neighbor is not None]
    statics = [r for p in conf.of_kind("static") for r in p.routes]
    blen = 122 if ipv6 else 26
    host_len = 128 if ipv6 else 32

    # -- the node ---------------------------------------------------------------------------
    addrs = [_ip(p.local_address, ipv6) for p in bgps if p.local_address is not None]
    if conf.listen_address is not None:
        addrs.insert(0, _ip(conf.listen_address, ipv6))
    if not addrs:
        addrs = ["2001::102" if ipv6 else str(ipaddress.IPv4Address(conf.router_id or 0))]
        if addrs[0] == "0.0.0.0":
            addrs = ["10.192.0.2"]
    node = addrs[0]
    subnet = _net(f"{node}/{64 if ipv6 else (16 if node.startswith('10.') else 24)}")
    node_addresses = []
    for a in dict.fromkeys(addrs):
        plen = subnet.prefixlen if ipaddress.ip_address(a) in subnet else host_len
        node_addresses.append(f"{a}/{plen}")
    gateway = _host(subnet, 1)
    node_port = conf.listen_port or 179

    # -- pools and blocks ---------------------------------------------------------------------
    pools = []
    for m in _POOL.finditer(text):
        n = _net(m.group(1))
        if n.version == (6 if ipv6 else 4) and n not in pools and n.prefixlen < host_len:
            pools.append(n)
    if not pools:
        pools = [_net("2002::/64" if ipv6 else "192.168.0.0/16")]
    pool = pools[0]
    local_blocks = []
    for r in statics:
        if r.dest != "blackhole":
            continue
        n = _net(f"{_ip(r.prefix, ipv6)}/{r.length}")
        if n.prefixlen < host_len and any(n.subnet_of(p) for p in pools if p.version == n.version):
            local_blocks.append(n)
    if not local_blocks:
        local_blocks = [_subnet(pool, blen, 1)]
    lb = local_blocks[0]
    lb2 = local_blocks[1] if len(local_blocks) > 1 else lb

    def B(k: int):  # a remote block
        return _subnet(pool, blen, 400 + k)

    # -- the host: links, addresses, routes ---------------------------------------------------
    links = ["eth0", "cali1", "cali2", "tunl0", "vxlan.calico", "kube-ipvs0", "bpfin.cali"]
    for glob in _GLOB.findall(text):
        name = _iface_for(glob)
        if name not in links:
            links.append(name)
    for m in re.finditer(r"interface ([^;]*);", text):  # direct's patterns: -"iface-1"...
        for name in _QUOTED.findall(m.group(1)):
            if name and not set(name) & set("*?\\") and name not in links and len(name) <= 15:
                links.append(name)
    fam = "-6" if ipv6 else "-4"
    workloads = {
        "w1": f"{_host(lb, 1)}/{host_len}",
        "w2": f"{_host(lb, 2)}/{host_len}",
        "w3": f"{_host(lb2, 3)}/{host_len}",
        "borrowed": f"{_host(_subnet(pool, blen, 5), 5)}/{host_len}",
        "w4": f"{_host(lb, 4)}/{host_len}",  # added in a later step
    }
    link_addresses = [
        ("tunl0", f"{_host(lb, 6)}/{host_len}"),
        ("vxlan.calico", f"{_host(lb, 7)}/{host_len}"),
        ("kube-ipvs0", "fd00:96::10/128" if ipv6 else "10.96.0.10/32"),
    ]
    peer_nets = [_ip(p.neighbor, ipv6) for p in bgps]
    other_node = peer_nets[0] if peer_nets else _host(subnet, 3)
    if ipv6:
        admin, black = "fd00:99::/64", "fd00:98::/64"
    else:
        admin, black = "10.99.0.0/24", "10.98.0.0/24"
    routes = [
        [fam, "route", "add", workloads["w1"], "dev", "cali1", "scope", "link", "metric", "1024"],
        [fam, "route", "add", workloads["w2"], "dev", "cali2", "scope", "link", "metric", "512"],
        [fam, "route", "add", workloads["w3"], "dev", "cali1", "scope", "link", "metric", "1024"],
        [fam, "route", "add", workloads["borrowed"], "dev", "cali2", "scope", "link"],
        [fam, "route", "add", str(B(91)), "via", _host(B(91), 0), "dev", "vxlan.calico", "onlink"],
        [fam, "route", "add", str(_subnet(pool, host_len, 9)), "dev", "bpfin.cali"],
        [fam, "route", "add", admin, "via", gateway, "dev", "eth0", "metric", "100"],
        [fam, "route", "add", "blackhole", black, "metric", "7"],
    ]
    if not ipv6:  # Felix's IPIP route (IPv4 only)
        routes.append(
            [fam, "route", "add", str(B(90)), "via", other_node, "dev", "tunl0", "onlink"]
        )
    if default_route:
        routes.append([fam, "route", "add", "default", "via", gateway, "dev", "eth0"])
    # a route into every prefix the filters name, on an interface a glob matches
    named = []
    for addr, length in (_PREFIX6 if ipv6 else _PREFIX4).findall(text):
        try:
            n = _net(f"{addr}/{length}")
        except ValueError:
            continue
        if n.version != (6 if ipv6 else 4) or n.prefixlen == 0 or n in named:
            continue
        if n in pools or n == subnet or any(n == b for b in local_blocks):
            continue
        named.append(n)
    named = named[:12]
    # -- the peers ---------------------------------------------------------------------------
    peers: list[PeerPlan] = []
    peer_addresses = [f"{gateway}/{subnet.prefixlen}"]
    for i, p in enumerate(bgps):
        addr = _ip(p.neighbor, ipv6)
        inside = ipaddress.ip_address(addr) in subnet
        a = f"{addr}/{subnet.prefixlen if inside else host_len}"
        if a not in peer_addresses:
            peer_addresses.append(a)
        if not inside and not any(
            r.dest == "router" and _ip(r.prefix, ipv6) == addr and r.length == host_len
            for r in statics
        ):
            routes.append(
                [fam, "route", "add", f"{addr}/{host_len}", "via", gateway, "dev", "eth0"]
            )
        for r in statics:  # reachableBy: the gateway of a static route to a peer
            if r.dest == "router" and r.via is not None:
                g = _ip(r.via, ipv6)
                gnet = _net(f"{g}/{subnet.prefixlen}")
                ga = f"{g}/{subnet.prefixlen}"
                if ga not in peer_addresses:
                    peer_addresses.append(ga)
                if ipaddress.ip_address(g) not in subnet:
                    # the node is on the gateway's network too (its ToR-facing side)
                    mine = f"{_host(gnet, 2 if _host(gnet, 2) != g else 3)}/{subnet.prefixlen}"
                    if mine not in node_addresses:
                        node_addresses.append(mine)
        ibgp = p.local_as == p.remote_as
        peers.append(
            PeerPlan(
                name=p.name,
                address=addr,
                port=p.remote_port,
                asn=p.remote_as,
                node_asn=p.local_as,
                connect=bool(p.passive),
                router_id=addr if not ipv6 else f"10.255.0.{i + 1}",
                add_path=ibgp,  # Calico nodes (BIRD, add paths on); ToRs (eBGP) without
                ibgp=ibgp,
            )
        )

    # a route into every prefix the filters name, on an interface a glob matches (not one
    # that would take the way to a peer or a gateway)
    avoid = [ipaddress.ip_address(a.split("/")[0]) for a in peer_addresses + node_addresses]
    named = [n for n in named if not any(a in n for a in avoid)]
    taken = {r[3] for r in routes}
    for i, n in enumerate(named):
        sub = _subnet(n, min(host_len, n.prefixlen + 4), 1)
        if str(sub) in taken or any(a in sub for a in avoid):
            continue
        dev = links[1 + (i % (len(links) - 1))]
        routes.append(
            [fam, "route", "add", str(sub), "dev", dev, "metric", str(100 + 1000 * (i % 2))]
        )
        taken.add(str(sub))

    # -- what each peer announces ------------------------------------------------------------
    third = [_host(subnet, 200 + i) for i in range(len(peers) + 2)]
    unres = "2001:db8:ffff::" if ipv6 else "198.51.100."
    outside = ["fd00:%x::/48" % (0x100 + i) if ipv6 else f"10.{100 + i}.0.0/16" for i in range(8)]
    services = [
        n for n in named if not any(n.subnet_of(q) for q in pools if q.version == n.version)
    ]
    seen_addr: dict = {}
    distinct = list(dict.fromkeys(pp.address for pp in peers))
    for pp in peers:
        k = seen_addr.setdefault(pp.address, len(seen_addr))  # one address, two ports: alike
        nh = pp.address
        path = [] if pp.ibgp else [pp.asn]

        def route(prefix, next_hop=nh, lp=100, extra_path=(), _pp=pp, _path=path, **kw):
            # iBGP always with LOCAL_PREF (RFC 4271 5.1.5; see docs/bird.md, differences)
            r = {"prefix": str(prefix), "next_hop": next_hop, "as_path": _path + list(extra_path)}
            if _pp.ibgp:
                r["local_pref"] = lp
            r.update(kw)
            return r

        rs = [
            route(B(k), lp=MAXLP - 1024),
            route(B(50), lp=MAXLP - 1024),  # every peer alike: ECMP
            route(
                B(60 + k),
                lp=MAXLP - 2000,
                med=50 + k,
                extra_path=[65000, 65001],
                communities=["65000:100", f"65000:{200 + k}"],
                large_communities=[f"65000:100:{200 + k}"],
            ),
            route(B(70 + k), next_hop=f"{unres}{k + 1}", lp=50),
            route(B(80 + k), next_hop=third[k], lp=THRESHOLD + 1),  # preference 200, metric 1023
            route(outside[k % len(outside)], communities=["65535:65281"] if k == 1 else []),
            route(B(100 + k), lp=100, origin=2, extra_path=[65000], atomic_aggregate=True),
        ]
        if k == 0:
            # a higher-priority remote copy of a local workload (KubeVirt live migration)
            # (and the community Calico's KubeVirt BGPFilter raises the priority on, for eBGP)
            rs.append(route(workloads["w1"], lp=MAXLP - 511, communities=["65000:100"]))
        if not pp.ibgp:
            rs.append(route("::/0" if ipv6 else "0.0.0.0/0"))
        for j, n in enumerate(services):
            if j % len(distinct) == k % len(distinct):
                rs.append(route(_subnet(n, min(host_len, n.prefixlen + 2), 2), lp=MAXLP - 1024))
        if pp.add_path:
            rs.append(dict(rs[0], path_id=2, next_hop=third[-1]))
        pp.routes = rs

    return Plan(
        ipv6=ipv6,
        node_addresses=node_addresses,
        node_address=node,
        node_port=node_port,
        subnet=subnet,
        gateway=gateway,
        peers=peers,
        peer_addresses=peer_addresses,
        links=links,
        link_addresses=link_addresses,
        routes=routes,
        pools=pools,
        local_blocks=local_blocks,
        workloads=workloads,
        blocks={f"B{k}": str(B(k)) for k in (0, 1, 50, 90, 91)},
    )


NO_LOCAL_PREF = {False: "10.199.0.0/16", True: "fd00:199::/48"}  # see churn()


def churn(p: Plan, no_local_pref: bool = False) -> Step:
    """The second step of every case: a workload goes and another comes (with a metric
    below 1024: it escapes aggregation), the first peer withdraws its block and its
    higher-priority workload route (the local one must win again), the last peer makes its
    copy of the ECMP block better (iBGP) or withdraws it (eBGP): the multipath route
    shrinks. ``no_local_pref``: the first iBGP peer also announces NO_LOCAL_PREF[ipv6]
    without LOCAL_PREF (BIRD takes it as 100; bgpd treats it as withdrawn, RFC 7606)."""
    fam = "-6" if p.ipv6 else "-4"
    step = Step(
        "churn",
        host=[
            [fam, "route", "del", p.workloads["w2"], "dev", "cali2", "metric", "512"],
            [
                fam,
                "route",
                "add",
                p.workloads["w4"],
                "dev",
                "cali1",
                "scope",
                "link",
                "metric",
                "256",
            ],
        ],
    )
    if p.peers:
        first = p.peers[0]
        gone = [r for r in first.routes if r["prefix"] in (p.blocks["B0"], p.workloads["w1"])]
        step.withdraw[first.name] = [
            {"prefix": r["prefix"], "path_id": r.get("path_id", 1)} for r in gone
        ]
    if no_local_pref:
        pp = next(x for x in p.peers if x.ibgp)
        route = {"prefix": NO_LOCAL_PREF[p.ipv6], "next_hop": pp.address, "as_path": []}
        step.announce.setdefault(pp.name, []).append(route)
    if len(p.peers) > 1:
        last = p.peers[-1]
        for r in last.routes:
            if r["prefix"] == p.blocks["B50"]:
                if last.ibgp:
                    step.announce.setdefault(last.name, []).append(dict(r, local_pref=MAXLP - 1000))
                else:
                    gone = step.withdraw.setdefault(last.name, [])
                    gone.append({"prefix": r["prefix"], "path_id": r.get("path_id", 1)})
    return step

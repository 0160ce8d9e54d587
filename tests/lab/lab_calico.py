"""A small confd: the BIRD 1.6 files calico-node writes for one node, from a model of the
Calico resources that reach them (BGPConfiguration, Node, BGPPeer, BGPFilter, IPPool, block
affinities, advertised services).

The output has the layout of confd's golden files (``confd/tests/compiled_templates`` in
projectcalico/calico, kept in ``../shared/corpora/calico-confd``): the same statements, in
the same order, with the same comments, and like the goldens no blank lines.
tests/lab/test_lab_configs.py rebuilds a set of golden cases from their inputs and compares
the files line for line, so the lab's nodes run what confd would write for them.

Only what the lab and those cases need is modelled: node-to-node mesh, global and
node-specific peers (``peerIP`` or ``peerSelector``, with reverse peering), route
reflectors (``routeReflectorClusterID``), ``localASNumber``, ``keepOriginalNextHop`` /
``nextHopMode``, ``maxRestartTime``, ``keepaliveTime``, ``numAllowedLocalASNumbers``,
``password``, ``ttlSecurity``, ``sourceAddress``, ``reachableBy``, listen port, BGPFilters
(cidr with its operators, source, interface, community, AS-path prefix, priority, peer
type; addCommunity, prependASPath, setPriority), communities and prefix advertisements,
service cluster/external/LoadBalancer ranges and single service addresses, IP pools
(IPIP, VXLAN, no encapsulation, BGP export disabled) with ``programClusterRoutes``.

Selectors: ``all()``, ``has(k)``, ``!has(k)``, ``k == 'v'``, ``k != 'v'`` joined by ``&&``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

INT_MAX = 2147483647  # BIRD's int range: LOCAL_PREF = INT_MAX - priority (metric)
OVERRIDE_PREFERENCE = 200
CONFIG_NAMES = {4: ("bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"),
                6: ("bird6.cfg", "bird6_aggr.cfg", "bird6_ipam.cfg")}  # fmt: skip


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


@dataclass
class Block:
    """An IPAM block affine to a node; ``state`` "" (implicitly confirmed), "confirmed" or
    "pending" (left out, as confd treats a pending affinity as deleted)."""

    cidr: str
    state: str = ""


@dataclass
class Node:
    name: str
    ipv4: str | None = None  # "10.192.0.2/16", as Node.spec.bgp.ipv4Address
    ipv6: str | None = None
    asn: int | None = None
    rr_cluster_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    listen_port: int | None = None

    def address(self, family: int) -> str | None:
        cidr = self.ipv4 if family == 4 else self.ipv6
        return cidr.split("/")[0] if cidr else None


@dataclass
class Rule:
    """One BGPFilter rule."""

    action: str  # "Accept" | "Reject"
    cidr: str | None = None
    operator: str = "In"  # Equal NotEqual In NotIn
    source: str | None = None  # "RemotePeers"
    interface: str | None = None
    community: str | None = None  # "a:b" or "a:b:c"
    as_path_prefix: list[int] | None = None
    priority: int | None = None
    peer_type: str | None = None  # "iBGP" | "eBGP"
    add_community: str | None = None
    prepend_as_path: list[int] | None = None
    set_priority: int | None = None


@dataclass
class Filter:
    name: str
    import_v4: list[Rule] = field(default_factory=list)
    export_v4: list[Rule] = field(default_factory=list)
    import_v6: list[Rule] = field(default_factory=list)
    export_v6: list[Rule] = field(default_factory=list)

    def rules(self, direction: str, family: int) -> list[Rule]:
        return getattr(self, f"{direction}_v{family}")


@dataclass
class Peer:
    """A BGPPeer resource."""

    name: str
    peer_ip: str | None = None  # "172.19.4.87", "[ac13::57]:50", "10.0.0.1:150"
    asn: int | None = None
    node: str | None = None
    node_selector: str | None = None
    peer_selector: str | None = None
    source_address: str = "UseNodeIP"  # or "None"
    keep_original_next_hop: bool = False
    next_hop_mode: str | None = None  # "Self" | "Keep"
    max_restart_time: int | None = None
    keepalive_time: int | None = None
    local_asn: int | None = None
    num_allowed_local_as: int | None = None
    password: str | None = None
    ttl_security: int | None = None
    reachable_by: str | None = None
    filters: list[str] = field(default_factory=list)


@dataclass
class Pool:
    cidr: str
    ipip: str = "Never"  # Always | CrossSubnet | Never
    vxlan: str = "Never"
    disable_bgp_export: bool = False

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).version


@dataclass
class Cluster:
    """BGPConfiguration ``default`` and everything else confd reads."""

    asn: int = 64512
    mesh: bool = True
    listen_port: int | None = None
    bind_node_ip: bool = False
    mesh_restart_time: int | None = None
    mesh_password: str | None = None
    debug: str = "info"  # logSeverityScreen: "none" | "info" | "debug"
    communities: dict[str, str] = field(default_factory=dict)  # name -> value
    prefix_advertisements: list[tuple[str, list[str]]] = field(default_factory=list)
    service_cluster_ips: list[str] = field(default_factory=list)
    service_external_ips: list[str] = field(default_factory=list)
    service_lb_ips: list[str] = field(default_factory=list)
    # single service addresses advertised by some nodes (externalTrafficPolicy: Local):
    # address -> names of the nodes with a ready endpoint
    service_ips: dict[str, list[str]] = field(default_factory=dict)
    program_cluster_routes: str = "EnabledNoEncapOnly"
    ignored_interfaces: list[str] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_asn(self, node: Node) -> int:
        return node.asn if node.asn is not None else self.asn


# --------------------------------------------------------------------------------------
# Selectors and peerings (confd's updatePeersV1, reduced to what the daemon sees)
# --------------------------------------------------------------------------------------

_TERM = re.compile(
    r"\s*(?:(?P<all>all\(\))|(?P<neg>!)?has\((?P<has>[\w./-]+)\)"
    r"|(?P<key>[\w./-]+)\s*(?P<op>==|!=)\s*'(?P<val>[^']*)')\s*$"
)


def selects(selector: str | None, labels: dict[str, str]) -> bool:
    if not selector:
        return False
    for term in selector.split("&&"):
        m = _TERM.match(term)
        if m is None:
            raise ValueError(f"selector not supported by the lab's confd: {selector!r}")
        if m["all"]:
            continue
        if m["has"]:
            if (m["has"] in labels) == bool(m["neg"]):
                return False
        elif (labels.get(m["key"]) == m["val"]) != (m["op"] == "=="):
            return False
    return True


@dataclass
class Peering:
    """One peering as confd stores it for a node (``/bgp/v1/{global,host/N}/peer_vX``)."""

    kind: str  # "Global" | "Node"
    ip: str
    port: int | None
    asn: int
    spec: Peer
    peer_node: Node | None = None  # the peer is a Calico node (selected, or by its IP)
    by_ip: bool = False  # peerIP names that node (then mesh-like passive rules apply)


def _split_peer_ip(text: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"\[(.+)\]:(\d+)", text)
    if m:
        return m[1], int(m[2])
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, None


def peerings(cluster: Cluster, node: Node, family: int) -> list[Peering]:
    """The explicit peerings of ``node`` for ``family`` (not the mesh)."""
    found: dict[tuple[str, int | None], Peering] = {}

    def add(p: Peering) -> None:
        key = (p.ip, p.port)
        have = found.get(key)
        if have is None or (have.kind == "Node" and p.kind == "Global"):
            found[key] = p  # a global peering to the same address wins

    def local(spec: Peer, n: Node) -> bool:
        if spec.node:
            return spec.node == n.name
        if spec.node_selector:
            return selects(spec.node_selector, n.labels)
        return True

    for spec in sorted(cluster.peers, key=lambda s: s.name):
        if spec.peer_selector:
            for other in cluster.nodes:
                if other is node:
                    continue
                forward = local(spec, node) and selects(spec.peer_selector, other.labels)
                reverse = local(spec, other) and selects(spec.peer_selector, node.labels)
                ip = other.address(family)
                if (forward or reverse) and ip:
                    kind = "Node" if (spec.node or spec.node_selector) else "Global"
                    add(Peering(kind, ip, None, cluster.node_asn(other), spec, other))
            continue
        if spec.peer_ip is None or not local(spec, node):
            continue
        ip, port = _split_peer_ip(spec.peer_ip)
        if ipaddress.ip_address(ip).version != family:
            continue
        kind = "Node" if (spec.node or spec.node_selector) else "Global"
        owner = next((n for n in cluster.nodes if n.address(family) == ip), None)
        add(Peering(kind, ip, port, spec.asn or cluster.asn, spec, owner, owner is not None))
    return list(found.values())


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render(cluster: Cluster, node_name: str, family: int) -> dict[str, str]:
    """``{"bird.cfg": text, "bird_aggr.cfg": ..., "bird_ipam.cfg": ...}`` (bird6* for 6)."""
    node = cluster.node(node_name)
    main, aggr, ipam = CONFIG_NAMES[family]
    return {
        main: _main(cluster, node, family),
        aggr: _aggr(cluster, node, family),
        ipam: _ipam(cluster, node, family),
    }


def _direct_interfaces(cluster: Cluster) -> str:
    pats = [f'-"{i}"' for i in cluster.ignored_interfaces] + ['-"cali*"', '-"kube-ipvs*"', '"*"']
    return ", ".join(pats)


_DIRECT_COMMENT = """\
 # Exclude cali* and kube-ipvs* but
                                          # include everything else.  In
                                          # IPVS-mode, kube-proxy creates a
                                          # kube-ipvs0 interface. We exclude
                                          # kube-ipvs0 because this interface
                                          # gets an address for every in use
                                          # cluster IP. We use static routes
                                          # for when we legitimately want to
                                          # export cluster IPs."""

_KERNEL = """\
# Configure synchronization between routing tables and kernel.
protocol kernel from kernel_template {
  export filter calico_kernel_programming; # Default is export none
  graceful restart;  # Turn on graceful restart to reduce potential flaps in
                     # routes when reloading BIRD configuration.  With a full
                     # automatic mesh, there is no way to prevent BGP from
                     # flapping since multiple nodes update their BGP
                     # configuration at the same time, GR is not guaranteed to
                     # work correctly in this scenario.
  merge paths on;    # Allow export multipath routes (ECMP)
}"""


def _communities(cluster: Cluster, family: int) -> list[str]:
    out = ["function apply_communities ()", "{"]
    for cidr, names in cluster.prefix_advertisements:
        if ipaddress.ip_network(cidr, strict=False).version != family:
            continue
        values = sorted({cluster.communities.get(n, n) for n in names})
        if not values:
            continue
        out.append(f"      if ( net ~ {cidr} ) then {{")
        for v in values:
            parts = v.split(":")
            if len(parts) == 2:
                out.append(f"          bgp_community.add(({parts[0]}, {parts[1]}));")
            else:
                out.append(f"          bgp_large_community.add(({', '.join(parts)}));")
        out.append("      }")
    out.append("}")
    return out


def _debug_modes(cluster: Cluster) -> tuple[str, str]:
    if cluster.debug == "none":
        return "", ""
    if cluster.debug == "debug":
        return "all", "debug all;"
    return "{ states }", "debug { states, routes, filters, events };"


def _main(cluster: Cluster, node: Node, family: int) -> str:
    debug, peer_debug = _debug_modes(cluster)
    node_ip = node.address(family)
    _, aggr, ipam = CONFIG_NAMES[family]
    out = _communities(cluster, family)
    out += [
        "template kernel kernel_template {",
        "  learn;             # Learn all alien routes from the kernel",
        "  persist;           # Don't remove routes on bird shutdown",
        "  scan time 2;       # Scan kernel routing table every 2 seconds",
        "  import all;",
        "}",
        "template direct direct_template {",
    ]
    if debug:
        out.append(f"  debug {debug};")
    interfaces = _direct_interfaces(cluster)
    comment = _DIRECT_COMMENT if interfaces == '-"cali*", -"kube-ipvs*", "*"' else ""
    out += [f"  interface {interfaces};{comment}", "}"]
    out += ["# Generated by confd", f'include "{aggr}";', f'include "{ipam}";']
    out.append(f"router id {node.address(4)};")
    port = node.listen_port or cluster.listen_port
    listen_addr = node_ip if cluster.bind_node_ip else None
    if port or listen_addr:
        out.append("# BGP listen configuration")
        line = "listen bgp"
        if listen_addr:
            line += f" address {listen_addr}"
        if port:
            line += f" port {port}"
        out.append(line + ";")
    out.append(_KERNEL)
    out += ["# Watch interface up/down events.", "protocol device {"]
    if debug:
        out.append(f"  debug {debug};")
    out += ["  scan time 2;    # Scan interfaces every 2 seconds", "}"]
    out += ["protocol direct from direct_template {", "}"]
    if not node_ip:
        out.append(f"# IPv{family} disabled on this node.")
        return "\n".join(out) + "\n"
    out += ["# Template for all BGP clients", "template bgp bgp_template {"]
    if peer_debug:
        out.append(f"  {peer_debug}")
    out += [
        '  description "Connection to BGP peer";',
        f"  local as {cluster.node_asn(node)};",
        "  gateway recursive; # This should be the default, but just in case.",
        "  add paths on;",
        "  graceful restart;  # See comment in kernel section about graceful restart.",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "}",
    ]
    out += _filter_functions(cluster, family)
    peers = _peers(cluster, node, family)
    if peers:
        out.append("# BGP Protocol Configurations")
        for p in peers:
            out += p
    else:
        out.append("# No BGP peers configured for this node")
    return "\n".join(out) + "\n"


def _peers(cluster: Cluster, node: Node, family: int) -> list[list[str]]:
    node_ip = node.address(family)
    node_asn = cluster.node_asn(node)
    rendered: list[tuple[str, list[str]]] = []
    sep = "." if family == 4 else ":"

    def block(
        name: str,
        ip: str,
        port: int | None,
        asn: int,
        *,
        local_asn: int | None = None,
        source: str | None = None,
        ttl: int | None = None,
        filters: tuple[str, ...] = (),
        passive: bool = False,
        restart: int | None = None,
        keepalive: int | None = None,
        rr: str | None = None,
        password: str | None = None,
        nh_keep: bool = False,
        nh_self: bool = False,
        allow_local: int | None = None,
    ) -> list[str]:
        eff_asn = local_asn if local_asn is not None else node_asn
        same = asn == eff_asn
        out = [f"protocol bgp {name} from bgp_template {{"]
        if local_asn is not None:
            out.append(f"  local as {local_asn};")
        out.append(f"  neighbor {ip}{f' port {port}' if port else ''} as {asn};")
        if source:
            out.append(
                f"  source address {source};  # The local address we use for the TCP connection"
            )
        if ttl:
            out += ["  ttl security on;", f"  multihop {ttl};"]
        else:
            out += ["  ttl security off;", "  multihop;"]
        out += ["  import filter {"]
        for f in filters:
            if _filter_rules(cluster, f, "import", family):
                arg = str(same).lower() if _has_peer_type(cluster, f, "import", family) else ""
                out.append(f"    'bgp_{f}_importFilterV{family}'({arg});")
        out += [
            f"    if (defined(bgp_local_pref)&&(bgp_local_pref > {INT_MAX - 1024})) then",
            f"      preference = {OVERRIDE_PREFERENCE};",
            "    accept;",
            "  };",
            "  export filter {",
            "    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {",
            f"      krt_metric = {INT_MAX} - bgp_local_pref;",
            "    } else {",
            "      if (!defined(krt_metric)) then { krt_metric = 1024; }",
            f"      bgp_local_pref = {INT_MAX} - krt_metric;",
            "    }",
        ]
        for f in filters:
            if _filter_rules(cluster, f, "export", family):
                arg = str(same).lower() if _has_peer_type(cluster, f, "export", family) else ""
                out.append(f"    'bgp_{f}_exportFilterV{family}'({arg});")
        out += [
            f"    calico_export_to_bgp_peers({str(same).lower()});",
            "    reject;",
            "  };  # Only want to export routes for workloads.",
        ]
        if passive:
            out.append("  passive on;")
        if restart:
            out.append(f"  graceful restart time {restart};")
        if keepalive:
            out.append(f"  keepalive time {keepalive};")
        if rr:
            out += ["  rr client;", f"  rr cluster id {rr};"]
        if password:
            out.append(f'  password "{password}";')
        if nh_keep:
            out.append("  next hop keep;")
        if nh_self:
            out.append("  next hop self;")
        if allow_local:
            out.append(f"  allow local as {allow_local};")
        out.append("}")
        return out

    if cluster.mesh and not node.rr_cluster_id:
        for other in cluster.nodes:
            ip = other.address(family)
            if other is node or not ip or other.rr_cluster_id:
                continue
            port = other.listen_port or cluster.listen_port
            name = f"Mesh_{ip.replace(sep, '_')}"
            rendered.append(
                (
                    name,
                    block(
                        name,
                        ip,
                        port,
                        cluster.node_asn(other),
                        source=node_ip,
                        passive=ip > node_ip,
                        restart=cluster.mesh_restart_time,
                        password=cluster.mesh_password,
                    ),
                )
            )
    for p in peerings(cluster, node, family):
        if p.ip == node_ip:
            continue
        s = p.spec
        name = f"{p.kind}_{p.ip.replace(sep, '_')}" + (f"_port_{p.port}" if p.port else "")
        eff_asn = s.local_asn if s.local_asn is not None else node_asn
        peer_rr = p.peer_node.rr_cluster_id if p.peer_node else None
        rr = None
        if p.asn == eff_asn and node.rr_cluster_id and peer_rr != node.rr_cluster_id:
            rr = node.rr_cluster_id
        passive = p.kind == "Global" and p.by_ip and p.ip > node_ip
        rendered.append(
            (
                name,
                block(
                    name,
                    p.ip,
                    p.port,
                    p.asn,
                    local_asn=s.local_asn,
                    source=node_ip if s.source_address == "UseNodeIP" else None,
                    ttl=s.ttl_security,
                    filters=tuple(s.filters),
                    passive=passive,
                    restart=s.max_restart_time,
                    keepalive=s.keepalive_time,
                    rr=rr,
                    password=s.password,
                    nh_keep=s.next_hop_mode == "Keep"
                    or (s.keep_original_next_hop and p.asn != eff_asn),
                    nh_self=s.next_hop_mode == "Self",
                    allow_local=s.num_allowed_local_as,
                ),
            )
        )
    rendered.sort(key=lambda t: t[0])
    return [b for _, b in rendered]


# --- BGPFilter functions -----------------------------------------------------------------


def _filter_rules(cluster: Cluster, name: str, direction: str, family: int) -> list[Rule]:
    f = next((f for f in cluster.filters if f.name == name), None)
    return f.rules(direction, family) if f else []


def _has_peer_type(cluster: Cluster, name: str, direction: str, family: int) -> bool:
    return any(r.peer_type for r in _filter_rules(cluster, name, direction, family))


_OPS = {"Equal": "=", "NotEqual": "!=", "In": "~", "NotIn": "!~"}


def _community(value: str) -> tuple[str, str]:
    parts = value.split(":")
    attr = "bgp_community" if len(parts) == 2 else "bgp_large_community"
    return f"({', '.join(parts)})", attr


def _rule(rule: Rule) -> str:
    conds = []
    if rule.cidr:
        conds.append(f"(net {_OPS[rule.operator]} {rule.cidr})")
    if rule.source == "RemotePeers":
        conds.append("((defined(source))&&(source ~ [ RTS_BGP ]))")
    if rule.interface:
        conds.append(f'((defined(ifname))&&(ifname ~ "{rule.interface}"))')
    if rule.community:
        value, attr = _community(rule.community)
        conds.append(f"({value} ~ {attr})")
    if rule.as_path_prefix:
        conds.append(f"(bgp_path ~ [= {' '.join(map(str, rule.as_path_prefix))} * =])")
    if rule.priority is not None:
        conds.append(f"(defined(bgp_local_pref)&&(bgp_local_pref = {INT_MAX - rule.priority}))")
    ops = []
    if rule.add_community:
        value, attr = _community(rule.add_community)
        ops.append(f"{attr}.add({value});")
    for asn in reversed(rule.prepend_as_path or []):
        ops.append(f"bgp_path.prepend({asn});")
    if rule.set_priority is not None:
        ops.append(f"bgp_local_pref = {INT_MAX - rule.set_priority};")
    ops.append(f"{rule.action.lower()};")
    body = " ".join(ops)
    if conds:
        stmt = f"if ({'&&'.join(conds)}) then {{ {body} }}"
    else:
        stmt = body
    if rule.peer_type:
        test = "is_same_as" if rule.peer_type == "iBGP" else "!is_same_as"
        stmt = f"if ({test}) then {{ {stmt} }}"
    return "  " + stmt


def _filter_functions(cluster: Cluster, family: int) -> list[str]:
    out = ["# -------------- BGP Filters ------------------"]
    v = f"V{family}"
    body: list[str] = []
    for f in sorted(cluster.filters, key=lambda f: f.name):
        imp, exp = f.rules("import", family), f.rules("export", family)
        if not imp and not exp:
            continue
        body.append(f"# v{family} BGPFilter {f.name}")
        for direction, rules in (("import", imp), ("export", exp)):
            if not rules:
                continue
            arg = "bool is_same_as" if any(r.peer_type for r in rules) else ""
            body.append(f"function 'bgp_{f.name}_{direction}Filter{v}'({arg}) {{")
            body += [_rule(r) for r in rules]
            body.append("}")
    return out + (body or [f"# No v{family} BGPFilters configured"])


# --- bird_aggr.cfg -------------------------------------------------------------------------


def _in_family(cidr: str, family: int) -> bool:
    return ipaddress.ip_network(cidr, strict=False).version == family


def _sorted_cidrs(cidrs) -> list[str]:
    """confd lists keys with ``/`` written as ``-``; in that order."""
    return sorted(set(cidrs), key=lambda c: c.replace("/", "-"))


def static_routes(cluster: Cluster, node: Node, family: int) -> list[str]:
    """The advertised service routes of ``node``: the configured ranges, and the single
    addresses of services with an endpoint on it."""
    ranges = cluster.service_cluster_ips + cluster.service_external_ips + cluster.service_lb_ips
    singles = [
        ip if "/" in ip else f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"
        for ip, nodes in cluster.service_ips.items()
        if node.name in nodes
    ]
    return _sorted_cidrs(c for c in ranges + singles if _in_family(c, family))


def _aggr(cluster: Cluster, node: Node, family: int) -> str:
    host = "/32" if family == 4 else "/128"
    blocks = [b for b in node.blocks if _in_family(b.cidr, family) and b.state != "pending"]
    blocks.sort(key=lambda b: b.cidr.replace("/", "-"))
    statics = static_routes(cluster, node, family)
    reach = [
        (p.kind, f"{p.ip}{host}", p.spec.reachable_by)
        for p in peerings(cluster, node, family)
        if p.spec.reachable_by and p.ip != node.address(family)
    ]
    out = ["# Generated by confd", "template static static_template {"]
    route_lines = []
    if blocks:
        route_lines.append("   # IP blocks for this host.")
        route_lines += [
            f"   route {b.cidr} blackhole;" for b in blocks if not b.cidr.endswith(host)
        ]
    if statics:
        route_lines.append("   # Static routes.")
        route_lines += [f"   route {c} blackhole;" for c in statics]
    for kind, title in (("Global", "global BGP peers"), ("Node", "node specific BGP peers")):
        mine = [r for r in reach if r[0] == kind]
        if mine:
            route_lines.append(f"   # Static routes needed for {title}.")
            route_lines += [f"   route {dst} via {gw};" for _, dst, gw in mine]
    if route_lines:
        out += route_lines + ["}", "protocol static from static_template {", "}"]
    else:
        out += ["   # No IP blocks or static routes for this host.", "}"]
    out += [
        "# Aggregation of routes on this host; export the block, nothing beneath it.",
        "function calico_aggr ()",
        "{",
    ]
    for b in blocks:
        if b.state:
            out.append(f"      # Block {b.cidr} is {b.state}")
        else:
            out.append(f"      # Block {b.cidr} is implicitly confirmed.")
        out += [
            f"      if ( net = {b.cidr} ) then {{ accept; }}",
            f"      if ( net ~ {b.cidr} && krt_metric < 1024 ) then {{ accept; }}",
            f"      if ( net ~ {b.cidr} ) then {{ reject; }}",
        ]
    out.append("}")
    return "\n".join(out) + "\n"


# --- bird_ipam.cfg -------------------------------------------------------------------------


def _programs(cluster: Cluster, pool: Pool) -> bool:
    if pool.vxlan != "Never":
        return False
    ipip = pool.ipip != "Never"
    pcr = cluster.program_cluster_routes
    if ipip:
        return pcr in ("Enabled", "EnabledIPIPOnly")
    return pcr in ("Enabled", "EnabledNoEncapOnly")


def _network(node: Node, family: int) -> str | None:
    cidr = node.ipv4 if family == 4 else node.ipv6
    return str(ipaddress.ip_interface(cidr).network) if cidr else None


def _pool_line(pool: Pool, cluster: Cluster, kernel: bool, node: Node, family: int) -> str:
    """confd's processIPPool: ``(action, text)`` of one pool's statement."""
    cidr = pool.cidr
    if pool.disable_bgp_export and not kernel:
        return "reject", f"  if (net ~ {cidr}) then {{ reject; }} # BGP export is disabled."
    if pool.vxlan != "Never":
        if kernel:
            return (
                "reject",
                f"  if (net ~ {cidr}) then {{ reject; }} # VXLAN routes are handled by Felix.",
            )
        return "accept", f"  if (net ~ {cidr}) then {{ accept; }}"
    if _programs(cluster, pool):
        extra = ""
        if kernel and family == 4:
            if pool.ipip == "Always":
                extra = 'krt_tunnel="tunl0";'
            elif pool.ipip == "CrossSubnet":
                extra = (
                    f"if (defined(bgp_next_hop)&&(bgp_next_hop ~ {_network(node, 4)})) then "
                    'krt_tunnel=""; else krt_tunnel="tunl0";'
                )
        if extra:
            return "accept", f"  if (net ~ {cidr}) then {{ {extra} accept; }}"
        return "accept", f"  if (net ~ {cidr}) then {{ accept; }}"
    if kernel:
        return (
            "reject",
            f"  if (net ~ {cidr}) then {{ reject; }} # Cluster routes are handled by Felix.",
        )
    return "accept", f"  if (net ~ {cidr}) then {{ accept; }}"


def _ipam(cluster: Cluster, node: Node, family: int) -> str:
    pools = [p for p in cluster.pools if p.family == family]
    disabled = sorted(t for a, t in (_pool_line(p, cluster, False, node, family) for p in pools)
                      if a == "reject")  # fmt: skip
    enabled = sorted(t for a, t in (_pool_line(p, cluster, False, node, family) for p in pools)
                     if a == "accept")  # fmt: skip
    kernel = []
    if family == 6 or _network(node, 4):
        for p in pools:
            a, t = _pool_line(p, cluster, True, node, family)
            if family == 6 and a != "reject":
                continue
            kernel.append(t)
    kernel.sort()
    tunnel = ['(ifname ~ "*.cali")', '(ifname ~ "*.calico")']
    if cluster.program_cluster_routes not in ("Enabled", "EnabledIPIPOnly"):
        tunnel.append('(ifname ~ "tunl0")')
    statics = static_routes(cluster, node, family)
    rejects = _sorted_cidrs(
        c
        for c in cluster.service_cluster_ips + cluster.service_external_ips + cluster.service_lb_ips
        if _in_family(c, family)
    )
    out = [
        "# Generated by confd",
        "function reject_local_routes () {",
        "  # Don't export local routes learned via BPF as they should never leave the node.",
        "  if (defined(ifname)) then {",
        '     if (ifname ~ "bpf*.cali") then {',
        "        reject;",
        "     }",
        "  }",
        "}",
        "function calico_export_to_bgp_peers(bool internal_peer) {",
        "  # filter code terminates when it calls `accept;` or `reject;`,",
        *disabled,
        "  if (internal_peer) then {",
        "    if (defined(ifname)) then {",
        f"      if ({' || '.join(tunnel)}) then {{",
        "        reject;",
        "      }",
        "    }",
        "  }",
        "  reject_local_routes();",
        "  apply_communities();",
        "  calico_aggr();",
    ]
    if statics:
        out.append("  # Export static routes.")
        out += [f"  if ( net ~ {c} ) then {{ accept; }}" for c in statics]
    lbs = [c for c in cluster.service_lb_ips if _in_family(c, family)]
    if node.rr_cluster_id and lbs:
        out.append(
            "  # Configured as a RR - accept any routes within configured LB service IP ranges"
        )
        out += [f"  if ( net ~ {c} ) then {{ accept; }}" for c in lbs]
    out += enabled
    out += ["}", "filter calico_kernel_programming {"]
    if rejects:
        out.append("  # Don't program static routes into kernel.")
        out += [f"  if ( net ~ {c} ) then {{ reject; }}" for c in rejects]
    out += [
        "  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {",
        "      krt_metric = 1024;",
        "      if (defined(bgp_local_pref)) then {",
        f"          krt_metric = {INT_MAX} - bgp_local_pref;",
        "      }",
        "      if (krt_metric < 1024) then {",
        f"          preference = {OVERRIDE_PREFERENCE};",
        "      }",
        "  }",
        *kernel,
        "  accept;",
        "}",
    ]
    return "\n".join(out) + "\n"

"""Calico's own filters, on kernel, direct and static routes, against BIRD 1.6.8.

For a sample of confd's golden cases (mesh, route reflector, ToR peers, BGPFilter import and
export, communities, service advertisement, IPIP Always/CrossSubnet with ``krt_tunnel``,
cluster routes, IPv6), BIRD 1.6.8 runs the golden configuration unchanged but for two things
inside a network namespace of the test's own (``bf-...``): the fork's ``krt_tunnel = "X"`` is
written ``bgp_med = 1000+i`` (upstream BIRD has no krt_tunnel), and the inline import and
export filters of the ``protocol bgp`` blocks are also defined as named filters, so that
``show route filter F all`` runs them. The namespace holds what Felix makes: workload routes
``/32 dev caliX`` with metrics (1024, and 512 for a KubeVirt migration), a borrowed IP, an
IPIP route ``via ... dev tunl0 onlink``, a VXLAN route, a ``bpf*.cali`` route, a node
interface with its subnet, the ``kube-ipvs0`` interface direct must skip, and a route into
every prefix and interface glob the filters name. BIRD learns them (``protocol kernel``,
``learn``), the golden ``protocol static`` adds its blackholes, ``protocol direct`` the
connected networks.

bgpd builds each route from BIRD's own table (``show route all``) and must give, for every
filter, exactly the routes, preferences and attributes BIRD gives; with the original golden
text, its ``krt_tunnel`` must be what the marker says.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import time

import pytest
from bird_helpers import run_in
from bird_oracle import Oracle, shown_of, view_of
from needs import skip_or_fail

from bgpd.bird import compile_filter, load

CASES_V4 = [
    "mesh/ipip-always",
    "mesh/ipip-cross-subnet",
    "mesh/vxlan-always",
    "mesh/communities",
    "mesh/static-routes",
    "mesh/bgp-export",
    "explicit_peering/route_reflector",
    "explicit_peering/global-external",
    "explicit_peering/keepnexthop",
    "bgpfilter/match_operators",
    "bgpfilter/match_interface",
    "bgpfilter/match_source",
    "bgpfilter/communities_and_operations",
    "bgpfilter/as_path_and_priority",
    "bgpfilter/kubevirt_live_migration",
    "bgpfilter/peer_type",
    "cluster_routes/enabled",
    "cluster_routes/ipip-only",
    "reachable_by/global_peers",
    "ttl_security/explicit_node",
]
CASES_V6 = [
    "mesh/ipip-always",
    "mesh/static-routes",
    "explicit_peering/global-ipv6",
    "bgpfilter/v6_only/global_peer",
    "bgpfilter/large_community",
]

_TUNNEL = re.compile(r'krt_tunnel\s*=\s*"([^"]*)"')
_PREFIX4 = re.compile(r"\b(\d+\.\d+\.\d+\.\d+)/(\d+)")
_PREFIX6 = re.compile(r"\b([0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F]*)/(\d+)")
_GLOB = re.compile(r'ifname\s*~\s*"([^"]*)"')


def _inline_filters(text: str) -> list[tuple[str, str]]:
    """The bodies of the ``import filter { ... }`` and ``export filter { ... }`` blocks."""
    out = []
    for m in re.finditer(r"\b(import|export) filter \{", text):
        depth, i = 1, m.end()
        while depth:
            c = text[i]
            depth += (c == "{") - (c == "}")
            i += 1
        body = text[m.end() : i - 1]
        if (m.group(1), body) not in out:
            out.append((m.group(1), body))
    return out


def _oracle_text(text: str, tunnels: list) -> str:
    """Upstream BIRD's version of a fork file: krt_tunnel = "X" becomes a med marker."""

    def marker(m):
        if m.group(1) not in tunnels:
            tunnels.append(m.group(1))
        return f"bgp_med = {1000 + tunnels.index(m.group(1))}"

    return _TUNNEL.sub(marker, text)


def _iface_for(glob: str) -> str:
    name = glob.replace("*", "x").replace("?", "y").replace("\\", "")
    return name[:15] or "x"


def _setup_namespace(ns: str, text: str, ipv6: bool) -> None:
    """Interfaces and routes as Felix and the host would have them."""
    links = ["eth0", "cali1", "tunl0", "vxlan.calico", "kube-ipvs0", "bpfin.cali"]
    for glob in _GLOB.findall(text):
        name = _iface_for(glob)
        if name not in links:
            links.append(name)
    for i, name in enumerate(links):
        run_in(ns, "link", "add", name, "type", "veth", "peer", "name", f"bfp{i}")
        run_in(ns, "link", "set", name, "up")
        run_in(ns, "link", "set", f"bfp{i}", "up")
    fam = "-6" if ipv6 else "-4"
    if ipv6:
        run_in(ns, "addr", "add", "fd00:10:192::2/64", "dev", "eth0", "nodad")
        run_in(ns, "addr", "add", "fd00:96::10/128", "dev", "kube-ipvs0", "nodad")
        nh = "fd00:10:192::3"
        routes = [
            ["fd00:10:244:1::1/128", "dev", "cali1", "metric", "1024"],
            ["fd00:10:244:1::2/128", "dev", "cali1", "metric", "512"],
            ["fd00:99::/64", "dev", "eth0", "metric", "100"],
            ["fd00:10:244:9::/122", "via", nh, "dev", "eth0", "metric", "5"],
            ["blackhole", "fd00:10:244:7::/122", "metric", "7"],
        ]
        found = _PREFIX6.findall(text)
    else:
        run_in(ns, "addr", "add", "10.192.0.2/16", "dev", "eth0")
        run_in(ns, "addr", "add", "192.168.221.192/32", "dev", "tunl0")
        run_in(ns, "addr", "add", "10.96.0.10/32", "dev", "kube-ipvs0")
        routes = [
            ["192.168.221.193/32", "dev", "cali1", "metric", "1024"],
            ["192.168.221.194/32", "dev", "cali1", "metric", "512"],
            ["192.168.5.5/32", "dev", "cali1"],
            ["10.99.0.0/24", "dev", "eth0", "metric", "100"],
            ["192.168.100.0/26", "via", "10.192.0.3", "dev", "tunl0", "onlink"],
            ["192.168.101.0/26", "via", "10.192.0.4", "dev", "vxlan.calico", "onlink"],
            ["10.2.0.1/32", "dev", "bpfin.cali"],
            ["blackhole", "192.168.99.0/26", "metric", "7"],
        ]
        found = _PREFIX4.findall(text)
    # a route inside every prefix the filters name (and the prefix itself), on an interface
    # each glob matches, with a metric below and above 1024
    seen = {tuple(r[:2]) for r in routes}
    for n, (addr, length) in enumerate(dict.fromkeys(found)):
        try:
            net = ipaddress.ip_network(f"{addr}/{length}")
        except ValueError:
            continue
        if net.version != (6 if ipv6 else 4) or net.prefixlen == 0:
            continue
        sub = next(net.subnets(new_prefix=min(net.max_prefixlen, net.prefixlen + 4)))
        for i, p in enumerate((net, sub)):
            dev = links[(n + i) % len(links)]
            if ("dev", dev) in seen or (str(p), "dev") in seen:
                continue
            routes.append([str(p), "dev", dev, "metric", str(100 + 1000 * ((n + i) % 2))])
            seen.add((str(p), "dev"))
    for r in routes:
        run_in(ns, fam, "route", "add", *r)


def _run_case(goldens, bird16, netns, tmp_path, case: str, ipv6: bool):
    src = goldens / case
    main_name = "bird6.cfg" if ipv6 else "bird.cfg"
    work = tmp_path / "cfg"
    work.mkdir()
    tunnels: list = []
    for f in src.glob("bird*.cfg"):
        (work / f.name).write_text(_oracle_text(f.read_text(), tunnels))
    text = (work / main_name).read_text()
    filters = _inline_filters(text)
    names = []
    extra = []
    for i, (direction, body) in enumerate(filters):
        name = f"bf_{direction}_{i}"
        names.append((name, direction))
        extra.append(f"filter {name} {{{body}}}\n")
    (work / main_name).write_text(text + "\n" + "".join(extra))
    full = "".join(p.read_text() for p in work.glob("bird*.cfg"))
    if "calico_kernel_programming" in full:
        names.append(("calico_kernel_programming", "export"))
    _setup_namespace(netns, full, ipv6)

    oracle = Oracle(bird16, tmp_path, ipv6=ipv6, netns=netns)
    cfg_text = (work / main_name).read_text()
    (work / main_name).unlink()
    oracle.start(cfg_text, name=f"cfg/{main_name}")
    try:
        base = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for the kernel scan
            base = oracle.show()
            if sum(r.rtype.startswith("inherit") for r in base) >= 4:
                break
            time.sleep(0.3)
        answers = {name: oracle.show(name) for name, _ in names}
    finally:
        oracle.stop()
    return work / main_name, base, names, answers, tunnels


@pytest.mark.parametrize(
    "case,ipv6",
    [(c, False) for c in CASES_V4] + [(c, True) for c in CASES_V6],
    ids=[f"v4:{c}" for c in CASES_V4] + [f"v6:{c}" for c in CASES_V6],
)
def test_calico_filters_match_bird(goldens, bird16, netns, tmp_path, case, ipv6):
    if shutil.which("ip") is None:
        skip_or_fail("needs iproute2")
    if not (goldens / case / ("bird6.cfg" if ipv6 else "bird.cfg")).exists():
        skip_or_fail(f"{case}: no golden")
    main, base, names, answers, tunnels = _run_case(goldens, bird16, netns, tmp_path, case, ipv6)
    kinds = {r.rtype.split()[0] for r in base}
    assert {"inherit", "device"} <= kinds  # kernel-learned and direct routes are there
    conf = load(str(main), ipv6=ipv6)
    compared = 0
    for name, direction in names:
        program = compile_filter(conf.filters[name], ipv6, export=direction == "export")
        bird = {r.key(): r.comparable() for r in answers[name]}
        ours = {}
        for route in base:
            verdict = program.run(view_of(route, ipv6))
            if verdict.accepted:
                ours[route.key()] = shown_of(route, verdict).comparable()
        assert ours == bird, name
        compared += len(base)
    assert compared >= len(base)

    # krt_tunnel: bgpd on the original (fork) text sets what the oracle's marker says
    original = load(str(goldens / case / main.name), ipv6=ipv6)
    if "calico_kernel_programming" in original.filters and tunnels:
        kernel = compile_filter(original.filters["calico_kernel_programming"], ipv6)
        marked = {r.key(): r.attrs.get("BGP.med") for r in answers["calico_kernel_programming"]}
        for route in base:
            verdict = kernel.run(view_of(route, ipv6))
            if route.key() not in marked:
                assert not verdict.accepted
                continue
            med = marked[route.key()]
            want = tunnels[int(med) - 1000] if med and int(med) >= 1000 else None
            assert verdict.krt_tunnel == want, route.prefix

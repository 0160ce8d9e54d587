"""BIRD's BGP attribute conventions around filters (bgpd.bird.bgp), against BIRD 1.6.8.

Three BIRD daemons in a namespace of the test's own: a feeder announces routes with assorted
attributes over iBGP (AS 64512) and eBGP (AS 65001) to the oracle; the oracle (AS 64512) has
Calico's import filter on both, local static routes, and Calico's export logic toward an
iBGP route-reflection client and an eBGP neighbor (AS 65002), both in a sink daemon.

Compared with what bgpd computes from the same inputs:

* the feeder's announcements, through :func:`wire_attrs` and :func:`import_attrs` and the
  import filter, against the oracle's table (LOCAL_PREF dropped from eBGP, 100 added);
* every route of the oracle's table, through :func:`export_attrs` and the export filter,
  against ``show route export PEER all`` (what the oracle's export filter let through, with
  the attributes it had then), for the client and the eBGP neighbor;
* that, through :func:`wire_attrs` and the sink's :func:`import_attrs`, against the sink's
  table.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from bird_helpers import run_in
from bird_oracle import Oracle, shown_of, view_of

from bgpd.bird import bgp, compile_filter, load
from bgpd.wire.attrs import AttrSet, intern

FEEDER = """
router id 10.0.0.1;
listen bgp port 1791;
protocol device {}
protocol static feed {
  import filter {
    if net ~ 192.168.1.0/24 then { bgp_local_pref = 2147483600; bgp_community.add((65000, 1)); }
    if net ~ 192.168.2.0/24 then { bgp_med = 7; bgp_path.prepend(65100); }
    if net ~ 192.168.3.0/24 then { bgp_local_pref = 50; bgp_large_community.add((1, 2, 3)); }
    if net ~ 10.50.0.0/16 then { bgp_community.add((65535, 65281)); }
    accept;
  };
  route 192.168.1.0/24 blackhole;
  route 192.168.2.0/24 blackhole;
  route 192.168.3.0/24 blackhole;
  route 10.50.0.0/16 blackhole;
  route 10.60.0.0/16 blackhole;
}
protocol bgp f_ibgp {
  local 10.0.0.1 as 64512; neighbor 10.0.0.2 port 1792 as 64512; source address 10.0.0.1;
  export all; import none; multihop; connect delay time 1;
}
protocol bgp f_ebgp {
  local 10.0.0.5 as 65001; neighbor 10.0.0.6 port 1792 as 64512; source address 10.0.0.5;
  export filter { if net ~ 192.168.0.0/16 then accept; if net ~ 10.60.0.0/16 then accept;
    reject; };
  import none; multihop; connect delay time 1;
}
"""

ORACLE = """
router id 10.0.0.2;
listen bgp port 1792;
protocol device {}
protocol direct { interface "bfa"; }
protocol static loc_routes {
  route 192.168.100.0/26 blackhole;
  route 10.70.0.0/16 blackhole;
}
function bf_export(bool internal_peer) {
  if (internal_peer) then { if net ~ 10.60.0.0/16 then reject; }
  if net ~ 192.168.0.0/16 then accept;
  if net ~ 10.0.0.0/8 then { bgp_community.add((65000, 7)); accept; }
}
template bgp t {
  local 10.0.0.2 as 64512; source address 10.0.0.2; multihop; connect delay time 1;
  import filter {
    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then
      preference = 200;
    accept;
  };
}
protocol bgp feeder_i from t { neighbor 10.0.0.1 port 1791 as 64512; export none; }
protocol bgp feeder_e from t {
  local 10.0.0.6 as 64512; source address 10.0.0.6;
  neighbor 10.0.0.5 port 1791 as 65001; export none;
}
protocol bgp rrc from t {
  neighbor 10.0.0.3 port 1793 as 64512; rr client;
  export filter {
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {
      krt_metric = 2147483647 - bgp_local_pref;
    } else {
      if (!defined(krt_metric)) then { krt_metric = 1024; }
      bgp_local_pref = 2147483647 - krt_metric;
    }
    bf_export(true);
    reject;
  };
}
protocol bgp tor from t {
  local 10.0.0.7 as 64512; source address 10.0.0.7;
  neighbor 10.0.0.4 port 1793 as 65002;
  export filter {
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {
      krt_metric = 2147483647 - bgp_local_pref;
    } else {
      if (!defined(krt_metric)) then { krt_metric = 1024; }
      bgp_local_pref = 2147483647 - krt_metric;
    }
    bf_export(false);
    reject;
  };
}
"""

SINK = """
router id 10.0.0.3;
listen bgp port 1793;
protocol device {}
protocol bgp s_client {
  local 10.0.0.3 as 64512; neighbor 10.0.0.2 port 1792 as 64512; source address 10.0.0.3;
  import all; export none; multihop; connect delay time 1;
}
protocol bgp s_tor {
  local 10.0.0.4 as 65002; neighbor 10.0.0.7 port 1792 as 64512; source address 10.0.0.4;
  import all; export none; multihop; connect delay time 1;
}
"""


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _rid(text: str) -> int:
    return int(ipaddress.ip_address(text))


@pytest.fixture
def three_birds(bird16, netns, tmp_path):
    run_in(netns, "link", "add", "bfa", "type", "veth", "peer", "name", "bfb")
    for a in ("10.0.0.1/24", "10.0.0.2/24", "10.0.0.5/24", "10.0.0.6/24", "10.0.0.7/24"):
        run_in(netns, "addr", "add", a, "dev", "bfa")
    for a in ("10.0.0.3/24", "10.0.0.4/24"):
        run_in(netns, "addr", "add", a, "dev", "bfb")
    run_in(netns, "link", "set", "bfa", "up")
    run_in(netns, "link", "set", "bfb", "up")
    birds = {}
    try:
        for name, text in (("oracle", ORACLE), ("feeder", FEEDER), ("sink", SINK)):
            d = tmp_path / name
            d.mkdir()
            o = Oracle(bird16, d, netns=netns)
            o.start(text)
            birds[name] = o
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = birds["oracle"].birdc("show protocols")
            if status.count("Established") == 4:
                break
            time.sleep(0.5)
        else:
            others = "".join(birds[n].birdc("show protocols all") for n in ("feeder", "sink"))
            pytest.fail(f"sessions did not come up:\n{status}\n{others}")
        time.sleep(1.5)  # the routes follow the sessions
        yield birds, birds["oracle"].workdir / "bird.cfg"
    finally:
        for o in birds.values():
            o.stop()


def test_bgp_conventions_match_bird(three_birds):
    birds, oracle_cfg = three_birds
    oracle, feeder, sink = birds["oracle"], birds["feeder"], birds["sink"]
    conf = load(str(oracle_cfg))
    rid = _rid("10.0.0.2")

    def peer(name: str, remote_id: str) -> bgp.Peer:
        p = conf.protocol(name)
        return bgp.peer_of(p, rid, int(p.local_address).to_bytes(4, "big"), _rid(remote_id))

    peers = {
        "feeder_i": peer("feeder_i", "10.0.0.1"),
        "feeder_e": peer("feeder_e", "10.0.0.1"),
        "rrc": peer("rrc", "10.0.0.3"),
        "tor": peer("tor", "10.0.0.3"),
    }
    table = oracle.show()
    assert {r.proto for r in table} >= {"feeder_i", "feeder_e", "loc_routes", "direct1"}

    # 1. import: the feeder's announcements as the oracle stores them
    fconf = load(str(feeder.workdir / "bird.cfg"))
    f_peers = {
        "f_ibgp": bgp.peer_of(fconf.protocol("f_ibgp"), _rid("10.0.0.1"), _ip("10.0.0.1")),
        "f_ebgp": bgp.peer_of(fconf.protocol("f_ebgp"), _rid("10.0.0.1"), _ip("10.0.0.5")),
    }
    imp = compile_filter(conf.protocol("feeder_i").import_filter, False, export=False)
    stored = {r.key(): r for r in table}
    checked = 0
    for fname, oname in (("f_ibgp", "feeder_i"), ("f_ebgp", "feeder_e")):
        for route in feeder.show_export(fname):
            sent = bgp.wire_attrs(view_of(route).attrs, f_peers[fname])
            got = bgp.import_attrs(sent, peers[oname])
            view = view_of(stored[(route.prefix, oname)])
            verdict = imp.run(view.__class__(view.prefix, got, "bgp", preference=100))
            assert verdict.accepted
            ours = shown_of(stored[(route.prefix, oname)], verdict)
            assert ours.comparable() == stored[(route.prefix, oname)].comparable(), route.prefix
            checked += 1
    assert checked == 7  # 192.168.2.0/24 is dropped by a runtime error on the feeder

    # 2. export: every route of the oracle's table toward the client and the ToR
    for to in ("rrc", "tor"):
        program = compile_filter(conf.protocol(to).export_filter, False)
        bird = {r.prefix: r.comparable() for r in oracle.show_export(to)}
        ours = {}
        best = {}
        for route in table:
            best.setdefault(route.prefix, route)  # the first listed is the primary
        for route in best.values():
            view = view_of(route)
            frm = peers.get(route.proto)
            attrs = bgp.export_attrs(view.attrs, peers[to], frm, gw=view.gw, dest=view.dest)
            if attrs is None:
                continue
            v = program.run(
                view.__class__(
                    view.prefix,
                    attrs,
                    view.source,
                    preference=route.preference,
                    ifname=view.ifname,
                    dest=view.dest,
                    gw=view.gw,
                )
            )
            if v.accepted:
                ours[route.prefix] = shown_of(route, v).comparable()
        assert ours == bird, to

        # 3. on the wire: what the sink received from the oracle
        sconf = load(str(sink.workdir / "bird.cfg"))
        sname = {"rrc": "s_client", "tor": "s_tor"}[to]
        s_peer = bgp.peer_of(sconf.protocol(sname), _rid("10.0.0.3"), b"\0" * 4, rid)
        received = {r.prefix: r for r in sink.show() if r.proto == sname}
        assert set(received) == set(bird)
        for prefix, r in received.items():
            route = best[prefix]
            view = view_of(route)
            attrs = bgp.export_attrs(
                view.attrs, peers[to], peers.get(route.proto), gw=view.gw, dest=view.dest
            )
            v = program.run(
                view.__class__(
                    view.prefix,
                    attrs,
                    view.source,
                    preference=route.preference,
                    ifname=view.ifname,
                    dest=view.dest,
                    gw=view.gw,
                )
            )
            wire = bgp.import_attrs(bgp.wire_attrs(v.attrs, peers[to]), s_peer)
            expect = {k: x for k, x in r.attrs.items() if k.startswith("BGP.")}
            got = shown_of(r, _Accepted(wire)).attrs
            assert {k: x for k, x in got.items() if k.startswith("BGP.")} == expect, prefix


class _Accepted:
    """A stand-in verdict to print an AttrSet the way BIRD does."""

    def __init__(self, attrs: AttrSet) -> None:
        self.attrs = attrs
        self.temps = None
        self.preference = 0


def test_import_attrs_units():
    ibgp = bgp.Peer("i", 64512, 64512, _ip("10.0.0.1"))
    ebgp = bgp.Peer("e", 64512, 65001, _ip("10.0.0.1"))
    a = intern(AttrSet(local_pref=7))
    assert bgp.import_attrs(a, ibgp) is a
    assert bgp.import_attrs(a, ebgp).local_pref == 100
    assert bgp.import_attrs(intern(AttrSet()), ibgp).local_pref == 100

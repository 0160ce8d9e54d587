"""A Calico route reflector's clients that come up while the table fills share the export
filter's work: each route runs a ``Node_`` protocol's export filter once for all of them.

confd's files give every route reflector client the same export filter, which reads the
prefix (``calico_aggr``, ``net ~ pool``), so its results are not cached on attribute sets:
every export group runs it for every route it sends. Since the reflector's BGP template has
``connect delay time 2`` (reaching the FSM since 6dc561a), its sessions come up spread over
the event loop's turns instead of all before its first drain, and the nodes that came up
first have announced their blocks by the time the others come up. Every later node then got
an export group of its own and ran the filter over the whole table: about one run per
(route, client) instead of one per route (bench/calico_rr.py: 230,000 runs instead of about
1,600 for 1,000 nodes, 1.5 s of the reflector's CPU became 12-18 s). Now the clients that
come up between two drains share one group, and a group catching up takes the results its
steady group already has.

The engine here is driven in-process, without sockets (tests/rde/rde_harness.py's
``negotiated``, tests/rib/rib_helpers.py's ``View``), with the filters of confd-shaped files.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rib"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rde"))

from rde_harness import FakeLink, negotiated  # noqa: E402
from rib_helpers import IPV4, View  # noqa: E402

from bgpd.rde import Rde  # noqa: E402
from bgpd.speaker.birdmode import BirdExportContext, BirdSetup  # noqa: E402
from bgpd.speaker.daemon import Speaker, cluster_id_of  # noqa: E402
from bgpd.wire import AttrSet, Context, decode_update, end_of_rib, pack_announce  # noqa: E402
from bgpd.wire import prefix as pfx  # noqa: E402

NODES = 30
R_ADDRESS = "10.191.0.1"

HEAD = """
router id 10.191.0.1;
template bgp bgp_template {
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
function calico_aggr ()
{
  if ( net = 192.168.255.192/26 ) then { accept; }
  if ( net ~ 192.168.255.192/26 ) then { reject; }
}
function calico_export_to_bgp_peers(bool internal_peer) {
  if (internal_peer) then {
    if (defined(ifname)) then {
      if ((ifname ~ "*.cali") || (ifname ~ "tunl0")) then { reject; }
    }
  }
  calico_aggr();
  if (net ~ 192.168.0.0/16) then { accept; }
}
"""

NODE = """
protocol bgp Node_10_192_1_{h} from bgp_template {{
  neighbor 10.192.1.{h} as 64512;
  source address 10.191.0.1;
  import filter {{
    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then
      preference = 200;
    accept;
  }};
  export filter {{
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {{
      krt_metric = 2147483647 - bgp_local_pref;
    }} else {{
      if (!defined(krt_metric)) then {{ krt_metric = 1024; }}
      bgp_local_pref = 2147483647 - krt_metric;
    }}
    calico_export_to_bgp_peers(true);
    reject;
  }};
  rr client;
  rr cluster id 10.0.0.1;
}}
"""


def address(i: int) -> str:
    return f"10.192.1.{i + 1}"


def block(i: int) -> bytes:
    """Node i's /26 in the pool."""
    return pfx.from_str(f"192.168.{i * 64 // 256}.{i * 64 % 256}/26")


ECHO = pfx.from_str("192.168.200.0/26")  # node 0's, with node 25's address as NEXT_HOP


class Reflector:
    """The engine of a bgpd-bird on the confd-shaped files, its clients' sessions faked."""

    def __init__(self, tmp_path) -> None:
        cfg = tmp_path / "bird.cfg"
        cfg.write_text(HEAD + "".join(NODE.format(h=i + 1) for i in range(NODES)))
        setup = BirdSetup(str(cfg), control_socket=str(tmp_path / "x.ctl"))
        config = setup.config
        self.rde = Rde(
            router_id=bytes(map(int, str(config.router_id).split("."))),
            asn=config.asn,
            cluster_id=cluster_id_of(config),
            decision=Speaker.decision_config(config),
            policies=config.policies,
            graceful=config.graceful_restart,
        )
        self.peers = {}
        for n in config.neighbors:
            a = str(n.address)
            filters = setup.filters_for(a)
            assert filters is not None
            self.peers[a] = self.rde.add_peer(n, link=FakeLink(), filters=filters)
        self.views: dict = {}
        self.now = 1000.0

    def up(self, i: int, add_path: bool = True) -> None:
        """Node i's session is Established (``add_path``: ADD-PATH both ways, as Calico's)."""
        a = address(i)
        ap = (IPV4,) if add_path else ()
        neg = negotiated(64512, a, local_as=64512, families=(IPV4,), add_path_rx=ap, add_path_tx=ap)
        self.views[a] = View(Context(ibgp=True, add_path_rx=frozenset(ap)))
        self.rde.peer_up(self.peers[a], neg, R_ADDRESS, self.now)

    def announce(self, i: int, prefix: bytes, next_hop: str | None = None) -> None:
        """Node i sends one path (id 1 with ADD-PATH), LOCAL_PREF as a Calico node's block
        has."""
        a = address(i)
        peer = self.peers[a]
        ctx = peer.negotiated.context
        nh = bytes(map(int, (next_hop or a).split(".")))
        attrs = AttrSet(origin=0, as_path=(), next_hop=nh, local_pref=2147482623)
        key = (1, prefix) if IPV4 in ctx.add_path_rx else prefix
        msgs = pack_announce(IPV4, attrs, [key], ctx) + [end_of_rib(IPV4)]
        self.rde.receive(peer, [decode_update(m[19:], ctx) for m in msgs], self.now)

    def drain(self, settle: bool = True) -> None:
        """Until nothing is left (``settle``), or one pass."""
        for _ in range(100):
            out = self.rde.drain(10**6, self.now)
            for peer, msgs in out.messages.items():
                self.views[peer.address].apply(msgs)
            if not out.more or not settle:
                return
        raise AssertionError("export never settles")

    def held(self, i: int) -> dict:
        """prefix -> attribute set, of what node i was sent."""
        got = self.views[address(i)].routes[IPV4].items()
        return {k[1] if isinstance(k, tuple) else k: attrs for k, attrs in got}

    def groups(self) -> list:
        return self.rde.rib.exporter.groups()


@pytest.fixture
def runs(monkeypatch):
    """Counts the export filter's runs (BirdExportContext calls)."""
    count = [0]
    call = BirdExportContext.__call__

    def counted(self, src, attrs, prefix, fam):
        count[0] += 1
        return call(self, src, attrs, prefix, fam)

    monkeypatch.setattr(BirdExportContext, "__call__", counted)
    return count


def test_clients_coming_up_while_the_table_fills_run_each_route_once(tmp_path, runs):
    r = Reflector(tmp_path)
    for i in range(10):  # the first ten come up together: one group
        r.up(i)
    r.drain()
    assert len(r.groups()) == 1
    for i in range(10):
        r.announce(i, block(i))
    r.announce(0, ECHO, next_hop=address(25))  # BIRD never sends it to node 25
    r.drain()
    assert runs[0] == 11  # the steady group: each route once
    # the next ten come up one drain later, and then ten more, one by one, a drain each
    for i in range(10, 20):
        r.up(i)
    r.drain()
    for i in range(20, NODES):
        r.up(i)
        r.drain()
    assert runs[0] == 11, "the late clients' initial tables ran the export filter again"
    assert len(r.groups()) == 1
    for i in range(10, NODES):
        r.announce(i, block(i))
    r.drain()
    assert runs[0] == 11 + NODES - 10  # one run per route, however many clients
    assert len(r.groups()) == 1

    # what every client holds is what BIRD sends it
    for i in range(NODES):
        held = r.held(i)
        want = {block(j) for j in range(NODES) if j != i}  # never its own block back
        if i not in (0, 25):
            want.add(ECHO)  # node 0's own, and the next-hop echo rule keeps it from node 25
        assert set(held) == want, i
        for j in range(NODES):
            if j != i:
                a = held[block(j)]
                assert a.next_hop == bytes(map(int, address(j).split(".")))  # unchanged
                assert a.local_pref == 2147482623
                assert a.originator_id is not None and a.cluster_list


def test_clients_up_together_before_any_drain_share_one_initial_table(tmp_path, runs):
    """No steady group yet and a table already there: one export per route for all."""
    r = Reflector(tmp_path)
    r.up(0)
    r.up(1)
    r.drain()
    r.announce(0, block(0))
    r.announce(1, block(1))
    # the steady group cannot take output: its routes stay pending there
    for i in (0, 1):
        r.peers[address(i)].link.writable = False
    for i in range(2, NODES):
        r.up(i)
    r.drain(settle=False)
    # nothing to take from the steady group, but one group for the 28: each route once
    assert runs[0] == 2
    for i in range(2, NODES):
        assert set(r.held(i)) == {block(0), block(1)}
    for i in (0, 1):
        r.peers[address(i)].link.writable = True
    r.drain()
    assert set(r.held(0)) == {block(1)} and set(r.held(1)) == {block(0)}
    assert len(r.groups()) == 1


def test_a_client_without_add_path_is_in_a_group_of_its_own(tmp_path, runs):
    """Same filter, same role, another encoding: the export key tells them apart (they
    used to share it, and merging the groups failed on the ADD-PATH state)."""
    r = Reflector(tmp_path)
    r.up(0)
    r.drain()
    r.up(1, add_path=False)
    r.announce(0, block(0))
    r.drain()
    r.up(2)
    r.announce(1, block(1))
    r.drain()
    assert len(r.groups()) == 2
    a0, a1, a2 = (r.peers[address(i)].source.group for i in range(3))
    assert a0 is a2 is not a1
    assert set(r.held(1)) == {block(0)}
    assert set(r.views[address(1)].routes[IPV4]) == {block(0)}  # no path id
    assert set(r.held(0)) == {block(1)} and set(r.held(2)) == {block(0), block(1)}

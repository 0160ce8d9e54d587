"""Route state to UPDATEs and the resync sequence (sans-I/O)."""

from bgpd.bmp import codec
from bgpd.bmp.monitor import BmpPeer, LocalRib, live_items, resync, route_batches, updates_for
from bgpd.wire import decode_message
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.messages import Open
from bgpd.wire.packer import end_of_rib

A = intern(AttrSet(origin=0, as_path=((2, (65001,)),), next_hop=bytes((192, 0, 2, 1))))
B = intern(AttrSet(origin=0, as_path=((2, (65002,)),), next_hop=bytes((192, 0, 2, 2))))
P = [pfx.from_str(f"10.0.{i}.0/24") for i in range(6)]


def decode(raw: bytes, ctx: Context | None = None):
    rx = ctx.add_path_tx if ctx is not None else frozenset()
    return decode_message(raw[18], raw[19:], Context(add_path_rx=rx))


def test_updates_group_announcements_by_attribute_set_and_withdraw_first():
    ups = updates_for(
        IPV4_UNICAST, [(P[0], A), (P[1], B), (P[2], A), (P[3], None), (P[4], B)], Context()
    )
    msgs = [decode(u) for u in ups]
    assert [m.withdrawn for m in msgs] == [[P[3]], [], []]
    assert [(m.attrs, m.nlri) for m in msgs[1:]] == [(A, [P[0], P[2]]), (B, [P[1], P[4]])]


def test_updates_with_path_ids_and_ipv6():
    ctx = Context(add_path_tx=frozenset({IPV4_UNICAST}))
    (u,) = updates_for(IPV4_UNICAST, [((7, P[0]), A)], ctx)
    assert decode(u, ctx).nlri == [(7, P[0])]
    v6 = A.replace(next_hop=pfx.addr_from_str("2001:db8::1"))
    (u6,) = updates_for(IPV6_UNICAST, [(pfx.from_str("2001:db8::/32"), v6)], Context())
    m = decode(u6)
    assert m.mp_reach.nlri == [pfx.from_str("2001:db8::/32")]


def test_local_routes_without_next_hop_get_ours():
    local = intern(AttrSet(origin=0, as_path=()))
    me = LocalRib(65000, "192.0.2.254").self_next_hop
    (u,) = updates_for(IPV4_UNICAST, [(P[0], local)], Context(), me)
    assert decode(u).attrs.next_hop == bytes((192, 0, 2, 254))
    (u6,) = updates_for(IPV6_UNICAST, [(pfx.from_str("2001:db8::/32"), local)], Context(), me)
    assert decode(u6).mp_reach.next_hop == bytes(16)


def test_route_batches_split_by_family_and_size():
    items = [(IPV4_UNICAST, p, A) for p in P[:5]] + [(IPV6_UNICAST, pfx.from_str("::/0"), A)]
    batches = list(route_batches(items, 2))
    assert [(f, len(r)) for f, r in batches] == [
        (IPV4_UNICAST, 2),
        (IPV4_UNICAST, 2),
        (IPV4_UNICAST, 1),
        (IPV6_UNICAST, 1),
    ]


def test_live_items_tolerates_changes_during_iteration():
    d = {1: "a", 2: "b", 3: "c"}
    it = live_items(d)
    assert next(it) == (1, "a")
    del d[2]
    d[4] = "d"  # added after the copy: the live stream carries it
    d[3] = "C"  # changed: the current value is read
    assert list(it) == [(3, "C")]


OPEN = Open(asn=65000, hold_time=90, router_id="192.0.2.254").encode()


def peer(key, asn, addpath=frozenset()):
    return BmpPeer(
        key,
        f"192.0.2.{asn - 65000}",
        asn,
        f"192.0.2.{asn - 65000}",
        "192.0.2.254",
        179,
        4000,
        OPEN,
        OPEN,
        add_path_rx=addpath,
    )


class Tables:
    def __init__(self, adj, loc):
        self.adj = adj
        self.loc = loc

    def adj_rib_in(self, key):
        return iter(self.adj[key])

    def loc_rib(self):
        return iter(self.loc)


def messages(chunks):
    out = []
    for c in chunks:
        out += codec.split(c)
    return out


def test_resync_sends_each_table_then_its_end_of_rib():
    p1 = peer("p1", 65001)
    p2 = peer("p2", 65002, frozenset({IPV4_UNICAST}))
    tables = Tables(
        {
            "p1": [(IPV4_UNICAST, P[0], A), (IPV4_UNICAST, P[1], A)],
            "p2": [(IPV4_UNICAST, (9, P[2]), B)],
        },
        [(IPV4_UNICAST, P[0], A), (IPV4_UNICAST, P[2], B)],
    )
    local = LocalRib(65000, "192.0.2.254", (IPV4_UNICAST, IPV6_UNICAST))
    msgs = messages(resync([p1, p2], tables, local, lambda: 1.0))
    peers = [m[6:8] + m[32:36] for m in msgs]  # peer type, flags, peer AS
    ups = [m[48:] for m in msgs]
    assert peers == [
        b"\x00\x00" + (65001).to_bytes(4, "big"),
        b"\x00\x00" + (65001).to_bytes(4, "big"),
        b"\x00\x00" + (65002).to_bytes(4, "big"),
        b"\x00\x00" + (65002).to_bytes(4, "big"),
        b"\x03\x00" + (65000).to_bytes(4, "big"),
        b"\x03\x00" + (65000).to_bytes(4, "big"),
        b"\x03\x00" + (65000).to_bytes(4, "big"),
        b"\x03\x00" + (65000).to_bytes(4, "big"),
    ]
    assert decode(ups[0]).nlri == [P[0], P[1]]
    assert ups[1] == end_of_rib(IPV4_UNICAST)
    assert decode(ups[2], Context(add_path_tx=frozenset({IPV4_UNICAST}))).nlri == [(9, P[2])]
    assert ups[3] == end_of_rib(IPV4_UNICAST)
    assert decode(ups[4]).nlri == [P[0]] and decode(ups[5]).nlri == [P[2]]
    assert ups[6:] == [end_of_rib(IPV4_UNICAST), end_of_rib(IPV6_UNICAST)]  # every family


def test_resync_skips_a_peer_that_went_down():
    p1 = peer("p1", 65001)
    tables = Tables({"p1": [(IPV4_UNICAST, p, A) for p in P]}, [])
    up = {"p1": True}
    it = resync([p1], tables, None, lambda: 1.0, batch=2, still_up=lambda p: up[p.key])
    first = next(it)
    assert len(decode(codec.split(first)[0][48:]).nlri) == 2
    up["p1"] = False
    assert list(it) == []  # neither the rest of its routes nor its End-of-RIB


def test_runs_group_by_attribute_set():
    from bgpd.bmp.service import _runs

    keys = list(range(8))
    vals = [A, A, B, None, None, A, B, B]
    groups, withdrawn = _runs(keys, vals)
    assert groups == {A: [0, 1, 5], B: [2, 6, 7]} and withdrawn == [3, 4]
    assert _runs([], []) == ({}, [])


def test_bugs_in_a_callback_are_counted_never_raised():
    from bgpd.bmp import BmpService

    svc = BmpService([], router_id="192.0.2.254", local_as=65000)

    class Up:  # a station that is up, to make the service encode
        state = "up"

        class cfg:
            adj_rib_in = loc_rib = adj_rib_out = True
            stats_interval = 60

        def send(self, data):
            raise RuntimeError("a bug")

    svc.stations.append(Up())
    svc.peer_up(peer("p1", 65001))
    svc.updates_received("p1", [b"\x00\x00\x00\x00"])
    svc.loc_rib_changed(IPV4_UNICAST, [(P[0], A)])
    assert svc.errors == 3  # peer_up, updates_received, loc_rib_changed: each one counted

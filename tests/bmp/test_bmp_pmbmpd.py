"""bgpd's BMP stream received by a real collector: pmacct's pmbmpd.

pmbmpd logs every message it parsed as JSON lines (``bmp_daemon_msglog_file``); the tests
replay its ``peer_up``/``peer_down`` events and its route-monitoring ``update``/``withdraw``
records into tables and compare them with what the (model) daemon holds: IPv4 and IPv6, a
peer with ADD-PATH, a peer without four-octet AS numbers, the RFC 9069 Loc-RIB.
"""

import asyncio
import random
import signal
import time

from bmp_collector import Pmbmpd
from bmp_model import PID, Model, attrs_for, prefixes

from bgpd.bmp import BmpPeer, BmpService, StationConfig
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import AddPath, FourOctetAS, Multiprotocol
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.messages import Open

LOCAL_AS = 65000
FAMS = (Multiprotocol(1, 1), Multiprotocol(2, 1))


def opens(n: int, asn: int, addpath=False, as4=True):
    """The OPENs of a session as they would cross the wire (ADD-PATH: we receive, it sends)."""
    ours = FAMS + (FourOctetAS(LOCAL_AS),)
    theirs = FAMS + ((FourOctetAS(asn),) if as4 else ())
    if addpath:
        ours += (AddPath(((1, 1, 1), (2, 1, 1))),)
        theirs += (AddPath(((1, 1, 2), (2, 1, 2))),)
    sent = Open(asn=LOCAL_AS, hold_time=90, router_id="192.0.2.254", capabilities=ours).encode()
    rcvd = Open(asn=asn, hold_time=90, router_id=f"192.0.2.{n}", capabilities=theirs).encode()
    return sent, rcvd


class PmModel(Model):
    """The model with realistic OPENs and AS numbers per peer."""

    def up(self, key, n, addpath=frozenset(), asn=None, as4=True):
        asn = asn or 65000 + n
        sent, rcvd = opens(n, asn, bool(addpath), as4)
        p = BmpPeer(
            key,
            f"192.0.2.{n}",
            asn,
            f"192.0.2.{n}",
            "192.0.2.254",
            179,
            40000 + n,
            sent,
            rcvd,
            as4=as4,
            add_path_rx=addpath,
        )
        self.peers[key] = p
        self.adj[key] = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self.service.peer_up(p)
        return p


def _as_path(attrs) -> str:
    return " ".join(str(a) for _t, asns in attrs.as_path for a in asns)


def _nh(attrs) -> str:
    return pfx.addr_to_str(attrs.next_hop)


def expected_tables(model: Model) -> dict:
    """``{peer: {(afi, prefix text, path id): (as_path, next hop, med)}}`` (peer "loc": Loc-RIB)."""
    out: dict = {}

    def row(fam, key, attrs):
        pid, p = key if isinstance(key, tuple) else (0, key)
        return (fam[0], pfx.to_str(p, fam[0]), pid), (_as_path(attrs), _nh(attrs), attrs.med)

    out["loc"] = dict(row(f, k, a) for f, t in model.loc.items() for k, a in t.items())
    for key, fams in model.adj.items():
        out[model.peers[key].address] = dict(
            row(f, k, a) for f, t in fams.items() for k, a in t.items()
        )
    return out


def replay(records: list[dict], port: int | None = None) -> tuple[dict, list, list]:
    """pmbmpd's log -> (tables, peer ups, peer downs), for one BMP connection if ``port``."""
    tables: dict = {}
    ups, downs = [], []
    for r in records:
        if port is not None and r.get("bmp_router_port") != port:
            continue
        t = r.get("bmp_msg_type")
        who = "loc" if r.get("is_loc") or r.get("peer_type") == 3 else r.get("peer_ip")
        if t == "peer_up":
            ups.append(r)
            tables[who] = {}
        elif t == "peer_down":
            downs.append(r)
            tables.pop(who, None)
        elif t == "route_monitor":
            key = (r["afi"], str(_net(r["ip_prefix"])), r.get("as_path_id", 0))
            if r["log_type"] == "update":
                tables.setdefault(who, {})[key] = (
                    r.get("as_path", ""),
                    r.get("bgp_nexthop"),
                    r.get("med"),
                )
            elif r["log_type"] == "withdraw":
                tables.setdefault(who, {}).pop(key, None)
    return tables, ups, downs


def _net(text):
    import ipaddress

    return ipaddress.ip_network(text)


async def wait_until(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        await asyncio.sleep(0.1)


def service(pm: Pmbmpd, model, **kw) -> BmpService:
    st = StationConfig(
        address=pm.address,
        port=pm.port,
        local_address=pm.address,
        retry=0.1,
        retry_max=0.5,
        connect_timeout=1.0,
        **kw,
    )
    svc = BmpService(
        [st],
        router_id="192.0.2.254",
        local_as=LOCAL_AS,
        tables_provider=lambda: model,
        sys_name="bgpd-test",
    )
    model.service = svc
    return svc


def load(model: PmModel, rng, n=40):
    model.up("p1", 1)
    model.up("p2", 2, frozenset({IPV4_UNICAST, IPV6_UNICAST}))
    model.up("p3", 3, asn=65003, as4=False)
    for fam in (IPV4_UNICAST, IPV6_UNICAST):
        ps = prefixes(fam, n)
        model.receive("p1", fam, [(p, attrs_for(rng, fam)) for p in ps[: n // 2]])
        model.receive("p2", fam, [((PID, p), attrs_for(rng, fam)) for p in ps[n // 4 :]])
        model.receive("p3", fam, [(p, _two_octet(attrs_for(rng, fam))) for p in ps[n // 3 :]])


def _two_octet(attrs):
    """Paths a two-octet speaker can carry (its UPDATEs are packed as it would send them)."""
    return attrs.replace(
        as_path=tuple((t, tuple(a % 64000 + 1 for a in asns)) for t, asns in attrs.as_path)
    )


async def test_pmbmpd_sees_our_peers_and_prefixes(pmbmpd):
    rng = random.Random(5)
    model = PmModel()
    svc = service(pmbmpd, model)
    load(model, rng)  # before the station: these arrive through the resync
    svc.start()
    st = svc.stations[0]
    await wait_until(lambda: st.resyncs == 1, 10)
    # live: more routes, withdrawals, a new peer, a peer going down
    for fam in (IPV4_UNICAST, IPV6_UNICAST):
        ps = prefixes(fam, 40)
        model.receive(
            "p1",
            fam,
            [(p, None) for p in ps[:5]] + [(p, attrs_for(rng, fam)) for p in prefixes(fam, 6, 300)],
        )
    model.up("p4", 4)
    model.receive(
        "p4",
        IPV4_UNICAST,
        [(p, attrs_for(rng, IPV4_UNICAST)) for p in prefixes(IPV4_UNICAST, 4, 700)],
    )
    model.down("p3")
    want = expected_tables(model)
    tables, ups, downs = await wait_until(
        lambda: (r := replay(pmbmpd.records())) and r[0] == want and r, 20
    ) or replay(pmbmpd.records())
    assert tables == want, pmbmpd.tail()
    assert sum(len(t) for t in want.values()) > 150
    assert {(u["peer_ip"], u["peer_asn"], u.get("peer_type")) for u in ups} == {
        ("0.0.0.0", LOCAL_AS, 3),
        ("192.0.2.1", 65001, 0),
        ("192.0.2.2", 65002, 0),
        ("192.0.2.3", 65003, 0),
        ("192.0.2.4", 65004, 0),
    }
    assert [(d["peer_ip"], d["reason_type"]) for d in downs] == [("192.0.2.3", 1)]
    records = pmbmpd.records()
    init = [r for r in records if r.get("bmp_msg_type") == "init"]
    assert init and init[0]["bmp_init_info_sysname"] == "bgpd-test"
    routers = {r.get("bmp_router") for r in records}
    assert routers == {pmbmpd.address}, routers  # we connect from our own address
    assert svc.errors == 0
    await svc.stop()
    await wait_until(lambda: any(r.get("bmp_msg_type") == "term" for r in pmbmpd.records()), 5)
    assert any(r.get("bmp_msg_type") == "term" for r in pmbmpd.records())


async def test_pmbmpd_stops_reading_then_gets_a_full_resync(pmbmpd):
    """pmbmpd is frozen (SIGSTOP): the stream is dropped at the bound without ever holding
    up the caller; thawed, it receives a complete resync on a new connection."""
    rng = random.Random(6)
    model = PmModel()
    bound = 256 * 1024
    svc = service(pmbmpd, model, buffer=bound, sndbuf=64 * 1024)
    svc.start()
    st = svc.stations[0]
    load(model, rng, 20)
    await wait_until(lambda: st.resyncs == 1, 10)
    pmbmpd.signal(signal.SIGSTOP)
    worst, calls, t0 = 0.0, 0, time.perf_counter()
    dropped_at = None
    try:
        # flood until the drop, then a second more: while the collector is gone (its listen
        # queue full, connection attempts time out), events cost nothing and queue nothing
        while time.perf_counter() - t0 < 30:
            if st.drops and dropped_at is None:
                dropped_at = time.perf_counter()
            if dropped_at is not None and time.perf_counter() - dropped_at > 1.0:
                break
            ps = prefixes(IPV4_UNICAST, 50, 1000 + calls % 100 * 50)
            a = time.perf_counter()
            model.receive("p1", IPV4_UNICAST, [(p, attrs_for(rng, IPV4_UNICAST)) for p in ps])
            worst = max(worst, time.perf_counter() - a)
            calls += 1
            assert st.buffered() <= bound
            if calls % 10 == 0:
                await asyncio.sleep(0.001)
    finally:
        pmbmpd.signal(signal.SIGCONT)
    assert st.drops >= 1, st.stats()
    # never blocked: a call that waited for the frozen collector would take seconds (a
    # loaded CI machine can stretch one call of pure CPU work to a few hundred ms)
    assert st.peak_buffer <= bound and worst < 1.0, worst
    assert st.buffered() == 0
    want = expected_tables(model)
    ok = await wait_until(lambda: st.state == "up" and st.resyncing is False, 30)
    assert ok, st.stats()
    port = st.transport.get_extra_info("sockname")[1]
    tables, ups, _ = await wait_until(
        lambda: (r := replay(pmbmpd.records(), port)) and r[0] == want and r, 30
    ) or replay(pmbmpd.records(), port)
    assert tables == want, (st.stats(), pmbmpd.tail())
    assert len(ups) == 4  # the Loc-RIB and three peers, again on the new connection
    assert svc.errors == 0
    await svc.stop()


async def test_addpath_is_understood_from_the_two_opens(pmbmpd):
    """pmbmpd decodes path identifiers only if the two OPENs of the Peer Up negotiate
    ADD-PATH: the path id it reports is the one in the UPDATE."""
    model = PmModel()
    svc = service(pmbmpd, model)
    svc.start()
    model.up("p2", 2, frozenset({IPV4_UNICAST}))
    model.receive(
        "p2",
        IPV4_UNICAST,
        [((PID, pfx.from_str("10.9.9.0/24")), attrs_for(random.Random(1), IPV4_UNICAST))],
    )
    recs = await wait_until(
        lambda: [r for r in pmbmpd.records() if r.get("bmp_msg_type") == "route_monitor"], 10
    )
    assert recs and recs[0].get("as_path_id") == PID, recs
    assert svc.errors == 0
    await svc.stop()

"""Limits a peer cannot push past, each tested over a real session (and at the codec level).

* message size: 4096 octets unless both sides advertised extended messages (RFC 8654);
  a longer message is a header error 1/2 with the length as data (``Framer``);
* path attributes per UPDATE: more than 256 (there are 256 type codes: the rest can only be
  duplicates) is a Malformed Attribute List, treated as withdraw (``MAX_PATH_ATTRS``);
* AS_PATH length: more than 1000 AS numbers or 255 segments is a Malformed AS_PATH, treated as
  withdraw, like FRR's ``bgp maxas-limit`` (``MAX_AS_PATH_ASNS``, ``MAX_AS_PATH_SEGMENTS``);
* prefixes per neighbor: ``max_prefixes`` warns, or stops the session with Cease 6/1 and
  restarts it after ``restart_after`` seconds;
* dynamic neighbors per range: ``tests/test_operate.py::test_dynamic_neighbors_limit`` (the
  201st connection is refused before anything is allocated for it);
* connections from unknown addresses: closed at once, nothing allocated, other sessions
  untouched;
* pending output per neighbor: a peer that stops reading costs memory bounded by the table
  (the export state is a set of pending prefixes, not a queue) and does not hold up the
  peers that share its export group: after 2 s without taking output it leaves the group
  (``test_slow_peer_does_not_delay_others``).
* what we send: a route whose attributes do not fit a peer's maximum message size is withdrawn
  from that peer (RFC 8654 §4), and a NOTIFICATION never exceeds 4096 octets.
"""

import asyncio
import dataclasses
import socket

import pytest
import structlog
from hostile_peer import (
    RawPeer,
    attr,
    ip,
    ports,
    routes,
    speaker_config,
    start_speaker,
    until,
    update,
)

from bgpd.rib.export import Exporter
from bgpd.session.peer import WRITE_HIGH
from bgpd.wire import (
    Action,
    AttrPool,
    AttrSet,
    Context,
    Framer,
    Notification,
    decode_message,
    pack_announce,
)
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import (
    IPV4_UNICAST,
    MAX_AS_PATH_ASNS,
    MAX_AS_PATH_SEGMENTS,
    MAX_PATH_ATTRS,
)

WK, OPT, OPT_T = 0x40, 0x80, 0xC0
SPEAKER = "127.0.0.101"
DEFAULT_CTX = Context()


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def as_path(asns: list[int], per_segment: int = 255) -> bytes:
    value = b""
    for k in range(0, len(asns), per_segment):
        chunk = asns[k : k + per_segment]
        value += bytes((2, len(chunk))) + b"".join(map(u32, chunk))
    return attr(WK, 2, value)


def ebgp_update(path: bytes, prefix: bytes, extra: bytes = b"", med: int = 100) -> bytes:
    block = attr(WK, 1, b"\x00") + path + attr(WK, 3, ip("192.0.2.1"))
    block += attr(OPT, 4, u32(med)) + extra
    return update(block, prefix)


def decode(wire: bytes, ctx: Context = DEFAULT_CTX):
    framer = Framer(ctx.max_size)
    ((t, body),) = framer.feed(wire)
    return decode_message(t, body, dataclasses.replace(ctx, pool=AttrPool()))


# --- the codec limits, directly --------------------------------------------------------------

P = pfx.from_str("10.9.0.0/24")


def test_as_path_limit_in_the_codec():
    ext = Context(extended_message=True)
    at_limit = decode(ebgp_update(as_path(list(range(1, MAX_AS_PATH_ASNS + 1))), P), ext)
    assert at_limit.error is None and at_limit.attrs.as_path_len() == MAX_AS_PATH_ASNS
    over = decode(ebgp_update(as_path(list(range(1, MAX_AS_PATH_ASNS + 2))), P), ext)
    assert (over.error.code, over.error.subcode, over.error.action) == (3, 11, Action.WITHDRAW)
    segments = decode(ebgp_update(as_path(list(range(1, 257)), per_segment=1), P), ext)
    assert (segments.error.subcode, segments.error.action) == (11, Action.WITHDRAW)
    ok = decode(ebgp_update(as_path(list(range(1, MAX_AS_PATH_SEGMENTS + 1)), 1), P), ext)
    assert ok.error is None
    # AS4_PATH: the same limit, attribute discard (RFC 6793 §6).
    as4 = attr(OPT_T, 17, b"".join(bytes((2, 1)) + u32(a) for a in range(1, 300)))
    two = decode(
        update(
            attr(WK, 1, b"\x00")
            + attr(WK, 2, b"\x02\x01\x5b\xa0")
            + attr(WK, 3, ip("192.0.2.1"))
            + as4,
            P,
        ),
        Context(as4=False),
    )
    assert (two.error.subcode, two.error.action) == (9, Action.DISCARD)
    assert two.attrs.as_path == ((2, (23456,)),)


def test_path_attribute_count_limit_in_the_codec():
    base = attr(WK, 1, b"\x00") + as_path([65001]) + attr(WK, 3, ip("192.0.2.1"))
    filler = attr(OPT_T, 8, u32(1))  # COMMUNITIES, repeated: duplicates
    at_limit = decode(update(base + filler * (MAX_PATH_ATTRS - 3), P))
    assert at_limit.error is not None and at_limit.error.action == Action.DISCARD  # duplicates
    assert at_limit.reach()
    over = decode(update(base + filler * (MAX_PATH_ATTRS - 2), P))
    assert (over.error.code, over.error.subcode, over.error.action) == (3, 1, Action.WITHDRAW)
    assert over.reach() == [] and (IPV4_UNICAST, [P]) in over.unreach()


def test_oversized_route_is_withdrawn_from_a_peer_without_extended_messages():
    attrs = AttrSet(
        origin=0, as_path=((2, (65001,)),), next_hop=ip("10.0.0.1"), communities=tuple(range(1500))
    )
    big = pack_announce(IPV4_UNICAST, attrs, [P], Context(extended_message=True))
    assert len(big) == 1 and len(big[0]) > 4096
    msgs = pack_announce(IPV4_UNICAST, attrs, [P], Context())
    assert len(msgs) == 1 and len(msgs[0]) <= 4096
    m = decode(msgs[0])
    assert m.withdrawn == [P] and not m.nlri
    # IPv6 too (MP_REACH_NLRI) and ADD-PATH
    v6 = pfx.from_str("2001:db8::/32")
    attrs6 = attrs.replace(next_hop=ip("2001:db8::1"))
    ap = Context(add_path_tx=frozenset({(2, 1)}), add_path_rx=frozenset({(2, 1)}))
    (w,) = pack_announce((2, 1), attrs6, [(7, v6)], ap)
    assert decode(w, ap).mp_unreach.withdrawn == [(7, v6)]


def test_notification_never_exceeds_4096_octets():
    n = Notification(7, 1, b"\xff" * 65535)
    assert len(n.encode()) == 4096
    assert len(n.encode(Context(extended_message=True))) == 65535
    assert len(Notification(3, 1, b"x" * 10).encode()) == 31


# --- the same over real sessions ----------------------------------------------------------------


@pytest.fixture
async def rig():
    """A speaker (AS 65000) with passive neighbors; ``peer()`` connects a RawPeer."""
    made = []

    async def make(neighbors: list[dict], **top):
        port = next(ports)
        for n in neighbors:
            n.setdefault("port", port)
            n.setdefault("passive", True)
        speaker = await start_speaker(speaker_config(SPEAKER, port, neighbors, **top))
        made.append(speaker)
        peers = []

        async def peer(address: str, asn: int, established: bool = True, **kw) -> RawPeer:
            rp = RawPeer(address, SPEAKER, port, asn, **kw)
            peers.append(rp)
            made.append(rp)
            await rp.connect(established=established)
            if established:
                assert await until(lambda: speaker.neighbors[address].session.established)
            return rp

        return speaker, peer, port

    yield make
    for x in reversed(made):
        if isinstance(x, RawPeer):
            await x.close()
        else:
            await x.stop()


async def test_message_size_limit(rig):
    speaker, peer, _ = await rig(
        [{"address": "127.0.0.102", "asn": 65001}, {"address": "127.0.0.103", "asn": 65001}]
    )
    # 4097 octets: over the limit without extended messages -> 1/2, the length as data.
    plain = await peer("127.0.0.102", 65001)
    comms = attr(OPT_T, 8, u32(1) * 1000)  # 4004 octets of communities
    short = ebgp_update(as_path([65001]), P, comms)
    wire = ebgp_update(as_path([65001]), P, comms + attr(OPT_T, 250, bytes(4097 - len(short) - 3)))
    assert len(wire) == 4097
    plain.send(wire)
    assert await until(lambda: plain.notifications())
    n = plain.notifications()[0]
    assert (n.code, n.subcode, n.data) == (1, 2, (4097).to_bytes(2, "big"))
    assert await until(lambda: plain.eof)
    # With extended messages both ways the same UPDATE is a route.
    ext = await peer("127.0.0.103", 65001, extended_message=True)
    ext.send(wire)
    assert await until(lambda: routes(speaker, "10.9.0.0/24"))
    assert speaker.neighbors["127.0.0.103"].session.established and ext.notifications() == []


async def test_path_attribute_count_limit(rig):
    speaker, peer, _ = await rig([{"address": "127.0.0.104", "asn": 65001}])
    rp = await peer("127.0.0.104", 65001, extended_message=True)
    base_path = as_path([65001])
    # 256 attributes (duplicated communities are discarded one by one): the route is used.
    rp.send(ebgp_update(base_path, P, attr(OPT_T, 8, u32(1)) * (MAX_PATH_ATTRS - 4)))
    assert await until(lambda: routes(speaker, "10.9.0.0/24"))
    # 257: the UPDATE is treated as withdraw, the session stays.
    rp.send(ebgp_update(base_path, P, attr(OPT_T, 8, u32(1)) * (MAX_PATH_ATTRS - 3)))
    assert await until(lambda: not routes(speaker, "10.9.0.0/24"))
    assert speaker.neighbors["127.0.0.104"].session.established
    assert not rp.eof and rp.notifications() == []
    # Thousands of attributes in an extended message: the same, no reset.
    rp.send(ebgp_update(base_path, P))
    assert await until(lambda: routes(speaker, "10.9.0.0/24"))
    rp.send(ebgp_update(base_path, P, attr(OPT_T, 8, u32(1)) * 8000))
    assert await until(lambda: not routes(speaker, "10.9.0.0/24"))
    assert speaker.neighbors["127.0.0.104"].session.established and not rp.eof


async def test_as_path_length_limit(rig):
    speaker, peer, _ = await rig([{"address": "127.0.0.105", "asn": 65001}])
    rp = await peer("127.0.0.105", 65001, extended_message=True)
    longest = [65001] + list(range(70000, 70000 + MAX_AS_PATH_ASNS - 1))
    rp.send(ebgp_update(as_path(longest), P))
    assert await until(lambda: routes(speaker, "10.9.0.0/24"))
    assert len(routes(speaker, "10.9.0.0/24")[0]["as_path"].split()) == MAX_AS_PATH_ASNS
    for bad in (
        as_path(longest + [70999]),  # 1001 AS numbers
        as_path(longest * 15),  # 15000 (an extended message)
        as_path(list(range(65001, 65001 + 256)), per_segment=1),  # 256 segments
    ):
        rp.send(ebgp_update(as_path([65001]), P))
        assert await until(lambda: routes(speaker, "10.9.0.0/24"))
        rp.send(ebgp_update(bad, P))
        assert await until(lambda: not routes(speaker, "10.9.0.0/24")), "long path accepted"
        assert speaker.neighbors["127.0.0.105"].session.established
        assert not rp.eof and rp.notifications() == []


def _prefixes(n: int) -> list[bytes]:
    """n /24s from 20.0.0.0 on."""
    return [bytes((24, 20 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF)) for i in range(n)]


def _announce(prefixes: list[bytes], med: int = 100, asn: int = 65001, ibgp: bool = False):
    attrs = AttrSet(
        origin=0,
        as_path=() if ibgp else ((2, (asn,)),),
        next_hop=ip("192.0.2.1"),
        med=med,
        local_pref=100 if ibgp else None,
    )
    return pack_announce(IPV4_UNICAST, attrs, prefixes, Context())


async def test_max_prefixes_warn(rig):
    speaker, peer, _ = await rig(
        [{"address": "127.0.0.106", "asn": 65001, "max_prefixes": {"limit": 50, "action": "warn"}}]
    )
    rp = await peer("127.0.0.106", 65001)
    with structlog.testing.capture_logs() as logs:
        for m in _announce(_prefixes(80)):
            rp.send(m)
        n = speaker.neighbors["127.0.0.106"]
        assert await until(lambda: n.peer.received_count() == 80)
    warnings = [e for e in logs if e["event"] == "maximum prefixes exceeded"]
    assert len(warnings) == 1 and warnings[0]["limit"] == 50, logs
    assert n.session.established and not rp.eof and rp.notifications() == []
    assert len(speaker.rde.rib.loc[IPV4_UNICAST]) == 80  # warn keeps them


async def test_max_prefixes_stop_and_restart(rig):
    speaker, peer, _ = await rig(
        [
            {
                "address": "127.0.0.107",
                "asn": 65001,
                "max_prefixes": {"limit": 50, "action": "stop", "restart_after": 1},
            },
            {"address": "127.0.0.108", "asn": 65002},
        ]
    )
    other = await peer("127.0.0.108", 65002)
    other_since = speaker.neighbors["127.0.0.108"].session.fsm.stats.established_at
    rp = await peer("127.0.0.107", 65001)
    n = speaker.neighbors["127.0.0.107"]
    for m in _announce(_prefixes(51)):
        rp.send(m)
    assert await until(lambda: rp.notifications())
    cease = rp.notifications()[0]
    assert (cease.code, cease.subcode) == (6, 1)
    assert await until(lambda: rp.eof)
    assert not n.session.established
    assert await until(lambda: len(speaker.rde.rib.loc[IPV4_UNICAST]) == 0), "routes kept"
    assert "maximum prefix limit 50 exceeded" in (n.session.last_error or "")
    # Refused while stopped; accepted again after restart_after (1 s).
    assert not n.session.enabled
    assert await until(lambda: n.session.enabled, timeout=5)
    again = await peer("127.0.0.107", 65001)
    for m in _announce(_prefixes(10)):
        again.send(m)
    assert await until(lambda: len(speaker.rde.rib.loc[IPV4_UNICAST]) == 10)
    s = speaker.neighbors["127.0.0.108"].session
    assert s.established and s.fsm.stats.established_at == other_since
    assert not other.eof


async def test_connections_from_unknown_addresses_allocate_nothing(rig):
    speaker, peer, port = await rig([{"address": "127.0.0.109", "asn": 65001}])
    configured = await peer("127.0.0.109", 65001)
    session = speaker.neighbors["127.0.0.109"].session
    since = session.fsm.stats.established_at
    listener = speaker.listeners[0]
    refused_before = listener.refused
    neighbors_before = dict(speaker.neighbors)
    await asyncio.sleep(0.05)
    tasks_before = len(asyncio.all_tasks())
    loop = asyncio.get_running_loop()

    async def knock() -> bool:
        """Connect from an unconfigured address; True if the speaker closed it at once."""
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.110", 0))
        try:
            await loop.sock_connect(s, (SPEAKER, port))
            data = await asyncio.wait_for(loop.sock_recv(s, 100), 2)
            return data == b""
        except ConnectionResetError:
            return True
        finally:
            s.close()

    start = loop.time()
    results = []
    for _ in range(10):
        results += await asyncio.gather(*(knock() for _ in range(100)))
    elapsed = loop.time() - start
    assert all(results) and len(results) == 1000
    assert await until(lambda: listener.refused - refused_before == 1000)
    assert elapsed < 20, elapsed
    assert speaker.neighbors == neighbors_before
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) == tasks_before
    assert session.established and session.fsm.stats.established_at == since
    assert not configured.eof and configured.notifications() == []
    # The configured session still works.
    configured.send(ebgp_update(as_path([65001]), P))
    assert await until(lambda: routes(speaker, "10.9.0.0/24"))


TABLE = 200_000


async def _slow_peer_setup(rig):
    """A feeder, a slow peer and a fast peer (all eBGP, one export context), Established
    while the table is empty so that the slow and the fast peer share one export group."""
    neighbors = [
        {"address": "127.0.0.111", "asn": 65001},  # feeder
        {"address": "127.0.0.112", "asn": 65002},  # slow
        {"address": "127.0.0.113", "asn": 65002},  # fast
    ]
    speaker, peer, _ = await rig(neighbors)
    feeder = await peer("127.0.0.111", 65001)
    slow = await peer("127.0.0.112", 65002, rcvbuf=4096)
    fast = await peer("127.0.0.113", 65002)
    # wait for the End-of-RIBs: every group is idle, the peers merged into one steady group
    assert await until(lambda: not speaker.rde.rib.exporter.syncing)
    # Small kernel buffers on both ends (loopback would otherwise absorb megabytes, the whole
    # table): what the slow peer does not read then backs up into the speaker.
    sock = speaker.neighbors["127.0.0.112"].session.conn.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return speaker, feeder, slow, fast


def _groups(speaker) -> dict:
    return {a: n.peer.source.group for a, n in speaker.neighbors.items()}


async def _send_table(feeder: RawPeer, med: int) -> None:
    for m in _announce(_prefixes(TABLE), med=med):
        feeder.send(m)
    await feeder.drain()


async def test_slow_peer_memory_is_bounded_by_the_table(rig):
    """A peer that stops reading: its export state stays <= the table however often the table
    changes (the latest state wins, nothing queues up), and what is buffered for its socket
    stays near the high-water mark."""
    speaker, feeder, slow, fast = await _slow_peer_setup(rig)
    slow.stop_reading()
    exporter: Exporter = speaker.rde.rib.exporter
    adj = speaker.neighbors["127.0.0.111"].peer.source.adj_in[IPV4_UNICAST]
    last = _prefixes(TABLE)[-1]
    slow_session = speaker.neighbors["127.0.0.112"].session
    worst = 0
    for med in (100, 200, 300):  # the whole table changes three times
        await _send_table(feeder, med)
        assert await until(lambda m=med: adj.get(last) is not None and adj[last].med == m)
        for _ in range(10):
            await asyncio.sleep(0.02)
            worst = max(worst, *(g.pending_count() for g in exporter.groups()))
    assert len(speaker.rde.rib.loc[IPV4_UNICAST]) == TABLE
    assert 0 < worst <= TABLE, worst
    assert slow_session.write_buffer_size() <= WRITE_HIGH + 1024 * 1024
    assert slow.raw_received < 1024 * 1024  # it really read (almost) nothing
    assert slow_session.established and speaker.neighbors["127.0.0.113"].session.established


async def test_slow_peer_does_not_delay_others(rig):
    speaker, feeder, slow, fast = await _slow_peer_setup(rig)
    groups = _groups(speaker)
    assert groups["127.0.0.112"] is groups["127.0.0.113"], "expected one shared group"
    slow.stop_reading()
    await _send_table(feeder, 100)
    # The fast peer gets the whole table promptly although the slow one reads nothing.
    assert await until(lambda: len(fast.announced()) == TABLE, timeout=5), (
        f"fast peer has {len(fast.announced())} of {TABLE} prefixes"
    )
    # And a later change reaches it within a second.
    late = pfx.from_str("10.250.0.0/24")
    for m in _announce([late]):
        feeder.send(m)
    assert await until(lambda: late in fast.announced(), timeout=1)


async def test_route_too_big_for_a_peer_is_withdrawn_from_it(rig):
    """RFC 8654 §4: a route received in an extended message that does not fit a peer without
    extended messages is not sent to it, and what it had for the prefix is withdrawn."""
    loop = asyncio.get_running_loop()
    errors = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    speaker, peer, _ = await rig(
        [
            {"address": "127.0.0.114", "asn": 65001},
            {"address": "127.0.0.115", "asn": 65002},
            {"address": "127.0.0.116", "asn": 65003},
        ]
    )
    feeder = await peer("127.0.0.114", 65001, extended_message=True)
    big_ok = await peer("127.0.0.115", 65002, extended_message=True)
    small = await peer("127.0.0.116", 65003)
    feeder.send(ebgp_update(as_path([65001]), P, attr(OPT_T, 8, u32(1))))
    assert await until(lambda: P in small.announced() and P in big_ok.announced())
    feeder.send(ebgp_update(as_path([65001]), P, attr(OPT_T, 8, u32(1) * 1500)))
    assert await until(lambda: P not in small.announced()), "the big route reached a 4096 peer"
    last = [u for u in big_ok.updates() if P in u.nlri][-1]
    assert len(last.attrs.communities) == 1500
    assert P in big_ok.announced()
    assert errors == [], errors
    for rp in (feeder, big_ok, small):
        assert not rp.eof and rp.errors == [] and rp.notifications() == []

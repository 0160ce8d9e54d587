"""A peer that stops reading while the table changes under it, then reads again.

``tests/hostile/test_hostile_limits.py`` shows that such a peer costs memory bounded by the
table and does not delay the peers sharing its export group. This is the other half: once it
reads again it ends up with exactly what a peer that never stopped holds (the latest
attributes of every prefix, nothing withdrawn kept, nothing lost), it rejoins its export group,
the Loc-RIB equals a clean run's, and when it leaves nothing of it stays behind."""

import asyncio
import os
import socket

from faultkit import Leaks, RawPeer, clean_view, peer_view, rib_view, start_speaker, until
from hostile_peer import speaker_config

from bgpd.wire import AttrSet, Context, pack_announce, pack_withdraw
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST

SPEAKER = "127.0.7.1"
FEEDER, SLOW, FAST = "127.0.7.2", "127.0.7.3", "127.0.7.4"
PORT = 28000 + os.getpid() % 2000
TABLE = 50_000


def prefixes(n: int, first: int = 0) -> list[bytes]:
    return [bytes((24, 30 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF)) for i in range(first, n)]


def announce(keys: list[bytes], med: int) -> list[bytes]:
    attrs = AttrSet(
        origin=0,
        as_path=((2, (65001,)),),
        next_hop=pfx.addr_from_str("192.0.2.1"),
        med=med,
        communities=(65001 << 16 | med,),
    )
    return pack_announce(IPV4_UNICAST, attrs, keys, Context())


def diff(have: dict, want: dict) -> str:
    bad = {
        k: (have.get(k), want.get(k))
        for k in have.keys() | want.keys()
        if have.get(k) != want.get(k)
    }
    return f"{len(bad)} prefixes differ (have, want): {sorted(bad.items())[:5]}"


def neighbors() -> list[dict]:
    return [
        {"address": FEEDER, "asn": 65001, "passive": True},
        {"address": SLOW, "asn": 65002, "passive": True},
        {"address": FAST, "asn": 65002, "passive": True},
    ]


async def test_slow_reader_catches_up_exactly():
    speaker = await start_speaker(speaker_config(SPEAKER, PORT, neighbors()))
    peers: list[RawPeer] = []
    try:
        leaks = Leaks(speaker)
        feeder = await RawPeer(FEEDER, SPEAKER, PORT, 65001).connect()
        fast = await RawPeer(FAST, SPEAKER, PORT, 65002).connect()
        slow = await RawPeer(SLOW, SPEAKER, PORT, 65002, rcvbuf=4096).connect()
        peers += [feeder, fast, slow]
        assert await until(lambda: all(n.session.established for n in speaker.neighbors.values()))
        assert await until(lambda: not speaker.rde.rib.exporter.syncing)
        groups = {a: n.peer.source.group for a, n in speaker.neighbors.items()}
        assert groups[SLOW] is groups[FAST]
        sock = speaker.neighbors[SLOW].session.conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        slow.stop_reading()
        # The table changes four times while the slow peer reads nothing: announced, changed
        # twice, then a tenth withdrawn and another tenth changed once more.
        table = prefixes(TABLE)
        final: list[bytes] = []
        for med in (100, 200, 300):
            final = announce(table, med)
            for m in final:
                feeder.send(m)
            await feeder.drain()
            await asyncio.sleep(0.3)
        gone, changed = table[: TABLE // 10], table[TABLE // 10 : TABLE // 5]
        for m in pack_withdraw(IPV4_UNICAST, gone, Context()) + announce(changed, 400):
            feeder.send(m)
        await feeder.drain()
        want = {pfx.to_str(k, 1): 300 for k in table[TABLE // 5 :]}
        want.update({pfx.to_str(k, 1): 400 for k in changed})

        def meds(peer):
            # MED does not cross to another AS: the community carries the version.
            return {k: a[5][0] & 0xFFFF for k, a in peer_view(peer).items()}

        assert await until(lambda: meds(fast) == want, timeout=20, step=0.5), diff(meds(fast), want)
        assert await until(
            lambda: groups[SLOW] is not speaker.neighbors[SLOW].peer.source.group, 5
        ), "the slow peer never left its group"
        assert slow.raw_received < 1 << 20

        slow.resume_reading()
        assert await until(lambda: meds(slow) == want, timeout=30, step=0.5), diff(meds(slow), want)
        assert peer_view(slow) == peer_view(fast)
        assert slow.notifications() == [] and fast.notifications() == []
        # Once idle again it merges back into the fast peer's group.
        assert await until(
            lambda: (
                speaker.neighbors[SLOW].peer.source.group
                is speaker.neighbors[FAST].peer.source.group
            ),
            timeout=10,
        )

        view = rib_view(speaker)
        feed = announce(table[TABLE // 5 :], 300) + announce(changed, 400)
        assert view == await clean_view(
            SPEAKER,
            PORT + 1,
            neighbors(),
            {FEEDER: feed},
            expect=len(want),
            peer_asn={FEEDER: 65001},
        )

        for p in (slow, fast, feeder):
            await p.close()
        peers.clear()
        await leaks.check(connections={FEEDER: 0, SLOW: 0, FAST: 0})
        assert await until(lambda: not rib_view(speaker))
    finally:
        for p in peers:
            await p.close()
        await speaker.stop()

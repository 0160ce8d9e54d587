"""Attribute sets a peer replaces are freed by reference counting alone.

Nothing bgpd keeps about a set (decode cache, import and export verdicts, encodings, derived
sets) may refer back to the set itself: a cycle is only freed by a full garbage collection,
and ``bench/soak.py`` saw a reflector under churn grow ~15 MiB/h between collections because
``_import`` cached "accepted unchanged" as the set itself. With the collector off, every old
version must be gone as soon as no route uses it."""

import gc
import os
import weakref

from faultkit import RawPeer, peer_view, start_speaker, until
from hostile_peer import ibgp_route, speaker_config

from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST

SPEAKER = "127.0.7.21"
FEEDER, CLIENT, EBGP = "127.0.7.22", "127.0.7.23", "127.0.7.24"
PORT = 29000 + os.getpid() % 900
PREFIXES = [pfx.from_str(f"10.77.{i}.0/24") for i in range(20)]


async def test_replaced_attribute_sets_are_freed_without_the_garbage_collector():
    neighbors = [
        {"address": FEEDER, "asn": 65000, "passive": True, "rr_client": True},
        {"address": CLIENT, "asn": 65000, "passive": True, "rr_client": True},
        {"address": EBGP, "asn": 65009, "passive": True},
    ]
    speaker = await start_speaker(speaker_config(SPEAKER, PORT, neighbors))
    peers = []
    enabled = gc.isenabled()
    try:
        feeder = await RawPeer(FEEDER, SPEAKER, PORT, 65000).connect()
        client = await RawPeer(CLIENT, SPEAKER, PORT, 65000).connect()
        ebgp = await RawPeer(EBGP, SPEAKER, PORT, 65009).connect()
        peers += [feeder, client, ebgp]
        adj = speaker.neighbors[FEEDER].peer.source.adj_in[IPV4_UNICAST]
        gc.collect()
        gc.disable()
        old = []
        for med in range(1, 30):
            feeder.send(ibgp_route(PREFIXES, med=med))
            await feeder.drain()
            assert await until(
                lambda m=med: adj.get(PREFIXES[-1]) is not None and adj[PREFIXES[-1]].med == m
            )
            # reflected (a new set with ORIGINATOR_ID) and sent to eBGP (another new set)
            assert await until(lambda m=med: {a[3] for a in peer_view(client).values()} == {m})
            assert await until(lambda: len(peer_view(ebgp)) == len(PREFIXES))
            old.append(weakref.ref(adj[PREFIXES[0]]))
        alive = [r for r in old[:-1] if r() is not None]
        assert not alive, f"{len(alive)} of {len(old) - 1} replaced sets still alive without gc"
        assert old[-1]() is not None
    finally:
        if enabled:
            gc.enable()
        for p in peers:
            await p.close()
        await speaker.stop()

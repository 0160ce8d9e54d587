"""Mutated UPDATEs through a whole speaker: decoding, RIB, reflection, export and packing.

The codec and FSM targets (``fuzz/targets.py``) stop at the decoded message; this test sends
mutated UPDATEs (from the decoder seed corpus) over a real session, so that what the speaker
does with whatever decodes is exercised too. A feeder (an iBGP route-reflection client with
extended messages) sends them; two receivers take what the speaker exports: an
iBGP client with extended messages and an eBGP peer with two-octet AS numbers and without
extended messages (so large sets must be withdrawn rather than sent, RFC 8654 §4).

Invariants: no exception reaches the event loop; the feeder's session stays up (only UPDATEs
that decode without a session-reset error are sent); the receivers stay up and everything they
get frames, decodes and carries no RFC 7606 error; the speaker's table holds exactly what the
feeder's UPDATEs leave announced.
"""

import asyncio
import dataclasses
import os
import random
import sys
from pathlib import Path

from hostile_peer import RawPeer, ports, speaker_config, start_speaker, until

from bgpd.wire import Action, AttrPool, BGPError, Context, Framer, Update, decode_message
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import run  # noqa: E402

SPEAKER, FEEDER, CLIENT, EBGP = "127.0.0.121", "127.0.0.122", "127.0.0.123", "127.0.0.124"
BOTH = frozenset({IPV4_UNICAST, IPV6_UNICAST})
# as the speaker decodes the feeder's UPDATEs: a session between loopback addresses
FEEDER_CTX = Context(as4=True, ibgp=True, extended_message=True, loopback_next_hop=True)
COUNT = int(os.environ.get("SESSION_FUZZ_COUNT", "3000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261123"))


def mutated_updates(n: int, seed: int) -> list[bytes]:
    """``n`` UPDATEs, mutated from the seed corpus, that the feeder's session accepts."""
    rng = random.Random(seed)
    seeds = [d[2:] for d in run.load_corpus("decoder") if len(d) > 21 and d[20] == 2]
    out: list[bytes] = []
    while len(out) < n:
        data = run.mutate(b"\x00\x00" + rng.choice(seeds), rng, seeds, 9000)[2:]
        framer = Framer(65535)
        for msg_type, body in framer.feed(data):
            if msg_type != 2:
                continue
            ctx = Context(
                as4=True, ibgp=True, extended_message=True, loopback_next_hop=True, pool=AttrPool()
            )
            try:
                m = decode_message(msg_type, body, ctx)
            except BGPError:
                continue
            if m.error is not None and m.error.action > Action.WITHDRAW:
                continue
            out.append(b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body)
    return out[:n]


def expected_table(wires: list[bytes]) -> dict:
    """What the speaker should hold from the feeder: family -> set of keys."""
    have = {IPV4_UNICAST: set(), IPV6_UNICAST: set()}
    ctx = dataclasses.replace(FEEDER_CTX, pool=AttrPool())
    for wire in wires:
        m = decode_message(2, wire[19:], ctx)
        for fam, keys in m.unreach():
            have[fam].difference_update(keys)
        for fam, _attrs, keys in m.reach():
            have[fam].update(keys)
    return have


async def test_mutated_updates_through_the_speaker():
    loop = asyncio.get_running_loop()
    errors = []
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    port = next(ports)
    neighbors = [
        {
            "address": FEEDER,
            "asn": 65000,
            "port": port,
            "passive": True,
            "rr_client": True,
        },
        {"address": CLIENT, "asn": 65000, "port": port, "passive": True, "rr_client": True},
        {"address": EBGP, "asn": 65010, "port": port, "passive": True},
    ]
    speaker = await start_speaker(speaker_config(SPEAKER, port, neighbors))
    peers = []
    try:
        client = RawPeer(CLIENT, SPEAKER, port, 65000, extended_message=True)
        ebgp = RawPeer(EBGP, SPEAKER, port, 65010, as4=False)
        feeder = RawPeer(FEEDER, SPEAKER, port, 65000, extended_message=True)
        for rp in (client, ebgp, feeder):
            peers.append(rp)
            await rp.connect()
        assert await until(lambda: all(n.session.established for n in speaker.neighbors.values()))
        wires = mutated_updates(COUNT, seed=SEED)
        for k in range(0, len(wires), 100):
            for w in wires[k : k + 100]:
                feeder.send(w)
            await feeder.drain()
            await asyncio.sleep(0)
        want = expected_table(wires)
        adj = speaker.neighbors[FEEDER].peer.source.adj_in

        def got():
            return {fam: set(adj[fam]) for fam in (IPV4_UNICAST, IPV6_UNICAST)}

        assert await until(lambda: got() == want, timeout=20), "the speaker's table differs"
        await asyncio.sleep(0.3)  # let the exports drain
        assert errors == [], errors
        for rp in (feeder, client, ebgp):
            assert not rp.eof and rp.errors == [] and rp.notifications() == [], rp.local
        for rp in (client, ebgp):
            for m in rp.updates():
                assert isinstance(m, Update)
                err = m.error
                # Our export prepends our AS: a path at the length limit grows past it.
                assert err is None or "AS numbers" in err.detail, (rp.local, err)
        assert all(n.session.established for n in speaker.neighbors.values())
        # It was exercised (how much depends on the seed corpus, which grows with fuzzing runs:
        # the eBGP peer gets fewer, large sets being withdrawn from it rather than sent).
        assert len(client.updates()) > 50 and len(ebgp.updates()) > 20
        assert client.announced() and ebgp.announced()
    finally:
        loop.set_exception_handler(old_handler)
        for rp in peers:
            await rp.close()
        await speaker.stop()

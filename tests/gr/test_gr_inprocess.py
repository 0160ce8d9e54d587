"""Graceful restart, in-process (no root): what tests/test_graceful_restart.py does not cover.

* A connection of the restarting neighbor that fails before Established (the loser of a
  connection collision, an OPEN refused) must not flush the stale routes: found by the
  data-plane test, where the survivor's route was deleted and re-added in the kernel when
  both speakers connected to each other at once after the restart.
* The stale-routes timer: a neighbor that comes back with the forwarding bit but never sends
  End-of-RIB loses its stale routes after ``stale_routes_time``.

The peer is a bare :class:`PeerSession` whose OPEN and UPDATEs the test controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile

import pytest

from bgpd.config import parse
from bgpd.fsm import SessionSettings
from bgpd.session.peer import PeerSession, Transport
from bgpd.speaker import Speaker, restart_marker_path
from bgpd.wire import AttrSet, end_of_rib, intern, pack_announce
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import GracefulRestart

_ports = itertools.count(23179 + (os.getpid() % 89) * 100)
A, B = "127.0.0.95", "127.0.0.96"
PREFIX = "10.96.0.0/24"


async def until(pred, timeout=15.0, step=0.02):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def paths(speaker, prefix=PREFIX):
    r = speaker.command("show_routes", prefix=prefix)["routes"]
    return r[0]["paths"] if r else []


@pytest.fixture
async def helper():
    """bgpd at 127.0.0.95 (passive), graceful restart on, one neighbor 127.0.0.96."""
    made = []

    async def start(**gr):
        port = next(_ports)
        c = parse(
            {
                "router_id": "10.0.0.95",
                "asn": 65095,
                "listen": [{"address": A, "port": port}],
                "control_socket": tempfile.mktemp(prefix="bgpd-gr-", suffix=".sock"),
                "graceful_restart": {
                    "restart_time": 30,
                    "stale_routes_time": 30,
                    "selection_deferral": 5,
                    **gr,
                },
                "neighbors": [
                    {"address": B, "asn": 65096, "port": port, "passive": True, "connect_retry": 1}
                ],
            }
        )
        s = Speaker(c, loop=asyncio.get_running_loop())
        await s.start()
        made.append(s)
        return s, port

    yield start
    for s in made:
        s.stopping.set()
        await s.stop()
        with contextlib.suppress(FileNotFoundError):  # the graceful stop's marker
            os.unlink(restart_marker_path(s.config))


def peer(port: int, *, asn: int = 65096, eor: bool = True, prefixes=(PREFIX,)) -> PeerSession:
    """The neighbor: restarting, forwarding kept for IPv4; announces ``prefixes`` (and
    End-of-RIB when ``eor``) as soon as the session is up."""
    loop = asyncio.get_running_loop()
    settings = SessionSettings(
        local_as=asn,
        peer_as=65095,
        router_id="10.0.0.96",
        connect_retry=1,
        graceful_restart=GracefulRestart(
            restart_time=30, restarting=True, families=((1, 1, True),)
        ),
    )

    class Handler:
        def session_established(self, s):
            attrs = intern(AttrSet(origin=0, as_path=((2, (asn,)),), next_hop=b"\x7f\x00\x00\x60"))
            ctx = s.fsm.negotiated.context
            s.send(pack_announce((1, 1), attrs, [pfx.from_str(p) for p in prefixes], ctx))
            if eor:
                s.send([end_of_rib((1, 1))])

        def __getattr__(self, name):
            return lambda *a, **k: None

    return PeerSession(settings, Transport(A, port, B), Handler(), loop)


async def _stale_after_abort(start, **gr):
    a, port = await start(**gr)
    b = peer(port)
    b.start()
    assert await until(lambda: paths(a) and not a.rde.restarting)
    b.abort()  # gone without a NOTIFICATION: a keeps the route, stale
    n = a.neighbors[B]
    assert await until(lambda: n.peer.helper.state == "restarting")
    assert paths(a)[0]["stale"] is True
    return a, port, n


async def test_failed_connection_of_a_restarting_neighbor_keeps_its_stale_routes(helper):
    a, port, n = await _stale_after_abort(helper)
    # A connection from the neighbor that fails in OpenSent (its OPEN names the wrong AS,
    # a refuses it with a NOTIFICATION): the session goes down without having been up.
    bad = peer(port, asn=65097)
    bad.start()
    try:
        assert await until(lambda: bad.fsm.stats.messages_in["NOTIFICATION"] > 0)
        await asyncio.sleep(0.1)
    finally:
        bad.close()
    assert n.peer.helper.state == "restarting", "a connection that never came up ends nothing"
    p = paths(a)
    assert p and p[0]["stale"] is True, "the stale route must be kept"
    # The real restart: refreshed, End-of-RIB, no longer stale.
    b2 = peer(port)
    b2.start()
    try:
        assert await until(lambda: n.session.established)
        assert await until(
            lambda: n.peer.helper.state is None and paths(a) and not paths(a)[0]["stale"]
        )
    finally:
        b2.close()


async def test_stale_routes_timer_sweeps_what_no_end_of_rib_confirmed(helper):
    a, port, n = await _stale_after_abort(helper, stale_routes_time=2)
    # Back with the forwarding bit, but announcing another prefix and never an End-of-RIB.
    b2 = peer(port, eor=False, prefixes=("10.97.0.0/24",))
    b2.start()
    try:
        assert await until(lambda: n.session.established)
        assert await until(lambda: n.peer.helper.state == "refreshing")
        assert paths(a)[0]["stale"] is True and a.rde.gr_in_progress
        await asyncio.sleep(1.0)
        assert paths(a), "kept until stale_routes_time"
        assert await until(lambda: not paths(a), timeout=5)  # then swept
        assert n.peer.helper.state is None and not a.rde.gr_in_progress
        assert paths(a, "10.97.0.0/24") and not paths(a, "10.97.0.0/24")[0]["stale"]
        assert n.session.established, "the session stays up"
    finally:
        b2.close()


async def test_new_connection_while_established_is_the_peer_restarting(helper):
    """The peer restarted without bgpd seeing its old connection end (a host reboot, a lost
    FIN): its new connection arrives while bgpd still has the session Established. With
    graceful restart negotiated, that is the peer restarting: keep its routes as stale and
    take the new connection now, not after the hold timer (BIRD: BEM_GRACEFUL_RESTART on an
    incoming connection; FRR: "NSF peer closed the session")."""
    a, port = await helper()
    b = peer(port)
    b.start()
    n = a.neighbors[B]
    assert await until(lambda: paths(a) and not a.rde.restarting and n.session.established)
    # b dies silently: no FIN, no more KEEPALIVEs (a's hold timer would take 90 s).
    if b._timer is not None:
        b._timer.cancel()
    b._on_timer = lambda: None
    b._arm = lambda: None
    b.conn.transport.pause_reading()
    b2 = peer(port)
    b2.start()
    try:
        assert await until(lambda: b2.established, timeout=4), "b2 refused while b looks up"
        assert paths(a), "the route was kept across the restart"
        assert await until(lambda: n.peer.helper.state is None and not paths(a)[0]["stale"])
    finally:
        b2.close()
        b.conn.transport.abort()


async def test_selection_deferral_timer_ends_our_restart_when_a_neighbor_never_comes():
    """bgpd restarting (``-R``), two neighbors: B (graceful restart, not restarting) answers
    with its table and End-of-RIB, C never comes. Our routes go out only when the
    selection-deferral timer fires (RFC 4724 §4.1 (b)), not at B's End-of-RIB."""
    loop = asyncio.get_running_loop()
    port = next(_ports)

    def config(rid, asn, addr, neighbors, networks, deferral):
        return parse(
            {
                "router_id": rid,
                "asn": asn,
                "listen": [{"address": addr, "port": port}],
                "control_socket": tempfile.mktemp(prefix="bgpd-gr-", suffix=".sock"),
                "networks": networks,
                "graceful_restart": {"selection_deferral": deferral},
                "neighbors": [
                    {"address": a, "asn": x, "port": port, "connect_retry": 1} for a, x in neighbors
                ],
            }
        )

    started = []
    try:
        # B first, alone: a cold start (no R bit), a plain helper.
        b = Speaker(config("10.0.0.96", 65096, B, [(A, 65095)], ["10.96.0.0/24"], 1), loop=loop)
        await b.start()
        started.append(b)
        assert not b.rde.restarting and b.rde.gr.ours.start == "cold"
        a = Speaker(
            config(
                "10.0.0.95",
                65095,
                A,
                [(B, 65096), ("127.0.0.99", 65099)],
                ["10.95.0.0/24"],
                3,
            ),
            loop=loop,
            restart=True,
        )
        t0 = loop.time()
        await a.start()
        started.append(a)
        assert await until(lambda: paths(a, "10.96.0.0/24"), timeout=5)  # B's table is in
        assert a.rde.restarting and a.rde.gr.ours.waiting == {"127.0.0.99"}
        assert not paths(b, "10.95.0.0/24"), "nothing sent before the deferral ends"
        assert await until(lambda: paths(b, "10.95.0.0/24"), timeout=6)
        assert loop.time() - t0 >= 2.9
        assert not a.rde.restarting and a.rde.gr.ours.deferral_end is None
    finally:
        for s in started:
            s.stopping.set()
            await s.stop()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(restart_marker_path(s.config))

"""Graceful restart (RFC 4724) between bgpd speakers over real TCP on loopback addresses."""

import asyncio
import itertools
import os
import tempfile

import pytest

from bgpd.config import parse
from bgpd.fsm import SessionSettings
from bgpd.session.peer import PeerSession, Transport
from bgpd.speaker import Speaker
from bgpd.wire import AttrSet, end_of_rib, intern, pack_announce
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import GracefulRestart

_ports = itertools.count(22179 + (os.getpid() % 97) * 100)


def cfg(rid, asn, addr, port, peer, peer_as, networks=(), gr=None, **nb):
    data = {
        "router_id": rid,
        "asn": asn,
        "listen": [{"address": addr, "port": port}],
        "control_socket": tempfile.mktemp(prefix="bgpd-gr-", suffix=".sock"),
        "networks": list(networks),
        "neighbors": [{"address": peer, "asn": peer_as, "port": port, "connect_retry": 1, **nb}],
    }
    if gr is not None:
        data["graceful_restart"] = gr
    return parse(data)


async def until(pred, timeout=15.0, step=0.05):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def paths(speaker, prefix):
    r = speaker.cmd_show_routes(prefix=prefix)["routes"]
    return r[0]["paths"] if r else []


@pytest.fixture
async def running():
    started = []

    async def start(c):
        s = Speaker(c, loop=asyncio.get_running_loop())
        await s.start()
        started.append(s)
        return s

    yield start
    for s in started:
        if not s.stopping.is_set():
            s.stopping.set()
            await s.stop()


GR = {"restart_time": 30, "stale_routes_time": 30, "selection_deferral": 10}


def pair(port, b_gr=GR, a_gr=GR, b_networks=("10.92.0.0/24",)):
    a = cfg("10.0.0.91", 65091, "127.0.0.91", port, "127.0.0.92", 65092, ["10.91.0.0/24"], a_gr)
    b = cfg("10.0.0.92", 65092, "127.0.0.92", port, "127.0.0.91", 65091, b_networks, b_gr)
    return a, b


async def stop_graceful(s):
    s.stopping.set()
    await s.stop()


async def test_helper_keeps_stale_routes_and_the_restarted_peer_refreshes_them(running):
    port = next(_ports)
    a_cfg, b_cfg = pair(port)
    a = await running(a_cfg)
    b = await running(b_cfg)
    assert await until(lambda: paths(a, "10.92.0.0/24") and paths(b, "10.91.0.0/24"))
    # b goes down for a restart: no NOTIFICATION; a keeps b's route, stale, and says so.
    assert await until(lambda: not a.gr_restarting and not b.gr_restarting)
    await stop_graceful(b)
    assert await until(lambda: a.neighbors["127.0.0.92"].gr_state == "restarting")
    assert a.gr_in_progress
    p = paths(a, "10.92.0.0/24")
    assert p and p[0]["stale"] is True
    assert a.cmd_show_summary()["graceful_restart"]["neighbors"]["127.0.0.92"]["state"] == (
        "restarting"
    )
    # b comes back restarting: it defers selection until a's End-of-RIB, then sends its own.
    b2 = await running(b_cfg)
    assert b2.gr_restarting
    assert await until(lambda: not b2.gr_restarting)
    assert await until(lambda: not a.gr_in_progress)
    p = paths(a, "10.92.0.0/24")
    assert p and p[0]["stale"] is False
    assert paths(b2, "10.91.0.0/24")


async def test_restart_timer_expiry_flushes(running):
    port = next(_ports)
    gr = dict(GR, restart_time=2)
    a_cfg, b_cfg = pair(port, b_gr=gr)
    a = await running(a_cfg)
    b = await running(b_cfg)
    assert await until(lambda: paths(a, "10.92.0.0/24"))
    await stop_graceful(b)
    assert await until(lambda: paths(a, "10.92.0.0/24") and paths(a, "10.92.0.0/24")[0]["stale"])
    # b's capability said 2 s: after that the stale route is gone.
    assert await until(lambda: not paths(a, "10.92.0.0/24"), timeout=10)
    assert not a.gr_in_progress


async def test_peer_returning_without_graceful_restart_flushes(running):
    port = next(_ports)
    a_cfg, b_cfg = pair(port)
    a = await running(a_cfg)
    b = await running(b_cfg)
    assert await until(lambda: paths(a, "10.92.0.0/24"))
    await stop_graceful(b)
    assert await until(lambda: a.neighbors["127.0.0.92"].gr_state == "restarting")
    # b returns without graceful restart and without the network: a must drop the stale route
    # as soon as the session is up, not wait for a timer.
    _, b_plain = pair(port, b_gr=None, b_networks=())
    b2 = await running(b_plain)
    assert await until(lambda: b2.neighbors["127.0.0.91"].session.established)
    assert await until(lambda: not paths(a, "10.92.0.0/24"))
    assert not a.gr_in_progress


async def test_forwarding_bit_cleared_flushes_that_family(running):
    """A peer that comes back saying it did not keep forwarding state for IPv4."""
    loop = asyncio.get_running_loop()
    port = next(_ports)
    a = await running(
        cfg("10.0.0.93", 65093, "127.0.0.93", port, "127.0.0.94", 65094, [], GR, passive=True)
    )

    def peer(forwarding: bool) -> PeerSession:
        settings = SessionSettings(
            local_as=65094,
            peer_as=65093,
            router_id="10.0.0.94",
            connect_retry=1,
            graceful_restart=GracefulRestart(
                restart_time=60, restarting=True, families=((1, 1, forwarding),)
            ),
        )

        class H:
            def session_established(self, s):
                attrs = intern(
                    AttrSet(origin=0, as_path=((2, (65094,)),), next_hop=b"\x7f\x00\x00\x5e")
                )
                ctx = s.fsm.negotiated.context
                s.send(pack_announce((1, 1), attrs, [pfx.from_str("10.94.0.0/24")], ctx))
                s.send([end_of_rib((1, 1))])

            def __getattr__(self, name):
                return lambda *a, **k: None

        return PeerSession(settings, Transport("127.0.0.93", port, "127.0.0.94"), H(), loop)

    b = peer(True)
    b.start()
    assert await until(lambda: paths(a, "10.94.0.0/24"))
    assert await until(lambda: not a.gr_restarting)  # its own start-up deferral is over
    b.abort()
    assert await until(lambda: a.neighbors["127.0.0.94"].gr_state == "restarting")
    assert a.gr_in_progress
    assert paths(a, "10.94.0.0/24")[0]["stale"]
    b2 = peer(False)  # back, but IPv4 forwarding state was not preserved
    b2.start()
    try:
        assert await until(lambda: a.neighbors["127.0.0.94"].session.established)
        # Flushed at once (before any End-of-RIB), then the fresh announcement comes back.
        assert await until(lambda: not a.gr_in_progress)
        assert await until(
            lambda: paths(a, "10.94.0.0/24") and not paths(a, "10.94.0.0/24")[0]["stale"]
        )
    finally:
        b2.close()


async def test_restarting_speaker_defers_until_end_of_rib(running):
    """Our own restart: nothing is sent before every neighbor's End-of-RIB (or the timer)."""
    port = next(_ports)
    a_cfg, b_cfg = pair(port, a_gr=None)
    a = await running(a_cfg)  # a plain peer: sends its table and End-of-RIB at once
    b = await running(b_cfg)
    assert b.gr_restarting and b.cmd_show_summary()["graceful_restart"]["restarting"]
    assert await until(lambda: not b.gr_restarting, timeout=8)  # well before the 10 s timer
    assert await until(lambda: paths(a, "10.92.0.0/24"))
    assert b.cmd_show_summary()["graceful_restart"]["waiting_for_eor"] == []

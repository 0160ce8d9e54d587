"""Graceful restart (RFC 4724) between bgpd speakers over real TCP on loopback addresses.

Which starts are restarts: only one whose forwarding state survived the previous run
(``bgpd run -R``, the marker a graceful stop leaves, kernel routes adopted: the last one is
in tests/gr/test_gr_dataplane.py); any other start is a cold start, announcing at once.
"""

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import socket
import tempfile

import pytest

from bgpd.config import parse
from bgpd.fsm import SessionSettings
from bgpd.session.peer import PeerSession, Transport
from bgpd.speaker import Speaker, restart_marker_path, write_restart_marker
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
    r = speaker.command("show_routes", prefix=prefix)["routes"]
    return r[0]["paths"] if r else []


@pytest.fixture
async def running():
    started = []

    async def start(c, restart=False):
        s = Speaker(c, loop=asyncio.get_running_loop(), restart=restart)
        started.append(s)
        await s.start()
        return s

    yield start
    for s in started:
        if not s.stopping.is_set():
            s.stopping.set()
            await s.stop()
    for s in started:  # the graceful stops' markers (beside the control sockets, in /tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(restart_marker_path(s.config))


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
    assert await until(lambda: not a.rde.restarting and not b.rde.restarting)
    await stop_graceful(b)
    assert await until(lambda: a.neighbors["127.0.0.92"].peer.helper.state == "restarting")
    assert a.rde.gr_in_progress
    p = paths(a, "10.92.0.0/24")
    assert p and p[0]["stale"] is True
    assert a.command("show_summary")["graceful_restart"]["neighbors"]["127.0.0.92"]["state"] == (
        "restarting"
    )
    # b comes back restarting (the marker its graceful stop left): it defers selection
    # until a's End-of-RIB, then sends its own.
    b2 = await running(b_cfg)
    assert b2.rde.restarting and b2.rde.gr.ours.start == "restart"
    assert b2.rde.gr.ours.reason.startswith("graceful stop "), b2.rde.gr.ours.reason
    assert await until(lambda: not b2.rde.restarting)
    assert await until(lambda: not a.rde.gr_in_progress)
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
    assert not a.rde.gr_in_progress


async def test_peer_returning_without_graceful_restart_flushes(running):
    port = next(_ports)
    a_cfg, b_cfg = pair(port)
    a = await running(a_cfg)
    b = await running(b_cfg)
    assert await until(lambda: paths(a, "10.92.0.0/24"))
    await stop_graceful(b)
    assert await until(lambda: a.neighbors["127.0.0.92"].peer.helper.state == "restarting")
    # b returns without graceful restart and without the network: a must drop the stale route
    # as soon as the session is up, not wait for a timer.
    _, b_plain = pair(port, b_gr=None, b_networks=())
    b2 = await running(b_plain)
    assert await until(lambda: b2.neighbors["127.0.0.91"].session.established)
    assert await until(lambda: not paths(a, "10.92.0.0/24"))
    assert not a.rde.gr_in_progress


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
    assert await until(lambda: not a.rde.restarting)  # its own start-up deferral is over
    b.abort()
    assert await until(lambda: a.neighbors["127.0.0.94"].peer.helper.state == "restarting")
    assert a.rde.gr_in_progress
    assert paths(a, "10.94.0.0/24")[0]["stale"]
    b2 = peer(False)  # back, but IPv4 forwarding state was not preserved
    b2.start()
    try:
        assert await until(lambda: a.neighbors["127.0.0.94"].session.established)
        # Flushed at once (before any End-of-RIB), then the fresh announcement comes back.
        assert await until(lambda: not a.rde.gr_in_progress)
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
    b = await running(b_cfg, restart=True)  # bgpd run --graceful-restart
    assert b.rde.restarting and b.command("show_summary")["graceful_restart"]["restarting"]
    assert b.rde.gr.ours.reason == "requested (--graceful-restart)"
    assert await until(lambda: not b.rde.restarting, timeout=8)  # well before the 10 s timer
    assert await until(lambda: paths(a, "10.92.0.0/24"))
    assert b.command("show_summary")["graceful_restart"]["waiting_for_eor"] == []


# --- which start is a restart ------------------------------------------------------------


DEAD = "127.0.0.99"  # a configured neighbor nobody answers for


def node(port, deferral=30, gr=None, **top):
    """A (127.0.0.91, network 10.91.0.0/24) with two neighbors: B (127.0.0.92) and DEAD."""
    data = {
        "router_id": "10.0.0.91",
        "asn": 65091,
        "listen": [{"address": "127.0.0.91", "port": port}],
        "control_socket": tempfile.mktemp(prefix="bgpd-gr-", suffix=".sock"),
        "networks": ["10.91.0.0/24"],
        "graceful_restart": {**GR, "selection_deferral": deferral} if gr is None else gr,
        "neighbors": [
            {"address": "127.0.0.92", "asn": 65092, "port": port, "connect_retry": 1},
            {"address": DEAD, "asn": 65099, "port": port, "connect_retry": 1},
        ],
        **top,
    }
    return parse(data)


def peer_b(port):
    """B: graceful restart on (so that it records A's capability), A its only neighbor."""
    return cfg("10.0.0.92", 65092, "127.0.0.92", port, "127.0.0.91", 65091, [], GR)


def r_bit(b) -> bool:
    """The Restart bit of A's OPEN, as B received it."""
    return b.neighbors["127.0.0.91"].peer.helper.cap.restarting


def marker(path) -> dict:
    with open(path) as f:
        return json.load(f)


async def test_cold_start_with_a_dead_neighbor_announces_at_once(running):
    """The problem this solves: graceful restart on, a first start (or after a reboot) and
    one neighbor down must not keep the node's routes back for selection_deferral."""
    port = next(_ports)
    loop = asyncio.get_running_loop()
    b = await running(peer_b(port))
    t0 = loop.time()
    a = await running(node(port, deferral=30))
    assert a.rde.gr.ours.start == "cold" and not a.rde.restarting
    assert "no marker of a graceful stop" in a.rde.gr.ours.reason
    assert await until(lambda: paths(b, "10.91.0.0/24"), timeout=5)
    assert loop.time() - t0 < 5, "announced at once, not after the 30 s deferral"
    assert r_bit(b) is False, "no Restart bit in the OPEN of a cold start"
    gr = a.command("show_summary")["graceful_restart"]
    assert gr["start"] == "cold" and not gr["restarting"] and gr["waiting_for_eor"] == []
    assert a.command("health")["ready_reason"].startswith("not ready: 127.0.0.99 not Established")


async def test_graceful_stop_then_start_is_a_restart(running):
    """SIGTERM (Speaker.stop) leaves the marker; the next start within restart_time takes it:
    R bit, routes deferred until the deferral timer (the dead neighbor sends no End-of-RIB),
    marker removed."""
    port = next(_ports)
    loop = asyncio.get_running_loop()
    b = await running(peer_b(port))
    a_cfg = node(port, deferral=3)
    a = await running(a_cfg)
    path = restart_marker_path(a_cfg)
    assert path == a_cfg.control_socket[: -len(".sock")] + ".restart"
    assert await until(
        lambda: paths(b, "10.91.0.0/24") and b.neighbors["127.0.0.91"].peer.helper.cap
    )
    assert not os.path.exists(path)
    await stop_graceful(a)
    m = marker(path)
    assert m["pid"] == os.getpid() and m["restart_time"] == GR["restart_time"]
    assert await until(lambda: paths(b, "10.91.0.0/24")[0]["stale"])  # b helps

    t0 = loop.time()
    a2 = await running(a_cfg)
    assert not os.path.exists(path), "the marker is consumed"
    assert a2.rde.restarting and a2.rde.gr.ours.start == "restart"
    assert a2.rde.gr.ours.reason.startswith("graceful stop ")
    assert await until(lambda: b.neighbors["127.0.0.91"].session.established)
    assert r_bit(b) is True
    assert await until(lambda: a2.rde.gr.ours.waiting == {DEAD}), (
        a2.rde.gr.ours.waiting
    )  # b's End-of-RIB came
    health = a2.command("health")
    assert not health["ready"]
    assert health["ready_reason"].startswith(
        "not ready: graceful restart in progress: ours (graceful stop "
    )
    assert "waiting for End-of-RIB from 127.0.0.99" in health["ready_reason"]
    assert paths(b, "10.91.0.0/24")[0]["stale"], "nothing sent before the deferral ends"
    assert await until(lambda: not paths(b, "10.91.0.0/24")[0]["stale"], timeout=8)
    assert loop.time() - t0 >= 2.9
    assert not a2.rde.restarting and a2.rde.gr.ours.start == "restart"


async def test_marker_older_than_restart_time_is_a_cold_start(running):
    """A graceful stop longer ago than restart_time: the neighbors have dropped our routes,
    there is nothing to restart gracefully."""
    port = next(_ports)
    a_cfg = node(port, gr={**GR, "restart_time": 5})
    path = restart_marker_path(a_cfg)
    write_restart_marker(path, 5)
    m = marker(path)
    m["stopped_at"] -= 6
    if m["boottime"] is not None:
        m["boottime"] -= 6
    with open(path, "w") as f:
        json.dump(m, f)
    a = await running(a_cfg)
    assert a.rde.gr.ours.start == "cold" and not a.rde.restarting
    assert "more than restart_time (5 s)" in a.rde.gr.ours.reason, a.rde.gr.ours.reason
    assert not os.path.exists(path), "removed all the same"


async def test_marker_within_restart_time_is_a_restart(running):
    port = next(_ports)
    a_cfg = node(port, gr={**GR, "restart_time": 5})
    path = restart_marker_path(a_cfg)
    write_restart_marker(path, 5)
    a = await running(a_cfg)
    assert a.rde.gr.ours.start == "restart" and a.rde.restarting
    assert a.command("show_summary")["graceful_restart"]["start_reason"].startswith(
        "graceful stop "
    )


@pytest.mark.parametrize(
    "content, why",
    [
        ("{not json", "Expecting property name"),
        ('"a string"', "not a JSON object"),
        ('{"pid": 1}', "no stopped_at time"),
    ],
)
async def test_unreadable_marker_is_ignored_and_removed(running, content, why):
    port = next(_ports)
    a_cfg = node(port)
    path = restart_marker_path(a_cfg)
    with open(path, "w") as f:
        f.write(content)
    a = await running(a_cfg)
    assert a.rde.gr.ours.start == "cold" and not os.path.exists(path)


async def test_marker_of_another_boot_is_a_cold_start(running):
    port = next(_ports)
    a_cfg = node(port)
    path = restart_marker_path(a_cfg)
    write_restart_marker(path, 120)
    m = marker(path)
    if m["boot_id"] is None:
        pytest.skip("no /proc/sys/kernel/random/boot_id here")
    m["boot_id"] = "00000000-0000-0000-0000-000000000000"
    with open(path, "w") as f:
        json.dump(m, f)
    a = await running(a_cfg)
    assert a.rde.gr.ours.start == "cold"
    assert a.rde.gr.ours.reason == "the host rebooted since the graceful stop"


async def test_restart_flag_is_a_restart_without_a_marker(running):
    """``bgpd run -R`` (as ``bird -R``, ``gobgpd -r``): the operator says forwarding state
    was kept; the R bit goes out."""
    port = next(_ports)
    b = await running(peer_b(port))
    a = await running(node(port, deferral=2), restart=True)
    assert a.rde.restarting and a.rde.gr.ours.reason == "requested (--graceful-restart)"
    assert await until(lambda: b.neighbors["127.0.0.91"].session.established)
    assert r_bit(b) is True
    assert await until(lambda: paths(b, "10.91.0.0/24"), timeout=6)  # after the deferral


async def test_restart_flag_without_graceful_restart_in_the_config(running):
    port = next(_ports)
    a = await running(node(port, gr=False), restart=True)
    assert a.rde.gr.ours.start is None and not a.rde.restarting
    assert a.command("show_summary")["graceful_restart"]["enabled"] is False


async def test_stop_without_graceful_restart_leaves_no_marker(running):
    port = next(_ports)
    a_cfg = node(port, gr=False)
    a = await running(a_cfg)
    await stop_graceful(a)
    assert not os.path.exists(restart_marker_path(a_cfg))


async def test_failed_start_puts_the_marker_back():
    """A start that fails (its listen address taken) after taking the marker puts it back,
    unchanged, so that the next attempt is still a restart (as the unit's Restart= does)."""
    port = next(_ports)
    a_cfg = node(port)
    path = restart_marker_path(a_cfg)
    write_restart_marker(path, 120)
    before = marker(path)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.91", port))
        taken.listen()
        a = Speaker(a_cfg, loop=asyncio.get_running_loop())
        try:
            with pytest.raises(OSError):
                await a.start()
            assert not os.path.exists(path)
            await a.stop(marker=False)  # what the daemon does when start fails
        finally:
            a.stopping.set()
    try:
        assert marker(path) == before
    finally:
        os.unlink(path)


def test_marker_path_is_configurable_and_follows_the_control_socket():
    base = {"router_id": "10.0.0.1", "asn": 65001}
    assert restart_marker_path(parse(base)) == "/run/bgpd/bgpd.restart"
    c = parse({**base, "control_socket": "/run/x/ctl", "graceful_restart": True})
    assert restart_marker_path(c) == "/run/x/ctl.restart"
    c = parse({**base, "graceful_restart": {"restart_marker": "/var/lib/bgpd/stopped"}})
    assert restart_marker_path(c) == "/var/lib/bgpd/stopped"


async def test_each_neighbor_is_told_its_own_restart_time(running):
    """A neighbor's graceful_restart_time is the restart time of the capability it gets (the
    others get graceful_restart.restart_time); the marker of a graceful stop carries the
    longest time advertised, which is how long a neighbor may still hold our routes."""
    port = next(_ports)
    b = await running(peer_b(port))
    a_cfg = node(port)
    a_cfg = dataclasses.replace(
        a_cfg,
        neighbors=(
            dataclasses.replace(a_cfg.neighbors[0], graceful_restart_time=77),
            a_cfg.neighbors[1],
        ),
    )
    a = await running(a_cfg)
    assert await until(lambda: b.neighbors["127.0.0.91"].peer.helper.cap)
    assert b.neighbors["127.0.0.91"].peer.helper.cap.restart_time == 77
    ours = {
        n.address: n.session.settings.graceful_restart.restart_time for n in a.neighbors.values()
    }
    assert ours == {"127.0.0.92": 77, DEAD: GR["restart_time"]}
    await stop_graceful(a)
    path = restart_marker_path(a_cfg)
    assert marker(path)["restart_time"] == 77
    os.unlink(path)


async def test_a_stop_that_is_not_graceful_sends_cease_and_leaves_no_marker(running):
    """``Speaker.stop(graceful=False)`` (bgpd-bird's SIGTERM, as BIRD's shutdown): Cease 6/2
    to every neighbor, which drops our routes at once instead of keeping them as stale,
    and no restart marker for the next start. Without the N bit (RFC 8538), as the BIRD
    front-end advertises GR: with it on both sides a Cease would be graceful too."""
    port = next(_ports)
    b = await running(peer_b(port))
    a_cfg = node(port, gr={**GR, "notification": False})
    a = await running(a_cfg)
    assert await until(lambda: paths(b, "10.91.0.0/24"))
    assert b.neighbors["127.0.0.91"].peer.helper.cap.notification is False
    a.stopping.set()
    await a.stop("", graceful=False)
    assert await until(lambda: not paths(b, "10.91.0.0/24"))
    last = b.neighbors["127.0.0.91"].session.last_error
    assert "6/2" in last or "Administrative Shutdown" in last, last
    assert b.neighbors["127.0.0.91"].peer.helper.state is None  # not helping: no restart
    assert not os.path.exists(restart_marker_path(a_cfg))

"""Operating bgpd: dynamic neighbors and live reload, over real TCP on loopback addresses.

The peers are bare sessions (bgpd.session.PeerSession with a recording handler) in the same
event loop, so that hundreds of them cost little.
"""

import asyncio
import itertools
import os
import tempfile
from pathlib import Path

import pytest
import yaml

from bgpd.config import parse
from bgpd.fsm import SessionSettings
from bgpd.session.peer import PeerSession, Transport
from bgpd.speaker import Speaker

_ports = itertools.count(21179 + (os.getpid() % 97) * 100)


class Recorder:
    """A session handler that only counts."""

    def __init__(self):
        self.up = 0
        self.updates = []

    def session_established(self, session):
        self.up += 1

    def session_down(self, session, event):
        pass

    def updates_received(self, session, updates):
        self.updates.extend(updates)

    def route_refresh_received(self, session, rr):
        pass

    def session_writable(self, session):
        pass


def client(loop, local, remote, port, asn=64512, hold=90, router_id=None):
    settings = SessionSettings(
        local_as=asn,
        peer_as=64512,
        router_id=router_id or local.replace("127.", "10."),
        hold_time=hold,
        connect_retry=1,
    )
    handler = Recorder()
    s = PeerSession(settings, Transport(remote, port, local_address=local), handler, loop)
    s.handler_rec = handler
    return s


async def until(pred, timeout=20.0, step=0.05):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


@pytest.fixture
def sock_path():
    with tempfile.TemporaryDirectory() as d:
        yield str(Path(d) / "bgpd.sock")


async def test_dynamic_neighbors_limit(sock_path):
    loop = asyncio.get_running_loop()
    port = next(_ports)
    server_addr = "127.0.0.61"
    cfg = parse(
        {
            "router_id": "10.0.0.61",
            "asn": 64512,
            "listen": [{"address": server_addr, "port": port}],
            "control_socket": sock_path,
            "networks": ["10.61.0.0/24"],
            "templates": {"nodes": {"asn": "internal", "rr_client": True, "hold_time": 90}},
            "dynamic_neighbors": [{"range": "127.0.1.0/24", "template": "nodes", "limit": 200}],
        }
    )
    server = Speaker(cfg, loop=loop)
    await server.start()
    clients = [client(loop, f"127.0.1.{i}", server_addr, port) for i in range(1, 202)]
    try:
        for c in clients[:200]:
            c.start()
        assert await until(lambda: sum(c.established for c in clients[:200]) == 200, timeout=60)
        assert len(server.neighbors) == 200
        info = server.command("show_neighbors", address="127.0.1.7")["neighbors"][0]
        assert info["dynamic_from"] == "127.0.1.0/24"
        assert info["state"] == "Established"
        # Every node got the server's network.
        assert await until(lambda: all(c.handler_rec.updates for c in clients[:200]))
        # The template makes them reflection clients: the router ID serves as cluster ID.
        assert server.rde.identity.cluster_id == bytes([10, 0, 0, 61])
        # The 201st is refused before any state exists for it.
        extra = clients[200]
        extra.start()
        assert await until(lambda: server.neighbors.refused > 0, timeout=10)
        await asyncio.sleep(0.5)
        assert not extra.established
        assert "127.0.1.201" not in server.neighbors
        assert len(server.neighbors) == 200
        # A dynamic neighbor that goes away is removed, which makes room for the waiting one.
        clients[0].stop(message="bye")
        assert await until(lambda: "127.0.1.1" not in server.neighbors)
        assert await until(lambda: extra.established, timeout=15)
    finally:
        for c in clients:
            c.close()
        await server.stop()


def _write(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data))


async def test_reload_touches_only_changed_neighbors(tmp_path):
    loop = asyncio.get_running_loop()
    port = next(_ports)
    server_addr = "127.0.0.71"
    peers = ["127.0.0.72", "127.0.0.73", "127.0.0.74", "127.0.0.75"]
    base = {
        "router_id": "10.0.0.71",
        "asn": 64512,
        "listen": [{"address": server_addr, "port": port}],
        "control_socket": str(tmp_path / "bgpd.sock"),
        "networks": ["10.71.0.0/24"],
        "neighbors": [
            {"address": a, "asn": 64512, "port": port, "passive": True, "description": "x"}
            for a in peers[:3]
        ],
    }
    cfg_path = tmp_path / "bgpd.yaml"
    _write(cfg_path, base)
    from bgpd.config import load

    server = Speaker(load(str(cfg_path)), str(cfg_path), loop=loop)
    await server.start()
    clients = {a: client(loop, a, server_addr, port) for a in peers}
    try:
        for a in peers[:3]:
            clients[a].start()
        assert await until(lambda: all(clients[a].established for a in peers[:3]))
        before = {a: server.neighbors[a].session for a in peers[:3]}
        est = {a: before[a].fsm.stats.established_at for a in peers[:3]}

        # An invalid file: nothing changes, the error names the file, key and reason.
        bad = dict(base, neighbors=[dict(base["neighbors"][0], hold_time=1)])
        _write(cfg_path, bad)
        result = server.reload()
        assert not result["ok"]
        assert str(cfg_path) in result["error"] and "neighbors[0].hold_time" in result["error"]
        assert server.neighbors[peers[0]].session is before[peers[0]]
        assert server.reloads["error"] == 1

        # Remove .72, change .73's hold time (a session key), change .74's description only,
        # add .75.
        new = dict(base)
        new["neighbors"] = [
            {"address": peers[1], "asn": 64512, "port": port, "passive": True, "hold_time": 60},
            {"address": peers[2], "asn": 64512, "port": port, "passive": True, "description": "y"},
            {"address": peers[3], "asn": 64512, "port": port, "passive": True},
        ]
        _write(cfg_path, new)
        result = server.reload()
        assert result["ok"], result
        assert result["removed"] == [peers[0]]
        assert result["reset"] == [peers[1]]
        assert result["updated"] == [peers[2]]
        assert result["added"] == [peers[3]]
        assert peers[0] not in server.neighbors
        # .74 kept its session and its uptime; only its description changed.
        n74 = server.neighbors[peers[2]]
        assert n74.session is before[peers[2]]
        assert n74.session.fsm.stats.established_at == est[peers[2]]
        assert n74.session.established
        assert (
            server.command("show_neighbors", address=peers[2])["neighbors"][0]["description"] == "y"
        )
        # .72 was told it is deconfigured; .73 comes back; .75 comes up.
        assert await until(lambda: not clients[peers[0]].established)
        assert "Peer De-configured" in (clients[peers[0]].last_error or "")
        clients[peers[3]].start()
        assert await until(
            lambda: (
                server.neighbors[peers[1]].session.established
                and server.neighbors[peers[3]].session.established
            ),
            timeout=20,
        )
        assert server.neighbors[peers[1]].session.fsm.negotiated.hold_time == 60
        # Networks change without a reset: .74 learns the new prefix, session untouched.
        _write(cfg_path, dict(new, networks=["10.71.0.0/24", "10.71.1.0/24"]))
        assert server.reload()["ok"]
        from bgpd.wire import prefix as pfx

        want = pfx.from_str("10.71.1.0/24")
        rec = clients[peers[2]].handler_rec
        assert await until(lambda: any(want in u.nlri for u in rec.updates))
        assert server.neighbors[peers[2]].session is before[peers[2]]
        assert server.neighbors[peers[2]].session.fsm.stats.established_at == est[peers[2]]
    finally:
        for c in clients.values():
            c.close()
        await server.stop()


async def test_reload_applies_static_host_routes_and_says_what_needs_a_restart(tmp_path):
    """Issue 19: removing a static host route and reloading withdrew nothing ("ok", the block
    stayed announced). Static routes are applied at once, as BIRD's configure does; what a
    reload cannot apply is named in the reply, and the rest of the file still is."""
    loop = asyncio.get_running_loop()
    port = next(_ports)
    server_addr, peer = "127.0.0.76", "127.0.0.77"
    a, b, c = "10.76.1.0/26", "10.76.2.0/26", "10.76.3.0/26"
    base = {
        "router_id": "10.0.0.76",
        "asn": 64512,
        "listen": [{"address": server_addr, "port": port}],
        "control_socket": str(tmp_path / "bgpd.sock"),
        "neighbors": [{"address": peer, "asn": 64512, "port": port, "passive": True}],
        "host_routes": {
            "static": [{"prefix": a, "blackhole": True}, {"prefix": b, "blackhole": True}]
        },
    }
    cfg_path = tmp_path / "bgpd.yaml"
    _write(cfg_path, base)
    from bgpd.config import load
    from bgpd.wire import prefix as pfx

    server = Speaker(load(str(cfg_path)), str(cfg_path), loop=loop)
    await server.start()
    cl = client(loop, peer, server_addr, port)
    rec = cl.handler_rec
    held: set = set()

    def view():
        for u in rec.updates[len(view.seen) :]:
            held.difference_update(u.withdrawn)
            held.update(u.nlri)
        view.seen = list(rec.updates)
        return {pfx.to_str(p, 1) for p in held}

    view.seen = []
    try:
        cl.start()
        assert await until(lambda: view() == {a, b})
        est = server.neighbors[peer].session.fsm.stats.established_at
        new = dict(
            base,
            host_routes={
                "static": [{"prefix": a, "blackhole": True}, {"prefix": c, "blackhole": True}]
            },
            control_socket=str(tmp_path / "other.sock"),
        )
        _write(cfg_path, new)
        result = server.reload()
        assert result["ok"], result
        assert result["restart_needed"] == ["control_socket: the control socket is bound at start"]
        assert "needs a restart" in result["message"]
        assert await until(lambda: view() == {a, c}), view()
        assert server.neighbors[peer].session.fsm.stats.established_at == est  # no reset
        routes = {r["prefix"] for r in server.command("show_routes")["routes"]}
        assert routes == {a, c}
    finally:
        cl.close()
        await server.stop()

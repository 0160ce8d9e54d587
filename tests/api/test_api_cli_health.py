"""`bgpd health` (click's CliRunner) against a real Speaker: its own ControlServer and its
dispatch, run by an event loop in a thread; and its metrics listener over real HTTP."""

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from bgpd.cli.main import main
from bgpd.config import parse
from bgpd.speaker import Speaker

PEER = "127.0.0.151"  # passive and never connecting: stays in Active


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def daemon(tmp_path):
    """A started Speaker with one passive neighbor, a control socket and a metrics listener."""
    sock = str(tmp_path / "bgpd.sock")
    port = free_port()
    cfg = parse(
        {
            "router_id": "192.0.2.10",
            "asn": 64512,
            "control_socket": sock,
            "metrics": {"address": "127.0.0.1", "port": port},
            "neighbors": [{"address": PEER, "asn": 65001, "passive": True}],
        }
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(coro_or_fn):
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, loop).result(5)

        async def call():
            return coro_or_fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(5)

    speaker = on_loop(_make(cfg, loop))
    speaker.on_loop = on_loop
    speaker.sock = sock
    speaker.http = f"http://127.0.0.1:{port}"
    try:
        yield speaker
    finally:
        on_loop(speaker.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _make(cfg, loop):
    s = Speaker(cfg, loop=loop)
    await s.start()
    return s


def health(speaker, *args):
    return CliRunner().invoke(main, ["health", *args, "-s", speaker.sock])


def http(speaker, path):
    try:
        with urllib.request.urlopen(speaker.http + path, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    raise AssertionError(f"no {prefix!r} in the scrape")


def test_health_over_time(daemon):
    # Just started, the neighbor is not Established: live, not ready.
    r = health(daemon, "--live")
    assert (r.exit_code, r.stdout) == (0, "live\n")
    r = health(daemon)  # --ready is the default
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(f"not ready: {PEER} not Established yet (0 of 1 up")
    assert health(daemon, "--ready").exit_code == 1
    assert http(daemon, "/livez") == (200, "live\n")
    status, body = http(daemon, "/readyz")
    assert status == 503 and body.startswith("not ready: ")

    # Past the first 30 seconds, still nothing Established: not ready either.
    daemon.on_loop(lambda: setattr(daemon, "started", daemon.started - 31))
    r = health(daemon, "--ready")
    assert r.exit_code == 1
    assert r.stderr == f"not ready: no neighbor Established ({PEER} down)\n"

    # The only neighbor shut down administratively: nothing to wait for.
    assert (
        CliRunner().invoke(main, ["neighbor", "shutdown", PEER, "-s", daemon.sock]).exit_code == 0
    )
    r = health(daemon, "--ready")
    assert (r.exit_code, r.stdout) == (0, "ready: no neighbors to wait for\n")
    assert http(daemon, "/readyz") == (200, "ready: no neighbors to wait for\n")

    status, text = http(daemon, "/metrics")
    assert status == 200
    who = {"neighbor": PEER, "asn": "65001"}
    assert metric(text, "bgpd_neighbor_state", **who) == 1  # Idle
    assert metric(text, "bgpd_neighbor_admin_down", **who) == 1
    assert metric(text, "bgpd_ready") == 1
    assert metric(text, "bgpd_reloads_total", result="ok") == 0
    assert "bgpd_fib_routes" not in text  # no FIB writer in this speaker

    # Stopping: neither live nor ready.
    daemon.on_loop(daemon.stopping.set)
    r = health(daemon, "--live")
    assert (r.exit_code, r.stderr) == (1, "not live: bgpd is stopping\n")
    assert http(daemon, "/livez") == (503, "not live: bgpd is stopping\n")


def test_health_json(daemon):
    r = health(daemon, "--live", "--json")
    assert r.exit_code == 0
    result = json.loads(r.stdout)
    assert result["live"] is True and result["ready"] is False
    assert set(result) == {"live", "ready", "reason", "live_reason", "ready_reason"}
    r = health(daemon, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout) == {**result, "reason": result["reason"]}


def test_health_without_a_daemon(tmp_path):
    r = CliRunner().invoke(main, ["health", "--live", "-s", str(tmp_path / "none.sock")])
    assert r.exit_code == 1
    assert r.stderr.startswith("bgpd is not running")

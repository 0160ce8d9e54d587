"""The route API's control commands and the health-checked services in a running daemon
(in-process, on the event loop of the test): two bgpd speakers over real TCP on loopback
addresses of this worker's range, the second one the peer whose view is checked.

Every refused request must leave everything as it was: the route list, the Loc-RIB and what
the peer has. Checks run against real listeners (an asyncio TCP/HTTP server in the test) and
real subprocesses (``sh -c``).
"""

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from bgpd.api.server import CommandError
from bgpd.config import parse
from bgpd.speaker import Speaker

# 127.0.17.x: worker gw16's range (tests/interop/conftest.py), above what its pool hands out
_hosts = itertools.count(200)
_ports = itertools.count(21179 + (os.getpid() % 89) * 50)


def _addr() -> str:
    return f"127.0.17.{next(_hosts)}"


async def until(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout}s: {pred}")


def state_of(p) -> tuple:
    """Everything a refused request must leave as it was: the route list (less the ages),
    the Loc-RIB, and the peer's view."""
    listing = p.a.command("route_list")
    for r in listing["routes"]:
        del r["age"]
    return listing, routes_of(p.a), p.peer_view()


def routes_of(sp, family="ipv4") -> dict:
    """``{prefix: [paths]}`` of ``show_routes``."""
    return {r["prefix"]: r["paths"] for r in sp.command("show_routes", family=family)["routes"]}


class Pair:
    """Speaker ``a`` (the one with the route API, AS 65000) and its eBGP peer ``b`` (AS
    65001); ``a``'s config is written to a file so that it can be reloaded."""

    def __init__(self, tmp: Path, **top) -> None:
        self.tmp = tmp
        self.port = next(_ports)
        self.a_addr, self.b_addr = _addr(), _addr()
        self.top = top
        self.a = self.b = None

    def a_config(self, **top) -> dict:
        return {
            "router_id": "10.0.0.1",
            "asn": 65000,
            "listen": [{"address": self.a_addr, "port": self.port}],
            "control_socket": str(self.tmp / "a.sock"),
            "neighbors": [
                {
                    "address": self.b_addr,
                    "asn": 65001,
                    "port": self.port,
                    "connect_retry": 1,
                    # the IPv4 loopback session carries IPv6 routes with this next hop
                    "next_hop_ipv6": "2001:db8::a",
                }
            ],
            **{**self.top, **top},
        }

    def write(self, **top) -> None:
        (self.tmp / "a.yaml").write_text(yaml.safe_dump(self.a_config(**top)))

    async def start(self) -> "Pair":
        self.write()
        from bgpd.config import load

        self.a = Speaker(load(str(self.tmp / "a.yaml")), str(self.tmp / "a.yaml"))
        b_cfg = parse(
            {
                "router_id": "10.0.0.2",
                "asn": 65001,
                "listen": [{"address": self.b_addr, "port": self.port}],
                "control_socket": str(self.tmp / "b.sock"),
                "neighbors": [
                    {"address": self.a_addr, "asn": 65000, "port": self.port, "connect_retry": 1}
                ],
            }
        )
        self.b = Speaker(b_cfg)
        await self.a.start()
        await self.b.start()
        await until(lambda: all(n.session.established for n in self.a.neighbors.values()))
        return self

    async def stop(self) -> None:
        for s in (self.a, self.b):
            if s is not None:
                await s.stop()

    def peer_view(self, family="ipv4") -> dict:
        return routes_of(self.b, family)


@pytest.fixture
async def pair():
    made = []

    async def make(**top):
        p = Pair(Path(tempfile.mkdtemp(prefix="ra-daemon-")), **top)
        made.append(p)
        return await p.start()

    yield make
    for p in made:
        await p.stop()
        shutil.rmtree(p.tmp, ignore_errors=True)


# --- the route API -----------------------------------------------------------------------------


async def test_add_modify_delete_with_owners(pair):
    p = await pair()
    a = p.a
    r = a.command(
        "route_add",
        prefix="198.51.100.0/24",
        communities=["65000:1"],
        med=5,
        owner="metallb",
    )
    assert r["action"] == "added" and r["owner"] == "metallb" and r["lease"] is None
    paths = await until(lambda: p.peer_view().get("198.51.100.0/24"))
    assert paths[0]["communities"] == ["65000:1"] and paths[0]["med"] == 5
    assert paths[0]["as_path"] == "65000"
    r = a.command("route_add", prefix="198.51.100.0/24", med=6, owner="metallb")
    assert r["action"] == "modified"
    await until(lambda: p.peer_view()["198.51.100.0/24"][0]["med"] == 6)
    assert p.peer_view()["198.51.100.0/24"][0]["communities"] == []
    a.command("route_add", prefix="198.51.100.0/24", owner="kube-vip", as_path_prepend=2)
    listed = a.command("route_list")
    assert [(x["owner"], x["best"]) for x in listed["routes"]] == [
        ("kube-vip", False),
        ("metallb", True),
    ]
    assert a.command("route_list", owner="kube-vip")["routes"][0]["as_path_prepend"] == 2
    a.command("route_del", prefix="198.51.100.0/24", owner="metallb")
    await until(lambda: p.peer_view()["198.51.100.0/24"][0]["as_path"] == "65000 65000 65000")
    a.command("route_del", prefix="198.51.100.0/24", owner="kube-vip")
    await until(lambda: "198.51.100.0/24" not in p.peer_view())
    assert a.command("route_list") == {"routes": [], "owners": [], "default_owner": "default"}


async def test_ipv6_route(pair):
    p = await pair()
    p.a.command("route_add", prefix="2001:db8:5::/48", next_hop="2001:db8::5")
    paths = await until(lambda: p.peer_view("ipv6").get("2001:db8:5::/48"))
    assert paths[0]["from"] == p.a_addr
    assert paths[0]["next_hop"] == "2001:db8::a"  # eBGP: ours, from next_hop_ipv6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"prefix": "198.51.100.1/24"}, "has host bits set (did you mean 198.51.100.0/24?)"),
        ({"prefix": "198.51.100.0/24", "communities": ["65000:abc"]}, "'abc' is not a number"),
        ({"prefix": "198.51.100.0/24", "communities": "no-exprt"}, "is not a community"),
        ({"prefix": "198.51.100.0/24", "large_communities": ["1:2"]}, "not a large community"),
        ({"prefix": "198.51.100.0/24", "lease": "soon"}, "lease: 'soon' is not a duration"),
        ({"prefix": "198.51.100.0/24", "lease": "0s"}, "lease '0s' is out of range"),
        ({"prefix": "198.51.100.0/24", "lease": True}, "lease: expected a duration"),
        ({"prefix": "198.51.100.0/24", "next_hop": "2001:db8::1"}, "is not an IPv4 address"),
        ({"prefix": "198.51.100.0/24", "owner": "has space"}, "is not a valid name"),
        ({"prefix": "198.51.100.0/24", "local_pref": "high"}, "local_pref: expected an integer"),
        ({"prefix": "198.51.100.0/24", "colour": "blue"}, "unexpected keyword argument 'colour'"),
    ],
)
async def test_refused_adds_change_nothing(pair, args, message):
    p = await pair()
    a = p.a
    a.command("route_add", prefix="198.51.100.0/24", med=1, owner="default")
    await until(lambda: p.peer_view().get("198.51.100.0/24"))
    before = state_of(p)
    with pytest.raises(CommandError) as e:
        a.command("route_add", **args)
    assert message in str(e.value)
    await asyncio.sleep(0.2)
    assert state_of(p) == before


async def test_refused_deletes_and_lists_change_nothing(pair):
    p = await pair()
    a = p.a
    a.command("route_add", prefix="198.51.100.0/24", owner="ctl-a")
    await until(lambda: p.peer_view().get("198.51.100.0/24"))
    before = state_of(p)
    cases = [
        (
            {"prefix": "198.51.100.0/24", "owner": "ctl-b"},
            "no owner 'ctl-b' has routes (owners with routes: ctl-a)",
        ),
        (
            {"prefix": "198.51.100.0/24"},
            "no owner 'default' has routes",
        ),
        (
            {"prefix": "203.0.113.0/24", "owner": "ctl-a"},
            "owner 'ctl-a' has no route 203.0.113.0/24",
        ),
        ({"prefix": "198.51.100.9/24", "owner": "ctl-a"}, "has host bits set"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as e:
            a.command("route_del", **args)
        assert message in str(e.value), (args, str(e.value))
    with pytest.raises(CommandError, match="no owner 'nobody' has routes"):
        a.command("route_list", owner="nobody")
    await asyncio.sleep(0.2)
    assert state_of(p) == before


async def test_lease_expiry_and_renewal(pair):
    p = await pair()
    a = p.a
    a.command("route_add", prefix="198.51.100.0/24", lease="1.5s", owner="ctl")
    a.command("route_add", prefix="203.0.113.0/24", lease=1.5, owner="ctl")
    await until(lambda: "203.0.113.0/24" in p.peer_view())
    for _ in range(3):  # renew one of them past its first deadline
        await asyncio.sleep(0.6)
        assert (
            a.command("route_add", prefix="198.51.100.0/24", lease="1.5s", owner="ctl")["action"]
            == "renewed"
        )
    t0 = time.monotonic()
    await until(lambda: "203.0.113.0/24" not in p.peer_view(), timeout=5)
    assert "198.51.100.0/24" in p.peer_view()
    await until(lambda: "198.51.100.0/24" not in p.peer_view(), timeout=5)
    assert time.monotonic() - t0 > 0.5  # held by its renewals, then gone
    assert a.command("route_list")["owners"] == []


async def test_reload_keeps_route_api_routes(pair):
    p = await pair()
    a = p.a
    a.command("route_add", prefix="198.51.100.0/24", owner="ctl", lease="1h")
    a.command("route_add", prefix="203.0.113.0/24", owner="ctl")
    await until(lambda: "203.0.113.0/24" in p.peer_view())
    before = a.command("route_list")["routes"]
    p.write(networks=["192.0.2.0/24"])  # a change that the reload applies
    result = a.command("reload")
    assert result["ok"]
    await until(lambda: "192.0.2.0/24" in p.peer_view())
    after = a.command("route_list")["routes"]
    assert [(r["prefix"], r["owner"], r["lease"]) for r in after] == [
        (r["prefix"], r["owner"], r["lease"]) for r in before
    ]
    assert {"198.51.100.0/24", "203.0.113.0/24"} <= set(p.peer_view())
    # a new AS re-establishes every session, and the routes stay
    p.write(asn=65002, networks=["192.0.2.0/24"])
    assert a.command("reload")["ok"]
    assert {r["prefix"] for r in a.command("route_list")["routes"]} == {
        "198.51.100.0/24",
        "203.0.113.0/24",
    }
    paths = routes_of(a)["198.51.100.0/24"]
    assert paths[0]["source"] == "api"


# --- services ----------------------------------------------------------------------------------


def _processes_with(text: str) -> list:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


class Listener:
    """A TCP (and minimal HTTP) server the test opens and closes: the checked service."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = next(_ports)
        self.server = None
        self.status = 200
        self.hits = 0

    async def _serve(self, reader, writer) -> None:
        self.hits += 1
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
            if line.startswith(b"GET"):
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                writer.write(f"HTTP/1.0 {self.status} X\r\n\r\n".encode())
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        writer.close()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def svc_view(sp, name: str) -> dict:
    (s,) = [x for x in sp.command("show_services")["services"] if x["name"] == name]
    return s


async def test_tcp_service_announced_and_withdrawn(pair):
    lst = Listener("127.0.17.199")
    await lst.open()
    p = await pair(
        services=[
            {
                "name": "web",
                "prefix": "192.0.2.80/32",
                "tcp": f"{lst.host}:{lst.port}",
                "interval": 0.2,
                "rise": 2,
                "fall": 2,
                "communities": ["65000:80"],
            }
        ]
    )
    paths = await until(lambda: p.peer_view().get("192.0.2.80/32"))
    assert paths[0]["communities"] == ["65000:80"]
    assert routes_of(p.a)["192.0.2.80/32"][0]["source"] == "service"
    s = svc_view(p.a, "web")
    assert s["state"] == "up" and s["routes"] == "announced" and s["last"]["ok"]
    await lst.close()
    t0 = time.monotonic()
    await until(lambda: "192.0.2.80/32" not in p.peer_view(), timeout=5)
    took = time.monotonic() - t0
    assert 0.15 < took < 2 * 0.2 + 0.6, took  # two failures in a row at 0.2 s intervals
    s = svc_view(p.a, "web")
    assert s["state"] == "down" and s["routes"] == "withdrawn" and s["failures"] >= 2
    await lst.open()
    await until(lambda: "192.0.2.80/32" in p.peer_view(), timeout=5)
    await lst.close()


async def test_http_service_on_fail_keeps_it_announced_less_preferred(pair):
    lst = Listener("127.0.17.198")
    await lst.open()
    p = await pair(
        services=[
            {
                "name": "api",
                "prefix": ["192.0.2.81/32", "2001:db8:81::/64"],
                "http": f"http://{lst.host}:{lst.port}/healthz",
                "interval": 0.2,
                "rise": 1,
                "fall": 1,
                "med": 10,
                "on_fail": {"med": 500, "communities": ["65000:666"]},
            }
        ]
    )
    await until(lambda: p.peer_view().get("192.0.2.81/32"))
    assert p.peer_view()["192.0.2.81/32"][0]["med"] == 10  # a MED we set goes to eBGP
    lst.status = 503
    await until(lambda: svc_view(p.a, "api")["state"] == "down")
    a_paths = routes_of(p.a)["192.0.2.81/32"]
    assert a_paths[0]["med"] == 500 and a_paths[0]["communities"] == ["65000:666"]
    await until(lambda: p.peer_view()["192.0.2.81/32"][0]["communities"] == ["65000:666"])
    assert "2001:db8:81::/64" in p.peer_view("ipv6")
    assert svc_view(p.a, "api")["last"]["detail"] == "HTTP 503"
    lst.status = 200
    await until(lambda: routes_of(p.a)["192.0.2.81/32"][0]["med"] == 10)
    await lst.close()


async def test_command_service_and_its_timeout(pair):
    p_tmp = Path(tempfile.mkdtemp(prefix="ra-cmd-"))
    flag = p_tmp / "up"
    marker = f"ra-hang-{os.getpid()}-{time.monotonic_ns()}"
    flag.write_text("")
    p = await pair(
        services=[
            {
                "name": "flag",
                "prefix": "192.0.2.82/32",
                "command": f"test -e {flag} && echo fine",
                "interval": 0.2,
                "rise": 1,
                "fall": 1,
            },
            {
                "name": "hangs",
                "prefix": "192.0.2.83/32",
                "command": f"echo started; sleep 30; : {marker}",
                "interval": 30,  # one check in this test: no new shell while we look
                "timeout": 0.2,
            },
        ]
    )
    await until(lambda: "192.0.2.82/32" in p.peer_view())
    assert svc_view(p.a, "flag")["last"]["detail"] == "exit 0: fine"
    flag.unlink()
    await until(lambda: "192.0.2.82/32" not in p.peer_view())
    s = await until(lambda: (x := svc_view(p.a, "hangs"))["last"] and x)
    assert s["state"] == "down" and s["last"]["detail"] == "did not finish in 0.2s"
    assert s["last"]["took"] < 0.5  # the loop did not wait for the 30 s sleep
    assert not _processes_with(marker)  # its shell was killed (and its group with it)
    assert "192.0.2.83/32" not in routes_of(p.a)
    shutil.rmtree(p_tmp, ignore_errors=True)


async def test_reload_adds_removes_and_changes_services_apart(pair):
    lst = Listener("127.0.17.197")
    await lst.open()
    base = {"tcp": f"{lst.host}:{lst.port}", "interval": 0.2, "rise": 1, "fall": 1}
    keep = {"name": "keep", "prefix": "192.0.2.90/32", **base}
    change = {"name": "change", "prefix": "192.0.2.91/32", **base}
    gone = {"name": "gone", "prefix": "192.0.2.92/32", **base}
    p = await pair(services=[keep, change, gone])
    await until(lambda: {"192.0.2.90/32", "192.0.2.91/32", "192.0.2.92/32"} <= set(p.peer_view()))
    p.a.command("route_add", prefix="198.51.100.0/24", owner="ctl")
    await asyncio.sleep(0.5)
    checks_before = svc_view(p.a, "keep")["checks"]
    new = {"name": "new", "prefix": "192.0.2.93/32", **base}
    p.write(services=[keep, {**change, "communities": ["65000:91"], "fall": 3}, new])
    result = p.a.command("reload")
    assert result["services"] == {"added": ["new"], "removed": ["gone"], "changed": ["change"]}
    s = svc_view(p.a, "keep")  # at once: a restarted service would have no checks yet
    assert s["state"] == "up" and s["checks"] >= checks_before > 0
    await until(lambda: "192.0.2.92/32" not in p.peer_view())
    await until(lambda: "192.0.2.93/32" in p.peer_view())
    await until(lambda: p.peer_view()["192.0.2.91/32"][0]["communities"] == ["65000:91"])
    assert svc_view(p.a, "change")["fall"] == 3 and svc_view(p.a, "change")["state"] == "up"
    assert "198.51.100.0/24" in p.peer_view()
    await lst.close()


async def test_reload_while_a_check_runs_keeps_the_service_checking(pair):
    svc = {
        "name": "slow",
        "prefix": "192.0.2.95/32",
        "command": "sleep 0.3",
        "interval": 0.4,
        "timeout": 0.4,
        "rise": 1,
        "fall": 1,
    }
    p = await pair(services=[svc])
    await until(lambda: "192.0.2.95/32" in p.peer_view())
    await until(lambda: svc_view(p.a, "slow")["running"])
    p.write(services=[{**svc, "med": 42}])  # not the check: its running check counts
    assert p.a.command("reload")["services"]["changed"] == ["slow"]
    n = svc_view(p.a, "slow")["checks"]
    await until(lambda: svc_view(p.a, "slow")["checks"] >= n + 3, timeout=5)
    await until(lambda: p.peer_view()["192.0.2.95/32"][0]["med"] == 42)
    await until(lambda: svc_view(p.a, "slow")["running"])
    p.write(services=[{**svc, "command": "sleep 0.3; exit 1"}])  # another check
    p.a.command("reload")
    await until(lambda: "192.0.2.95/32" not in p.peer_view(), timeout=5)
    s = svc_view(p.a, "slow")
    assert s["state"] == "down" and s["changes"] == 0  # a new check: its first result decided
    n = s["checks"]
    await until(lambda: svc_view(p.a, "slow")["checks"] >= n + 2, timeout=5)

"""bgpd show / neighbor / reload against a real control socket with a fake daemon behind it."""

import json

import pytest
from click.testing import CliRunner

from bgpd.api.server import CommandError
from bgpd.cli import tables
from bgpd.cli.main import main


def msgs(**kw):
    out = dict.fromkeys(("open", "update", "notification", "keepalive", "route_refresh"), 0)
    out.update(kw)
    out["total"] = sum(out.values())
    return out


NEIGHBORS = {
    "neighbors": [
        {
            "address": "192.0.2.1",
            "asn": 65001,
            "state": "Established",
            "router_id": "192.0.2.1",
            "local_address": "192.0.2.10",
            "uptime": 93784.0,  # 1d02h03m04s
            "since": 93784.0,
            "hold_time": 90,
            "keepalive": 30,
            "capabilities": ["route-refresh", "four-octet-as"],
            "families": ["ipv4", "ipv6"],
            "last_error": None,
            "messages": {"in": msgs(open=1, update=7, keepalive=40), "out": msgs(open=1, update=3)},
            "prefixes": {"received": 12, "accepted": 11, "advertised": 3},
            "description": "tor-1",
            "dynamic_from": None,
        },
        {
            "address": "2001:db8::2",
            "asn": 4200000000,
            "state": "Active",
            "router_id": None,
            "local_address": None,
            "uptime": None,
            "since": 65.0,
            "hold_time": None,
            "keepalive": None,
            "capabilities": [],
            "families": ["ipv6"],
            "last_error": "Hold Timer Expired",
            "messages": {"in": msgs(), "out": msgs()},
            "prefixes": {"received": 0, "accepted": 0, "advertised": 0},
            "description": None,
            "dynamic_from": None,
        },
    ]
}

SUMMARY = {
    "router_id": "192.0.2.10",
    "asn": 64512,
    "uptime": 700000.0,
    "neighbors": {"total": 2, "established": 1},
    "routes": {"ipv4": 12, "ipv6": 4},
}


def path(**kw):
    p = {
        "best": False,
        "multipath": False,
        "from": "192.0.2.1",
        "source": "bgp",
        "next_hop": "192.0.2.1",
        "as_path": "65001 65002",
        "origin": "igp",
        "med": None,
        "local_pref": 100,
        "communities": [],
        "large_communities": [],
        "originator_id": None,
        "cluster_list": [],
        "lost_at": None,
    }
    p.update(kw)
    return p


ROUTES = {
    "routes": [
        {
            "prefix": "10.0.0.0/24",
            "family": "ipv4",
            "paths": [path(best=True, med=5), path(multipath=True, **{"from": "192.0.2.2"})],
        },
        {
            "prefix": "10.244.12.0/26",
            "family": "ipv4",
            "paths": [path(best=True, source="local", next_hop=None, **{"from": None}, as_path="")],
        },
    ]
}


def invoke(*args, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def test_show_neighbors_table(daemon):
    fake, sock = daemon
    fake.results["show_neighbors"] = NEIGHBORS
    r = invoke("show", "neighbors", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [("show_neighbors", {})]
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "Address", "AS", "State", "Up/Down", "Hold", "PfxRcd", "PfxSnt", "Last", "error"
    ]  # fmt: skip
    assert lines[1].split() == ["192.0.2.1", "65001", "Established", "1d02h03m", "90", "12", "3"]
    assert lines[2].split() == [
        "2001:db8::2", "4200000000", "Active", "00:01:05", "-", "0", "0", "Hold", "Timer", "Expired"
    ]  # fmt: skip


def test_show_neighbors_json(daemon):
    fake, sock = daemon
    fake.results["show_neighbors"] = NEIGHBORS
    r = invoke("show", "neighbors", "--json", "-s", sock)
    assert r.exit_code == 0
    assert json.loads(r.stdout) == NEIGHBORS


def test_show_one_neighbor_detail(daemon):
    fake, sock = daemon
    fake.results["show_neighbors"] = NEIGHBORS
    r = invoke("show", "neighbors", "192.0.2.1", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [("show_neighbors", {"address": "192.0.2.1"})]
    out = r.stdout
    assert out.startswith("Neighbor 192.0.2.1, AS 65001 (tor-1)\n")
    assert "State:          Established for 1d02h03m" in out
    assert "Local address:  192.0.2.10" in out
    assert "Hold time:      90 s, keepalive 30 s" in out
    assert "Capabilities:   route-refresh, four-octet-as" in out
    assert "Prefixes:       12 received, 11 accepted, 3 advertised" in out
    assert "2001:db8::2" not in out
    update_row = next(line for line in out.splitlines() if line.strip().startswith("update"))
    assert update_row.split() == ["update", "3", "7"]  # sent, received


def test_show_one_neighbor_json_and_ipv6_spelling(daemon):
    fake, sock = daemon
    fake.results["show_neighbors"] = NEIGHBORS
    r = invoke("show", "neighbors", "2001:DB8:0::2", "--json", "-s", sock)
    assert r.exit_code == 0, r.output
    assert [n["address"] for n in json.loads(r.stdout)["neighbors"]] == ["2001:db8::2"]


def test_show_unknown_neighbor(daemon):
    fake, sock = daemon
    fake.results["show_neighbors"] = NEIGHBORS
    r = invoke("show", "neighbors", "192.0.2.99", "-s", sock)
    assert r.exit_code == 1
    assert r.stderr == "error: no neighbor 192.0.2.99\n"


def test_show_neighbors_bad_address():
    r = invoke("show", "neighbors", "tor-1")
    assert r.exit_code == 2
    assert "'tor-1' is not an IP address" in r.stderr


def test_show_summary(daemon):
    fake, sock = daemon
    fake.results["show_summary"] = SUMMARY
    r = invoke("show", "summary", "-s", sock)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "BGP router identifier 192.0.2.10, local AS 64512",
        "Up for 01w1d02h",
        "Neighbors: 2 configured, 1 established",
        "Routes: 12 IPv4, 4 IPv6",
    ]
    r = invoke("show", "summary", "--json", "-s", sock)
    assert json.loads(r.stdout) == SUMMARY


GR_RESTARTING = {
    "enabled": True,
    "start": "restart",
    "start_reason": "graceful stop 2.5 s ago (pid 4242)",
    "restarting": True,
    "waiting_for_eor": ["192.0.2.1"],
    "deferral_remaining": 231.7,
    "neighbors": {"192.0.2.9": {"state": "restarting", "stale_routes": 12}},
}


def test_show_summary_graceful_restart(daemon):
    """How this start counted (restart or cold start, and why) and what our restart waits
    for; no line at all from a daemon that does not report it."""
    fake, sock = daemon
    fake.results["show_summary"] = {**SUMMARY, "graceful_restart": GR_RESTARTING}
    r = invoke("show", "summary", "-s", sock)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[4:] == [
        "Graceful restart: restart (graceful stop 2.5 s ago (pid 4242)); our routes deferred"
        " until End-of-RIB from 192.0.2.1, at most 231 s more",
        "  Neighbor 192.0.2.9: restarting, 12 stale routes",
    ]


@pytest.mark.parametrize(
    "gr, line",
    [
        ({"enabled": False, "start": None}, "Graceful restart: off"),
        (
            {"enabled": True, "start": "cold", "start_reason": "no marker", "restarting": False},
            "Graceful restart: cold start (no marker)",
        ),
        (
            {**GR_RESTARTING, "restarting": False, "waiting_for_eor": [], "neighbors": {}},
            "Graceful restart: restart (graceful stop 2.5 s ago (pid 4242)); complete",
        ),
    ],
)
def test_summary_graceful_restart_line(gr, line):
    assert tables.summary({**SUMMARY, "graceful_restart": gr}).splitlines()[4:] == [line]


def test_show_routes_table(daemon):
    fake, sock = daemon
    fake.results["show_routes"] = ROUTES
    r = invoke("show", "routes", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [("show_routes", {})]
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "Prefix", "Next", "hop", "From", "Source", "MED", "LocPrf", "Origin", "AS", "path"
    ]  # fmt: skip
    assert lines[1].split() == [
        "*>", "10.0.0.0/24", "192.0.2.1", "192.0.2.1", "bgp", "5", "100", "igp", "65001", "65002"
    ]  # fmt: skip
    assert lines[2].split() == [
        "*=", "192.0.2.1", "192.0.2.2", "bgp", "-", "100", "igp", "65001", "65002"
    ]  # fmt: skip
    assert lines[3].split() == ["*>", "10.244.12.0/26", "-", "-", "local", "-", "100", "igp"]
    assert lines[-1] == "2 prefixes, 3 paths (> best, = multipath)"


def test_show_routes_args(daemon):
    fake, sock = daemon
    fake.results["show_routes"] = {"routes": []}
    r = invoke(
        "show", "routes", "2001:DB8::/32", "--family", "ipv6", "--neighbor", "192.0.2.1",
        "--advertised", "--json", "-s", sock,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert fake.requests == [
        (
            "show_routes",
            {
                "prefix": "2001:db8::/32",
                "family": "ipv6",
                "neighbor": "192.0.2.1",
                "advertised": True,
            },
        )
    ]
    assert json.loads(r.stdout) == {"routes": []}
    r = invoke("show", "routes", "--neighbor", "192.0.2.1", "--received", "-s", sock)
    assert fake.requests[-1] == ("show_routes", {"neighbor": "192.0.2.1", "received": True})
    assert r.stdout == "No routes.\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--received"], "need --neighbor"),
        (["--neighbor", "192.0.2.1", "--received", "--advertised"], "mutually exclusive"),
        (["10.0.0.1/24"], "has host bits set"),
        (["--family", "ipv5"], "ipv5"),
    ],
)
def test_show_routes_usage_errors(args, message):
    r = invoke("show", "routes", *args)
    assert r.exit_code == 2
    assert message in r.stderr


@pytest.mark.parametrize("action", ["reset", "shutdown"])
def test_neighbor_action_with_message(daemon, action):
    fake, sock = daemon
    fake.results[f"neighbor_{action}"] = {"message": f"neighbor 192.0.2.1: {action}"}
    r = invoke("neighbor", action, "192.0.2.1", "-m", "maintenance ✓", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [
        (f"neighbor_{action}", {"address": "192.0.2.1", "message": "maintenance ✓"})
    ]
    assert r.stdout == f"neighbor 192.0.2.1: {action}\n"


@pytest.mark.parametrize("action", ["enable", "refresh"])
def test_neighbor_action_without_message(daemon, action):
    fake, sock = daemon
    fake.results[f"neighbor_{action}"] = {}
    r = invoke("neighbor", action, "2001:db8::2", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [(f"neighbor_{action}", {"address": "2001:db8::2"})]
    assert r.stdout == f"neighbor 2001:db8::2: {action} done\n"
    assert invoke("neighbor", action, "2001:db8::2", "-m", "x").exit_code == 2


def test_neighbor_refresh_direction(daemon):
    fake, sock = daemon
    fake.results["neighbor_refresh"] = {"address": "192.0.2.1", "action": "refresh"}
    r = invoke("neighbor", "refresh", "192.0.2.1", "--direction", "both", "--json", "-s", sock)
    assert r.exit_code == 0, r.output
    assert fake.requests == [("neighbor_refresh", {"address": "192.0.2.1", "direction": "both"})]
    assert json.loads(r.stdout) == fake.results["neighbor_refresh"]


def test_neighbor_message_too_long():
    r = invoke("neighbor", "shutdown", "192.0.2.1", "-m", "x" * 256)
    assert r.exit_code == 2
    assert "255 octets" in r.stderr


def test_daemon_error_reply(daemon):
    fake, sock = daemon
    fake.results["neighbor_reset"] = CommandError("no neighbor 192.0.2.9")
    r = invoke("neighbor", "reset", "192.0.2.9", "-s", sock)
    assert r.exit_code == 1
    assert r.stderr == "error: no neighbor 192.0.2.9\n"


def test_daemon_internal_error(daemon):
    fake, sock = daemon
    fake.results["reload"] = RuntimeError("boom")
    r = invoke("reload", "-s", sock)
    assert r.exit_code == 1
    assert r.stderr == "error: internal error in reload: RuntimeError: boom\n"


def test_reload(daemon):
    fake, sock = daemon
    fake.results["reload"] = {"message": "1 neighbor added", "added": ["192.0.2.3"]}
    r = invoke("reload", "-s", sock)
    assert (r.exit_code, r.stdout) == (0, "1 neighbor added\n")
    r = invoke("reload", "--json", "-s", sock)
    assert json.loads(r.stdout) == fake.results["reload"]


def test_socket_from_environment(daemon):
    fake, sock = daemon
    fake.results["show_summary"] = SUMMARY
    r = invoke("show", "summary", env={"BGPD_SOCKET": sock})
    assert r.exit_code == 0, r.output


def test_daemon_not_running(tmp_path):
    sock = str(tmp_path / "none.sock")
    for args in (
        ["show", "neighbors"],
        ["show", "routes"],
        ["neighbor", "reset", "192.0.2.1"],
        ["reload"],
    ):
        r = invoke(*args, "-s", sock)
        assert r.exit_code == 1
        assert r.stderr == (
            f"bgpd is not running: no control socket at {sock} "
            "(start it with `bgpd run -c FILE`, or pass -s PATH)\n"
        )


def test_default_socket_path_in_the_message(monkeypatch):
    monkeypatch.delenv("BGPD_SOCKET", raising=False)
    r = invoke("show", "summary")
    assert r.exit_code == 1
    assert "/run/bgpd/bgpd.sock" in r.stderr


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, "never"),
        (0, "00:00:00"),
        (65.9, "00:01:05"),
        (86399, "23:59:59"),
        (86400, "1d00h00m"),
        (93784, "1d02h03m"),
        (7 * 86400 + 3600, "01w0d01h"),
    ],
)
def test_duration(seconds, text):
    assert tables.duration(seconds) == text

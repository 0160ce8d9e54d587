"""The line protocol (sans-I/O), the engine's mutating commands, and the formatters' rules
that the lab cannot reach (times older than 20 hours, multipath, IPv6 hash order...)."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime, timedelta

import pytest

from bgpd.birdctl.commands import Configure
from bgpd.birdctl.engine import BirdCli, ConfigureResult, Session
from bgpd.birdctl.protocol import MAX_COMMAND, CliConnection, TooLong
from bgpd.birdctl.show import (
    address_hash,
    fib_order,
    format_since,
    route_line,
    show_protocols,
    show_status,
)
from bgpd.birdctl.snapshot import (
    AsPathSegment,
    BgpAttrs,
    GracefulRestartStatus,
    NextHop,
    Protocol,
    Route,
    RoutePath,
    Snapshot,
    Status,
)

T0 = datetime(2026, 8, 22, 10, 0, 0)


def test_greeting_first_and_framing_with_last_code_rule():
    c = CliConnection()
    assert c.data_to_send() == b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n"
    c.send_reply([(-2002, "heading"), (-1002, "row1"), (-1002, "row2"), (0, "")])
    assert c.data_to_send() == b"2002-heading\n1002-row1\n row2\n0000 \n"
    # the last code persists across replies on the connection
    c.send_reply([(-1002, "row")])
    c.send_reply([(-1002, "again"), (13, "final")])
    assert c.data_to_send() == b"1002-row\n again\n0013 final\n"


def test_commands_before_greeting_split_reads_and_cr():
    c = CliConnection()
    c.receive_data(b"show st")
    assert c.next_command() is None
    c.receive_data(b"at\rus\r\nshow memory\n\nfoo")
    assert [c.next_command(), c.next_command(), c.next_command(), c.next_command()] == [
        "show status",
        "show memory",
        "",
        None,
    ]
    c.receive_data(b"\n")
    assert c.next_command() == "foo"


def test_command_length_limit():
    c = CliConnection()
    c.receive_data(b"x" * MAX_COMMAND + b"\n")
    assert c.next_command() == "x" * MAX_COMMAND
    c.receive_data(b"y" * (MAX_COMMAND + 1))
    c.receive_data(b"y" * 100000 + b"\nshow status\n")  # dropped as it arrives
    assert isinstance(c.next_command(), TooLong)
    assert c.next_command() == "show status"


def test_reply_line_limit():
    c = CliConnection()
    c.data_to_send()
    c.send_reply([(-1006, "a" * 505), (-1006, "b" * 509), (-1006, "c" * 510), (0, "")])
    out = c.data_to_send().split(b"\n")
    assert out[0] == b"1006-" + b"a" * 505  # 510 characters: fits
    assert out[1] == b" " + b"b" * 509
    assert out[2] == b"8000-<line overflow>"
    assert out[3] == b"0000 "
    c.send_reply([(9001, "z" * 600)])
    assert c.data_to_send() == b"8000 <line overflow>\n"


def run(cli: BirdCli, *commands: str, session: Session | None = None) -> list[list]:
    session = session or Session()
    return [asyncio.run(cli.execute(c, session)) for c in commands]


class Handler:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list = []
        self.error = error

    async def configure(self, request: Configure):
        self.calls.append(request)
        return ConfigureResult("/etc/calico/confd/config/bird.cfg", error=self.error)

    def protocol_command(self, action, name, message):
        self.calls.append((action, name, message))
        return action != "reload"  # reload fails

    def shutdown(self):
        self.calls.append("shutdown")

    def graceful_restart(self):
        self.calls.append("graceful restart")


def _snap(**kw) -> Snapshot:
    protos = (
        Protocol("static1", "Static", "up", T0, preference=200),
        Protocol("Mesh_10_0_0_1", "BGP", "up", T0, preference=100),
        Protocol("Node_10_0_0_2", "BGP", "down", T0, disabled=True),
    )
    return Snapshot(Status("10.0.0.9", T0, T0, **kw), protos)


def test_mutating_commands_call_the_handler_and_answer_as_bird():
    h = Handler()
    cli = BirdCli(_snap, h, clock=lambda: T0)
    r = run(
        cli,
        'disable "*"',
        'enable "*" "maintenance over"',
        "restart Mesh_10_0_0_1",
        "reload Mesh_10_0_0_1",
        "configure soft",
        'configure check "/tmp/x.cfg"',
        "disable master",
    )
    assert r[0] == [
        (-9, "static1: disabled"),
        (-9, "Mesh_10_0_0_1: disabled"),
        (-8, "Node_10_0_0_2: already disabled"),
        (0, ""),
    ]
    assert r[1] == [
        (-10, "static1: already enabled"),
        (-10, "Mesh_10_0_0_1: already enabled"),
        (-11, "Node_10_0_0_2: enabled"),
        (0, ""),
    ]
    assert r[2] == [(-12, "Mesh_10_0_0_1: restarted"), (0, "")]
    assert r[3] == [(-8006, "Mesh_10_0_0_1: reload failed"), (0, "")]
    assert r[4] == [
        (-2, "Reading configuration from /etc/calico/confd/config/bird.cfg"),
        (3, "Reconfigured"),
    ]
    assert r[5][-1] == (20, "Configuration OK")
    assert r[6] == [(9002, "master is not a protocol")]
    assert h.calls[:3] == [
        ("disable", "static1", None),
        ("disable", "Mesh_10_0_0_1", None),
        ("enable", "Node_10_0_0_2", "maintenance over"),
    ]
    assert h.calls[5] == Configure(soft=True)
    assert h.calls[6] == Configure(check=True, path="/tmp/x.cfg")


def test_configure_error_down_and_restrict():
    h = Handler(error="bird.cfg:12:3 syntax error")
    cli = BirdCli(_snap, h, clock=lambda: T0)
    s = Session()
    assert run(cli, "configure", session=s)[0][-1] == (8002, "bird.cfg:12:3 syntax error")
    assert run(cli, "down", session=s)[0] == [(7, "Shutdown requested")]
    assert s.shutdown_requested
    s2 = Session()
    assert run(cli, "restrict", "down", "disable static1", "configure", session=s2) == [
        [(16, "Access restricted")],
        [(8007, "Access denied")],
        [(8007, "Access denied")],
        [(8007, "Access denied")],
    ]
    assert not s2.shutdown_requested
    # without a handler every mutating command is refused
    assert run(BirdCli(_snap), "down")[0] == [(8007, "Access denied")]
    assert run(cli, TooLong())[0] == [(9000, "Command too long")]  # type: ignore[arg-type]


def test_graceful_restart_as_bird_2():
    """BIRD 2.0's ``graceful restart`` (measured on 2.0.12): ``0025 Graceful restart
    requested``, then the daemon stops; ``8007`` after ``restrict``; BIRD 1.6's grammar
    has no such command, and the rest of a line is a syntax error as in any command."""
    h = Handler()
    cli = BirdCli(_snap, h, clock=lambda: T0)
    s = Session()
    assert run(cli, "graceful restart", session=s)[0] == [(25, "Graceful restart requested")]
    assert s.shutdown_requested and s.graceful
    assert not Session().graceful  # down: shutdown_requested alone
    assert run(cli, "graceful", "graceful restart now", "graceful down") == [
        [(9001, "syntax error")],
        [(9001, "syntax error")],
        [(9001, "syntax error")],
    ]
    s2 = Session()
    assert run(cli, "restrict", "graceful restart", session=s2)[1] == [(8007, "Access denied")]
    assert not s2.shutdown_requested
    assert run(BirdCli(_snap), "graceful restart")[0] == [(8007, "Access denied")]


def test_since_column_switches_to_date_after_20_hours():
    now = T0
    assert format_since(now - timedelta(hours=19, minutes=59, seconds=59), now) == "14:00:01"
    assert format_since(now - timedelta(hours=20), now) == "2026-08-21"
    row = show_protocols(_snap(), T0 + timedelta(days=3))[1]
    assert row == (-1002, "static1  Static   master   up     2026-08-22  ")


def test_gr_status_lines_and_final_line_variants():
    gr = GracefulRestartStatus(2, 215, 240)
    lines = show_status(_snap(graceful_restart=gr), T0)
    assert lines[5:] == [
        (-24, "Graceful restart recovery in progress"),
        (-24, "  Waiting for 2 protocols to recover"),
        (-24, "  Wait timer is 215/240"),
        (13, "Daemon is up and running"),
    ]
    assert show_status(_snap(shutting_down=True), T0)[-1] == (13, "Shutdown in progress")
    assert show_status(_snap(reconfiguring=True), T0)[-1] == (13, "Reconfiguration in progress")
    c = CliConnection()
    c.data_to_send()
    c.send_reply(lines)
    assert c.data_to_send().decode().split("\n")[5:8] == [
        "0024-Graceful restart recovery in progress",
        "   Waiting for 2 protocols to recover",
        "   Wait timer is 215/240",
    ]


def test_route_line_variants():
    ecmp = RoutePath(
        "Mesh_10_0_0_1",
        T0,
        dest="multipath",
        preference=100,
        nexthops=(NextHop("10.0.0.1", "eth0"), NextHop("10.0.0.2", "eth1", 2)),
        bgp=BgpAttrs(
            as_path=(AsPathSegment(False, (65001,)), AsPathSegment(True, (7, 8))),
            igp_metric="?",
            stale=True,
        ),
    )
    assert route_line("10.1.0.0/16", ecmp, True, True, T0) == (
        "10.1.0.0/16        multipath [Mesh_10_0_0_1 10:00:00] ! (100s/?) [i]"
    )
    ibgp = RoutePath(
        "Node_10_0_0_2",
        T0,
        gateway="10.0.0.3",
        iface="eth0",
        from_address="10.0.0.2",
        preference=100,
        bgp=BgpAttrs(igp_metric=0, origin=2),
    )
    assert route_line("", ibgp, False, False, T0) == (
        "                   via 10.0.0.3 on eth0 [Node_10_0_0_2 10:00:00 from 10.0.0.2] (100/0) [?]"
    )


def test_fib_order_ipv6_and_equal_hashes():
    a = Route(ipaddress.ip_network("2001:db8::/64"), (), seq=2)
    b = Route(ipaddress.ip_network("2001:db8::/48"), (), seq=1)
    c = Route(ipaddress.ip_network("fd00::/8"), (), seq=0)
    assert address_hash(a.prefix.network_address) == address_hash(b.prefix.network_address)
    order = fib_order([a, b, c])
    assert order.index(b) == order.index(a) - 1  # same hash: insertion order


@pytest.mark.parametrize(
    "line, reply",
    [
        ("foo", (9001, "syntax error")),
        ("show proto", (9001, "syntax error")),
        ("show route 10.0.0.1/8", (9001, "Invalid prefix")),
        (
            "show route 2001:db8::/32",
            (9001, "This is an IPv4 router, therefore IPv6 addresses are not supported"),
        ),
        ("show route protocol Nope", (9001, "Nope is not a protocol")),
        ("show route 99999999999", (9001, "Number out of range")),
        ("show interfaces", (9001, "show interfaces: not supported by bgpd")),
        ('show protocols "x', (9001, "Unknown character")),
    ],
)
def test_errors(line, reply):
    assert run(BirdCli(_snap), line)[0] == [reply]

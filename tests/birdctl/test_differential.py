"""Differential layout tests: real BIRD 1.6.8's replies against ours, line by line.

BIRD runs the lab of bc_lab.py. Every command below is sent to it on one connection (the
first before the greeting is read), then our server, serving :func:`lab.lab_snapshot` of the same
state, gets the same commands. Both replies are compared line for line after
:func:`bc_helpers.normalise`, which replaces only clock times and dates, the remaining seconds
of ticking timers and ``show memory`` sizes: codes, prefixes, columns, padding, words and
every other value must be identical.
"""

from __future__ import annotations

import bc_lab as lab
import pytest
from bc_helpers import normalise, query

from bgpd.birdctl.engine import ConfigureResult

M = lab.MESH
READ_ONLY = [
    "show status",
    "show protocols",
    "show protocols all",
    f"show protocols all {M}",
    f"show protocols {lab.PASSIVE}",
    'show protocols "Global*"',
    'show protocols all "*1"',
    "show protocols nosuch",
    'show protocols "zz*"',
    "show route",
    "show route all",
    f"show route protocol {M}",
    "show route protocol kernel1 all",
    f"show route export {M}",
    f"show route noexport {M}",
    f"show route preexport {M}",
    "show route export kernel1",
    "show route export static1",
    f"show route export {lab.PASSIVE}",
    "show route 172.16.2.0/24 all",
    "show route for 172.16.2.77",
    "show route for 10.0.1.0/24",
    "show route 10.0.1.0/24 protocol kernel1",
    "show route 1.2.3.0/24",
    "show route 10.0.1.5/24",
    "show route protocol nosuch",
    f"show route protocol static1 protocol {M}",
    "show route 10.0.0.0/30 10.0.1.0/24",
    "show route where net ~ 10.0.0.0/8",
    "show route where net ~ [ 10.0.0.0/8+, 192.0.2.0/24 ]",
    "show route where bgp_path ~ [= * 65002 =]",
    "show route where bgp_community ~ [(65001,42)]",
    'show route where net.len = 30 || proto = "kernel1"',
    "show route where bgp_med > 5",
    "show route where bgp_path.len > 1 && bgp_path.last = 65002",
    "show route where source = RTS_STATIC && dest != RTD_BLACKHOLE",
    'show route where ifname = "bcv0" && preference < 100',
    "show route where foo = 1",
    "show route where",
    "show route count",
    "show route stats",
    f"show route export {M} count",
    "show route primary",
    "show route filtered",
    "show route table master",
    "show route table nosuch",
    "show memory",
    "foo",
    "show proto",
    "sh ro",
    "",
    "show",
    "show status extra",
    'show protocols "abc',
    f"enable {M}",
    f"disable {lab.NODE}",
    f"restart {lab.NODE}",
    'enable "zz*"',
    "disable nosuch",
    "configure check",
    "restrict",
    f"disable {M}",
    "configure",
    "down",
]


class Recorder:
    """A ControlHandler that records what it is asked and changes nothing."""

    def __init__(self, config_name: str) -> None:
        self.calls: list[tuple] = []
        self.config_name = config_name

    def configure(self, request):
        self.calls.append(("configure", request))
        return ConfigureResult(path=self.config_name)

    def protocol_command(self, action, name, message):
        self.calls.append((action, name, message))
        return True

    def shutdown(self):
        self.calls.append(("shutdown",))


@pytest.fixture(scope="module")
def captured(bird_lab):
    """BIRD's replies to READ_ONLY and the values of the same moment."""
    return lab.capture(bird_lab.sock, READ_ONLY)


@pytest.fixture(scope="module")
def ours(captured, tmp_path_factory):
    greeting, by_cmd, dyn = captured
    from bc_helpers import ThreadedServer

    snap = lab.lab_snapshot(dyn)
    handler = Recorder("bird16.cfg")
    path = str(tmp_path_factory.mktemp("bc-ours") / "bird.ctl")
    with ThreadedServer(path, lambda: snap, handler, clock=lambda: dyn.now, version="1.6.8"):
        replies = query(path, *READ_ONLY)
    return replies[0], dict(zip(READ_ONLY, replies[1:], strict=True)), handler


def test_greeting_is_the_same(captured, ours):
    assert captured[0] == ["0001 BIRD 1.6.8 ready."]
    assert ours[0] == captured[0]


@pytest.mark.parametrize("command", READ_ONLY)
def test_same_reply_as_bird(captured, ours, command):
    theirs = normalise("\n".join(captured[1][command]))
    mine = normalise("\n".join(ours[1][command]))
    assert mine.split("\n") == theirs.split("\n")


def test_lab_covers_what_calico_sees(captured):
    """The lab really has what the comparisons are meant to cover."""
    by_cmd = captured[1]
    status = "\n".join(by_cmd["show status"])
    assert "0024-Graceful restart recovery in progress" in status  # started with -R
    rows = "\n".join(by_cmd["show protocols"])
    assert f" {M} BGP      master   up" in rows and "Established" in rows
    assert "Passive" in rows and f" {lab.NODE} BGP      master   down" in rows
    details = by_cmd["show protocols all"]
    assert f"1006-  Description:    {lab.LONG_FITS}" in details  # 510 characters
    assert "8000-<line overflow>" in details
    routes = "\n".join(by_cmd["show route"])
    for word in ("blackhole", "unreachable", "prohibited", " dev bcv0 ", "[AS65002i]", "kernel1"):
        assert word in routes


def test_mutating_commands_reached_the_handler(ours):
    """Only ``configure check`` reaches the daemon: the enable/disable/restart above change
    nothing (already enabled, already disabled), and after ``restrict`` every mutating
    command is refused with 8007 before the handler is asked."""
    calls = ours[2].calls
    assert len(calls) == 1
    assert calls[0][0] == "configure" and calls[0][1].check

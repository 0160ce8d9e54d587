"""When a session starts and restarts: ``connect_delay``, ``error_wait`` and ``error_forget``,
from the YAML keys to the FSM (sans-I/O) and through a real TCP session (bgpd.session).

Calico's BIRD says ``connect delay time 2; connect retry time 5; error wait time 5,30``: the
first connection attempt of a start waits ``connect_delay``, a failed session waits
``error_wait[0]`` and doubles up to ``error_wait[1]``, and once no error happened for
``error_forget`` seconds the wait starts again from the minimum. Before these keys bgpd always
waited 5 s (doubling to 120) whatever the configuration said, and connected at once.
"""

import asyncio
import time

import pytest
from fsm_harness import of_type, peer_open, settings

from bgpd.config import parse
from bgpd.fsm import Protocol, SessionSettings, State, session_keys
from bgpd.fsm import events as ev
from bgpd.session.peer import PeerSession, Transport

# --- configuration -> settings ---------------------------------------------------------------


def neighbor(**keys):
    cfg = parse(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "neighbors": [{"address": "192.0.2.2", "asn": 65002, **keys}],
        }
    )
    return cfg.neighbors[0]


def settings_from(n) -> SessionSettings:
    return SessionSettings(
        local_as=65001,
        peer_as=n.asn,
        router_id="10.0.0.1",
        connect_retry=n.connect_retry,
        **session_keys(n),
    )


def test_calico_timers_reach_the_session_settings():
    n = neighbor(connect_delay=2, connect_retry=5, error_wait=[5, 30], error_forget=600)
    s = settings_from(n)
    assert (s.connect_delay, s.connect_retry, s.idle_hold, s.error_forget) == (2, 5, (5, 30), 600)
    # the defaults are what bgpd did before the keys existed
    s = settings_from(neighbor())
    assert (s.connect_delay, s.idle_hold, s.error_forget) == (0, (5, 120), 300)
    assert s.loopback_next_hop == "auto" and s.extended_next_hop == ()


def test_template_keys_reach_the_session_settings():
    cfg = parse(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "templates": {"calico": {"error_wait": [1, 8], "connect_delay": 3}},
            "neighbors": [{"address": "192.0.2.2", "asn": 65002, "template": "calico"}],
        }
    )
    s = settings_from(cfg.neighbors[0])
    assert (s.connect_delay, s.idle_hold) == (3, (1, 8))


# --- the FSM -------------------------------------------------------------------------------


def _fail(p: Protocol, now: float) -> float:
    """From Connect: connect, get a bad OPEN (2/2), Idle; returns the idle hold armed."""
    assert p.state is State.CONNECT
    p.connection_made(now, outbound=True)
    p.receive_data(peer_open(asn=1), now)
    assert p.state is State.IDLE
    return p.timers["idle_hold"] - now


def test_error_wait_doubles_from_min_to_max():
    p = Protocol(settings_from(neighbor(error_wait=[1, 4])))
    p.start(0.0)
    waits, now = [], 0.0
    for _ in range(5):
        waits.append(_fail(p, now))
        now = p.next_deadline()
        p.handle_timer(now)
    assert waits == [1, 2, 4, 4, 4]


def test_error_wait_starts_again_after_error_forget():
    p = Protocol(settings_from(neighbor(error_wait=[1, 30], error_forget=60)))
    p.start(0.0)
    assert _fail(p, 0.0) == 1
    p.handle_timer(1.0)
    assert _fail(p, 2.0) == 2
    p.handle_timer(4.0)
    assert _fail(p, 100.0) == 1  # 98 s without an error (the session stayed up)


def test_connect_delay_waits_in_active_then_connects():
    p = Protocol(settings_from(neighbor(connect_delay=2, connect_retry=5)))
    evs = p.start(10.0)
    assert p.state is State.ACTIVE and not of_type(evs, ev.ConnectRequested)
    assert p.timers == {"connect_retry": 12.0}
    evs = p.handle_timer(12.0)
    assert p.state is State.CONNECT and of_type(evs, ev.ConnectRequested)
    assert p.timers == {"connect_retry": 17.0}  # then every connect_retry
    # the restart after an error waits error_wait, then connect_delay again
    _fail(p, 13.0)
    assert p.timers == {"idle_hold": 18.0}
    p.handle_timer(18.0)
    assert p.state is State.ACTIVE and p.timers == {"connect_retry": 20.0}


def test_connect_delay_accepts_the_peer_meanwhile():
    p = Protocol(settings_from(neighbor(connect_delay=2)))
    p.start(0.0)
    p.connection_made(0.5, outbound=False)
    assert p.state is State.OPENSENT and "connect_retry" not in p.timers


def _down_by(how: str, p: Protocol, now: float) -> None:
    """Established, then the session ends ``how``: the peer's Cease, the peer closing the
    connection, the peer's Hold Timer Expired NOTIFICATION, or an error of ours."""
    from fsm_harness import to_established

    from bgpd.wire import Notification

    to_established(p, now)
    if how == "cease":
        p.receive_data(Notification(6, 2, b"").encode(), now)
    elif how == "closed":
        p.connection_failed(now)
    elif how == "their error":
        p.receive_data(Notification(4, 0, b"").encode(), now)
    else:
        p.handle_timer(now + 1000.0)  # our hold timer: 4/0 sent
        now += 1000.0
    assert p.state is State.IDLE


@pytest.mark.parametrize(
    "how,at_once",
    [("cease", True), ("closed", True), ("their error", False), ("our error", False)],
)
def test_no_wait_after_the_peer_stops_when_asked(how, at_once):
    """``wait_after_peer_stop`` False (BIRD's rule, bgpd-bird): after a Cease from the peer
    or its closed connection the restart is due at once and the back-off is forgotten;
    after an error, either side's, the idle hold as ever."""
    p = Protocol(settings(idle_hold=(5.0, 60.0), wait_after_peer_stop=False, connect_retry=5))
    _down_by(how, p, 0.0)
    due = p.timers["idle_hold"]
    start = 1000.0 if how == "our error" else 0.0
    assert (due - start == 0.0) is at_once, p.timers
    if at_once:
        p.handle_timer(due)
        assert p.state is State.CONNECT


@pytest.mark.parametrize("how", ["cease", "closed"])
def test_the_idle_hold_after_the_peer_stops_by_default(how):
    p = Protocol(settings(idle_hold=(5.0, 60.0), connect_retry=5))
    _down_by(how, p, 0.0)
    assert p.timers["idle_hold"] == 5.0


@pytest.mark.parametrize("bad", [{"connect_delay": -1}, {"error_forget": -1}])
def test_invalid_timing_settings(bad):
    with pytest.raises(ValueError):
        settings(**bad)


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"error_wait": 5}, "expected [min, max] (two integers of seconds), got integer 5"),
        ({"error_wait": [5]}, "expected [min, max] (two integers of seconds), got 1 values"),
        ({"error_wait": [30, 5]}, "min 30 is greater than max 5"),
        ({"error_wait": [0, 0]}, "max 0 would restart a failing session at once"),
        ({"error_wait": [5, "30"]}, "expected an integer, got string '30'"),
        ({"connect_delay": -2}, "-2 is out of range (0..65535)"),
        ({"loopback_next_hop": True}, "expected one of auto, accept, reject, got boolean true"),
    ],
)
def test_bad_timing_keys_are_named(keys, message):
    with pytest.raises(Exception) as e:
        neighbor(**keys)
    key = next(iter(keys))
    assert f"neighbors[0].{key}: " in str(e.value) and message in str(e.value)


# --- through a real TCP session ------------------------------------------------------------------

PEER = "127.0.14.201"  # PYTEST_XDIST_WORKER gw13's own addresses, outside the interop pool
LOCAL = "127.0.14.202"


class Handler:
    def session_established(self, s):
        pass

    def session_down(self, s, e):
        pass

    def updates_received(self, s, updates):
        pass

    def route_refresh_received(self, s, rr):
        pass

    def session_writable(self, s):
        pass


async def _connection_times(settings: SessionSettings, count: int) -> list[float]:
    """Start a session toward a peer that hangs up after our OPEN; the times (since the start)
    of its first ``count`` connections."""
    times: list[float] = []
    got = asyncio.Event()

    async def peer(reader, writer):
        times.append(time.monotonic())
        await reader.read(19)  # our OPEN: the session is in OpenSent, and now fails
        writer.close()
        if len(times) >= count:
            got.set()

    server = await asyncio.start_server(peer, PEER, 0)
    port = server.sockets[0].getsockname()[1]
    s = PeerSession(settings, Transport(PEER, port, LOCAL), Handler(), asyncio.get_running_loop())
    t0 = time.monotonic()
    s.start()
    try:
        await asyncio.wait_for(got.wait(), 30)
    finally:
        s.close()
        server.close()
        await server.wait_closed()
    return [t - t0 for t in times]


async def test_a_real_session_restarts_after_error_wait():
    """error_wait [1, 2]: the peer sees us 0, 1 and 3 s after the start (the connection closed
    in OpenSent is an error). Before, bgpd came back after 5 s whatever was configured."""
    s = settings_from(neighbor(address=PEER, error_wait=[1, 2], connect_retry=30))
    times = await _connection_times(s, 3)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] < 0.5, times
    assert 0.9 < gaps[0] < 1.9 and 1.9 < gaps[1] < 2.9, times


async def test_a_real_session_waits_connect_delay_first():
    s = settings_from(neighbor(address=PEER, connect_delay=1, error_wait=[1, 1]))
    times = await _connection_times(s, 2)
    # first attempt after connect_delay; after the error, error_wait then connect_delay again
    assert 0.9 < times[0] < 1.9 and 1.9 < times[1] - times[0] < 2.9, times


async def test_update_settings_reaches_the_running_fsm():
    """A reload's new timing must reach the FSM that runs (assigning ``session.settings``
    alone, as the daemon did for connect_retry, only reached FSMs made later)."""
    old = settings_from(neighbor(address=PEER, error_wait=[5, 120]))
    s = PeerSession(old, Transport(PEER, 179, LOCAL), Handler(), asyncio.get_running_loop())
    new = settings_from(neighbor(address=PEER, error_wait=[1, 4], connect_delay=3))
    s.update_settings(new)
    assert s.settings is new and s.fsm.settings is new
    s.close()

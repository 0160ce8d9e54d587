"""The asyncio binding over real UDP on loopback: two services in one event loop.

Addresses come from this worker's 127.0.<N+1>.0/24 (PYTEST_XDIST_WORKER=gwN), offset so as
not to meet the interop pool (.10 upwards): .200 and .201. Bad input is sent with plain UDP
sockets, bound to the peer's address so that it passes the address checks and reaches the
session's own rules.
"""

import asyncio
import os
import socket
import subprocess
import time

import pytest

from bgpd.bfd.auth import Auth
from bgpd.bfd.config import parse
from bgpd.bfd.packet import (
    AUTH_FAILURE,
    MALFORMED,
    NO_SESSION,
    SINGLE_HOP_PORT,
    SOURCE_PORT_MAX,
    SOURCE_PORT_MIN,
    TRUNCATED,
    WRONG_TTL,
    WRONG_VERSION,
    AuthSection,
    AuthType,
    ControlPacket,
    Diag,
    State,
    encode,
)
from bgpd.bfd.session import SessionParams
from bgpd.bfd.transport import BfdService

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_n = int(_worker[2:]) if _worker[2:].isdigit() else 0
A = f"127.0.{_n + 1}.200"
B = f"127.0.{_n + 1}.201"
FAST = SessionParams(min_tx=50_000, min_rx=50_000, multiplier=3)


async def wait_for(pred, timeout=5.0, what=""):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def two():
    events = {"a": [], "b": []}
    a = BfdService(on_state_change=lambda k, e: events["a"].append((k, e)))
    b = BfdService(on_state_change=lambda k, e: events["b"].append((k, e)))
    try:
        yield a, b, events
    finally:
        a.close()
        b.close()


async def up_pair(a, b, params=FAST):
    ka = a.add_session(B, A, params=params)
    kb = b.add_session(A, B, params=params)
    await wait_for(lambda: a.is_up(ka) and b.is_up(kb), what="both Up")
    return ka, kb


async def test_sessions_come_up_and_stay_up_over_udp(two):
    a, b, events = two
    ka, kb = await up_pair(a, b)
    await asyncio.sleep(1.0)
    snap = a.snapshot()
    (row,) = snap["sessions"]
    assert row["state"] == "Up" and row["flaps"] == 0
    assert row["tx_interval_ms"] == 50.0 and row["detection_time_ms"] == 150.0
    assert SOURCE_PORT_MIN <= row["source_port"] <= SOURCE_PORT_MAX
    assert row["rx"] > 10 and row["tx"] > 10 and row["tx_errors"] == 0
    assert snap["sockets"] == [{"local": A, "port": SINGLE_HOP_PORT, "sessions": 1}]
    assert all(v == 0 for v in snap["drops"].values())
    assert [e.new for _, e in events["a"]][-1] == State.UP
    # One timer for the whole service, not one per session.
    assert a._timer is not None


async def test_authenticated_over_udp(two):
    a, b, _ = two
    auth = Auth.single(AuthType.METICULOUS_KEYED_SHA1, 9, "udp-secret")
    params = SessionParams(min_tx=50_000, min_rx=50_000, auth=auth)
    ka, _ = await up_pair(a, b, params)
    await asyncio.sleep(0.5)
    row = a.snapshot()["sessions"][0]
    assert row["authentication"] == "meticulous-keyed-sha1" and row["dropped"] == {}


async def test_removing_a_session_tells_the_peer(two):
    a, b, events = two
    ka, kb = await up_pair(a, b)
    b.remove_session(kb)
    await wait_for(lambda: a.state(ka) == State.DOWN, what="a Down")
    (_, down) = events["a"][-1]
    assert down.remote_state == State.ADMIN_DOWN and not down.is_failure
    assert b.snapshot()["sockets"] == []  # the last session from B closed B's socket


async def test_silence_is_detected(two):
    a, b, events = two
    ka, kb = await up_pair(a, b)
    # B stops sending without a word: its sending socket is gone (errors are counted).
    b._tx[kb].close()
    t0 = time.monotonic()
    await wait_for(lambda: a.state(ka) == State.DOWN, timeout=3.0, what="a Down")
    took = time.monotonic() - t0
    (_, down) = events["a"][-1]
    assert down.diag == Diag.DETECTION_EXPIRED and down.is_failure
    assert took < 1.0, took  # detection time 150 ms, plus scheduling noise
    assert b.snapshot()["sessions"][0]["tx_errors"] > 0


def _raw_socket(src: str, ttl: int = 255) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.bind((src, 0))
    return s


async def test_bad_input_is_counted_and_dropped(two):
    a, b, events = two
    ka, kb = await up_pair(a, b)
    sa = a.manager.session(ka)
    mine, theirs = sa.local_disc, sa.remote_disc
    good = encode(ControlPacket(state=State.DOWN, my_disc=theirs, your_disc=mine))
    signed = encode(
        ControlPacket(
            state=State.DOWN,
            my_disc=theirs,
            your_disc=mine,
            auth=AuthSection(AuthType.KEYED_MD5, 1, sequence=5),
        ),
        b"guess",
    )
    cases = [
        (b"", TRUNCATED),
        (good[:20], TRUNCATED),
        (good[:3] + b"\x30" + good[4:], TRUNCATED),  # Length 48 > 24
        (bytes([0x40]) + good[1:], WRONG_VERSION),
        (good[:2] + b"\x00" + good[3:], MALFORMED),  # Detect Mult 0
        (good[:4] + bytes(4) + good[8:], MALFORMED),  # My Discriminator 0
        (bytes([good[0], 0xC0 | 0x30]) + good[2:], MALFORMED),  # Up with P and F
        (signed, AUTH_FAILURE),
        (good[:8] + (mine ^ 1).to_bytes(4, "big") + good[12:], NO_SESSION),
        # Random discriminators: no session has them (or My Discriminator is zero).
        (b"\x20\x40\x03\x18" + os.urandom(20), None),
    ]
    s = _raw_socket(B)
    expected = dict.fromkeys(a.snapshot()["drops"], 0)
    try:
        for data, reason in cases:
            s.sendto(data, (A, SINGLE_HOP_PORT))
            if reason:
                expected[reason] += 1
        # A well-formed Down (it would take the session down) with TTL 254 and with TTL 1.
        for ttl in (254, 1):
            t = _raw_socket(B, ttl)
            t.sendto(good, (A, SINGLE_HOP_PORT))
            t.close()
            expected[WRONG_TTL] += 1
        await asyncio.sleep(0.3)
    finally:
        s.close()
    drops = a.snapshot()["drops"]
    random_one = sum(drops.values()) - sum(expected.values())
    assert random_one == 1  # the random packet was dropped for one reason or another
    for reason, n in expected.items():
        assert drops[reason] >= n, (reason, drops)
    # Nothing took the session down; no exception reached the loop.
    assert a.is_up(ka) and a.snapshot()["sessions"][0]["flaps"] == 0
    assert all(e.new in (State.INIT, State.UP) for _, e in events["a"])


async def test_admin_down_and_up(two):
    a, b, events = two
    ka, kb = await up_pair(a, b)
    a.admin_down(ka)
    await wait_for(lambda: b.state(kb) == State.DOWN, what="b Down")
    assert a.state(ka) == State.ADMIN_DOWN
    assert not events["b"][-1][1].is_failure
    a.admin_up(ka)
    await wait_for(lambda: a.is_up(ka) and b.is_up(kb), timeout=5.0, what="Up again")


async def test_add_errors(two):
    a, _, _ = two
    a.add_session(B, A, params=FAST)
    with pytest.raises(ValueError, match="exists"):
        a.add_session(B, A)
    with pytest.raises(ValueError):
        a.add_session("fd00::1", A)
    assert len(a.keys()) == 1


async def test_add_configured_from_a_bfd_section(two):
    a, b, _ = two
    cfg = parse({"min_tx": "50ms", "min_rx": "50ms", "multiplier": 4,
                 "auth": {"type": "keyed-md5", "key_id": 2, "secret": "cfg"}})  # fmt: skip
    ka = a.add_configured(B, A, cfg)
    kb = b.add_configured(A, B, cfg)
    await wait_for(lambda: a.is_up(ka) and b.is_up(kb), what="both Up")
    row = a.snapshot()["sessions"][0]
    assert (row["multiplier"], row["authentication"]) == (4, "keyed-md5")
    assert row["detection_time_ms"] == 200.0  # 4 x 50 ms


def test_local_address_for():
    # What the routing table says ("ip route get": ... src X).
    route = subprocess.run(["ip", "route", "get", B], capture_output=True, text=True).stdout
    src = route.split(" src ", 1)[1].split()[0]
    assert BfdService.local_address_for(B) == src
    assert BfdService.local_address_for("::1") == "::1"
    with pytest.raises(OSError):
        BfdService.local_address_for("127.0.0.1", interface="no-such-if0")

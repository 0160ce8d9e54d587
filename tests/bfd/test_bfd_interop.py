"""bgpd's BFD against BIRD 2 and FRR's bfdd, in network namespaces joined by a veth pair.

bgpd runs as ``python -m bgpd.bfd`` in namespace a, the peer in namespace b. Failures are
made three ways: an nftables rule in b that drops everything on the veth (a silent path
cut), killing the peer (SIGKILL: no AdminDown), killing bgpd (the peer must notice). Times
are measured with the monotonic clock the runner stamps its events with (shared by every
process of the machine) and listed in the "BFD measurements" summary; assertions only
bound them loosely (detection time + 1 s of scheduling noise).

Takes about two minutes (the full scenarios restart daemons several times).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest
from bfd_peers import (
    BFDD,
    BIRD,
    BgpdBfd,
    BirdBfd,
    FrrBfdd,
    Neighbor,
    cut,
    heal,
    require_binary,
    wait_until,
)

from bgpd.bfd.packet import (
    AuthSection,
    AuthType,
    ControlPacket,
    State,
    encode,
)

pytestmark = pytest.mark.interop

DETECT = 0.9  # 300 ms x 3
NOISE = 1.0


def bgpd_args(local, peer, *extra, interval="300ms"):
    return ["--local", local, "--peer", peer, "--min-tx", interval, "--min-rx", interval,
            "--multiplier", "3", *extra]  # fmt: skip


def peer_is(peer, addr, *states):
    return lambda: (peer.state(addr) or "").lower() in [s.lower() for s in states]


def scenario(name, bgpd, peer, link, bgpd_addr, peer_addr, measure, *, full=True):
    """Up, a path cut, healed; then (full) the peer killed and restarted, bgpd killed and
    restarted, and bgpd's AdminDown."""
    bgpd.wait_state("Up", timeout=20)
    wait_until(peer_is(peer, bgpd_addr, "up"), 10, "the peer's session Up")
    time.sleep(1.5)
    assert bgpd.state() == "Up" and len([e for e in bgpd.states() if e["new"] == "Down"]) == 0

    # 1. The path is cut: bgpd must see its detection time expire.
    t0 = time.monotonic()
    cut(link.b, link.b_if)
    down = bgpd.wait_state("Down", after=t0, timeout=DETECT + 5)
    took = down["t"] - t0
    measure(name, "path cut -> bgpd Down (detection 0.9 s)", took)
    assert down["diag"] == 1 and down["failure"]
    assert took < DETECT + NOISE
    wait_until(peer_is(peer, bgpd_addr, "down", "init"), 10, "the peer's session down")
    t1 = time.monotonic()
    heal(link.b)
    up = bgpd.wait_state("Up", after=t1, timeout=15)
    measure(name, "path healed -> bgpd Up", up["t"] - t1)
    wait_until(peer_is(peer, bgpd_addr, "up"), 10, "the peer's session Up again")
    if not full:
        return

    # 2. The peer dies without a word.
    t2 = time.monotonic()
    peer.kill()
    down = bgpd.wait_state("Down", after=t2, timeout=DETECT + 5)
    measure(name, "peer killed -> bgpd Down", down["t"] - t2)
    assert down["diag"] == 1 and down["t"] - t2 < DETECT + NOISE
    t3 = time.monotonic()
    peer.start()
    up = bgpd.wait_state("Up", after=t3, timeout=20)
    measure(name, "peer restarted -> bgpd Up", up["t"] - t3)

    # 3. The other direction: bgpd dies, the peer notices.
    wait_until(peer_is(peer, bgpd_addr, "up"), 10, "the peer's session Up")
    t4 = time.monotonic()
    bgpd.kill()
    wait_until(peer_is(peer, bgpd_addr, "down", "init"), DETECT + 5, "the peer to see bgpd gone")
    measure(name, "bgpd killed -> peer Down (polled)", time.monotonic() - t4)
    t5 = time.monotonic()
    bgpd.start()
    bgpd.wait_state("Up", timeout=20)
    wait_until(peer_is(peer, bgpd_addr, "up"), 10, "the peer's session Up")
    measure(name, "bgpd restarted -> both Up", time.monotonic() - t5)

    # 4. bgpd's AdminDown takes the peer's session down (and not its own into a failure).
    bgpd.command("down")
    admin = bgpd.wait_state("AdminDown", timeout=5)
    assert not admin["failure"]
    wait_until(peer_is(peer, bgpd_addr, "down"), 5, "the peer's session down")
    if isinstance(peer, FrrBfdd):  # FRR says why
        (p,) = [p for p in peer.peers() if p["peer"] == bgpd_addr]
        assert p["remote-diagnostic"] == "administratively down"
    t6 = time.monotonic()
    bgpd.command("up")
    bgpd.wait_state("Up", after=t6, timeout=15)
    wait_until(peer_is(peer, bgpd_addr, "up"), 10, "the peer's session Up")


def send_raw(ns, src, dst, payloads, *, ttl=255, port=3784):
    """Send each payload from ``src`` (any port) to ``dst``:``port`` inside ``ns``."""
    code = (
        "import base64,socket,sys\n"
        f"fam = socket.AF_INET6 if ':' in {dst!r} else socket.AF_INET\n"
        "s = socket.socket(fam, socket.SOCK_DGRAM)\n"
        "if fam == socket.AF_INET6:\n"
        f"    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, {ttl})\n"
        "else:\n"
        f"    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, {ttl})\n"
        f"s.bind(({src!r}, 0))\n"
        "for line in sys.stdin.read().split():\n"
        f"    s.sendto(base64.b64decode(line), ({dst!r}, {port}))\n"
    )
    data = "\n".join(base64.b64encode(p).decode() for p in payloads)
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], input=data,
                   text=True, check=True, timeout=30)  # fmt: skip


# --- BIRD 2 ------------------------------------------------------------------------------------

BIRD_AUTH = {
    None: None,
    "simple": ("simple", 3, "pw-simple"),
    "keyed-md5": ("keyed md5", 4, "pw-md5"),
    "meticulous-keyed-md5": ("meticulous keyed md5", 5, "pw-mmd5"),
    "keyed-sha1": ("keyed sha1", 6, "pw-sha1"),
    "meticulous-keyed-sha1": ("meticulous keyed sha1", 7, "pw-msha1"),
}


def bgpd_auth_args(atype):
    if atype is None:
        return []
    _, key_id, secret = BIRD_AUTH[atype]
    return ["--auth-type", atype, "--auth-key-id", str(key_id), "--auth-secret", secret]


@pytest.mark.parametrize(
    "atype", [None, "meticulous-keyed-sha1"], ids=["no-auth", "meticulous-keyed-sha1"]
)
def test_bird_full_scenario(link, procs, measure, atype):
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4()
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a4, b4)], auth=BIRD_AUTH[atype])
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, *bgpd_auth_args(atype)))
    procs.append(bgpd)
    bgpd.start()
    scenario(f"bird2 ipv4 {atype or 'no-auth'}", bgpd, bird, link, a4, b4, measure)
    snap = bgpd.snapshot()["sessions"][0]
    assert snap["state"] == "Up" and snap["authentication"] == atype
    assert snap["dropped"] == {}


@pytest.mark.parametrize("atype", ["simple", "keyed-md5", "meticulous-keyed-md5", "keyed-sha1"])
def test_bird_authentication(link, procs, measure, atype):
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4()
    # bgpd first this time: BIRD joins a session that is already sending.
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, *bgpd_auth_args(atype)))
    procs.append(bgpd)
    bgpd.start()
    time.sleep(1.0)
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a4, b4)], auth=BIRD_AUTH[atype])
    procs.append(bird)
    bird.start()
    scenario(f"bird2 ipv4 {atype}", bgpd, bird, link, a4, b4, measure, full=False)
    snap = bgpd.snapshot()["sessions"][0]
    assert snap["authentication"] == atype and snap["dropped"] == {} and snap["rx"] > 5


def test_bird_wrong_secret_never_comes_up(link, procs):
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4()
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a4, b4)], auth=("keyed sha1", 6, "right"))
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, "--auth-type", "keyed-sha1", "--auth-key-id", "6",
                                     "--auth-secret", "wrong"))  # fmt: skip
    procs.append(bgpd)
    bgpd.start()
    time.sleep(4.0)
    snap = bgpd.snapshot()
    assert bgpd.states() == [] and snap["sessions"][0]["state"] == "Down"
    assert snap["drops"]["auth_failure"] >= 3
    assert bird.state(a4) != "Up"


def test_bird_ipv6_and_bad_input(link, procs, measure):
    require_binary(BIRD, "bird2")
    (a6, b6) = link.v6()
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a6, b6)])
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a6, b6))
    procs.append(bgpd)
    bgpd.start()
    scenario("bird2 ipv6 no-auth", bgpd, bird, link, a6, b6, measure, full=False)

    # Bad input from the peer's own address, while the session is Up.
    snap = bgpd.snapshot()["sessions"][0]
    mine, theirs = snap["local_discriminator"], snap["remote_discriminator"]
    flaps = snap["flaps"]  # one, from the path cut
    down = encode(ControlPacket(state=State.DOWN, my_disc=theirs, your_disc=mine))
    signed = encode(
        ControlPacket(state=State.DOWN, my_disc=theirs, your_disc=mine,
                      auth=AuthSection(AuthType.KEYED_SHA1, 1, sequence=9)),
        b"guess",
    )  # fmt: skip
    bad = [
        down[:12],  # truncated
        down[:3] + b"\x40" + down[4:],  # Length beyond the datagram: truncated
        b"\xe0" + down[1:],  # version 7
        down[:2] + b"\x00" + down[3:],  # Detect Mult 0: malformed
        down[:4] + bytes(4) + down[8:],  # My Discriminator 0: malformed
        signed,  # authentication where none is configured
        down[:8] + (mine ^ 0x5A5A).to_bytes(4, "big") + down[12:],  # unknown discriminator
    ]
    send_raw(link.b, b6, a6, bad)
    send_raw(link.b, b6, a6, [down], ttl=254)  # a Down that would end the session: TTL 254
    send_raw(link.b, b6, a6, [down], ttl=1)
    time.sleep(1.0)
    drops = bgpd.snapshot()["drops"]
    assert drops == {
        "malformed": 2,
        "truncated": 2,
        "wrong_version": 1,
        "wrong_ttl": 2,
        "auth_failure": 1,
        "no_session": 1,
    }
    assert bgpd.state() == "Up" and bird.state(a6) == "Up"
    assert bgpd.snapshot()["sessions"][0]["flaps"] == flaps


def test_bird_multihop(link, procs, measure):
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4()
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a4, b4, multihop=True)])
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, "--multihop"))
    procs.append(bgpd)
    bgpd.start()
    scenario("bird2 ipv4 multihop", bgpd, bird, link, a4, b4, measure, full=False)
    snap = bgpd.snapshot()
    assert snap["sockets"] == [{"local": a4, "port": 4784, "sessions": 1}]


def test_multihop_min_ttl_refuses_birds_ttl_64(link, procs):
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4()
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a4, b4, multihop=True)])
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, "--multihop", "--min-ttl", "250"))
    procs.append(bgpd)
    bgpd.start()
    time.sleep(3.0)
    snap = bgpd.snapshot()
    assert snap["drops"]["wrong_ttl"] >= 2 and bgpd.states() == []


# --- FRR bfdd ----------------------------------------------------------------------------------


def test_frr_full_scenario(link, procs, measure):
    require_binary(BFDD, "frr")
    (a4, b4) = link.v4()
    frr = FrrBfdd(link.b, [Neighbor(a4, b4)])
    procs.append(frr)
    frr.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4))
    procs.append(bgpd)
    bgpd.start()
    scenario("frr bfdd ipv4 no-auth", bgpd, frr, link, a4, b4, measure)
    snap = bgpd.snapshot()["sessions"][0]
    assert snap["state"] == "Up" and snap["dropped"] == {}


def test_frr_ipv6_bgpd_first(link, procs, measure):
    require_binary(BFDD, "frr")
    (a6, b6) = link.v6()
    bgpd = BgpdBfd(link.a, bgpd_args(a6, b6))
    procs.append(bgpd)
    bgpd.start()
    time.sleep(1.0)
    frr = FrrBfdd(link.b, [Neighbor(a6, b6)])
    procs.append(frr)
    frr.start()
    scenario("frr bfdd ipv6 no-auth", bgpd, frr, link, a6, b6, measure, full=False)


def test_frr_multihop(link, procs, measure):
    require_binary(BFDD, "frr")
    (a4, b4) = link.v4()
    frr = FrrBfdd(link.b, [Neighbor(a4, b4, multihop=True)])
    procs.append(frr)
    frr.start()
    # FRR sends multihop packets with TTL 255, so a strict minimum works with it.
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, "--multihop", "--min-ttl", "254"))
    procs.append(bgpd)
    bgpd.start()
    scenario("frr bfdd ipv4 multihop", bgpd, frr, link, a4, b4, measure, full=False)


def test_frr_has_no_authentication(link, procs):
    """FRR 8.4's bfdd has no authentication: bgpd with auth refuses its packets, counted."""
    require_binary(BFDD, "frr")
    (a4, b4) = link.v4()
    frr = FrrBfdd(link.b, [Neighbor(a4, b4)])
    procs.append(frr)
    frr.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a4, b4, "--auth-type", "keyed-sha1", "--auth-secret", "x"))
    procs.append(bgpd)
    bgpd.start()
    time.sleep(3.0)
    snap = bgpd.snapshot()
    assert bgpd.states() == [] and snap["drops"]["auth_failure"] >= 2


def test_bird_ipv6_link_local(link, procs, measure):
    """fe80::/10 on both sides: bgpd's session is bound to its interface (scope id)."""
    require_binary(BIRD, "bird2")
    a_ll, b_ll = link.link_local("a"), link.link_local("b")
    bird = BirdBfd(link.b, link.b_if, [Neighbor(a_ll, b_ll)])
    procs.append(bird)
    bird.start()
    bgpd = BgpdBfd(link.a, bgpd_args(a_ll, b_ll, "--interface", link.a_if))
    procs.append(bgpd)
    bgpd.start()
    scenario("bird2 ipv6 link-local", bgpd, bird, link, a_ll, b_ll, measure, full=False)
    snap = bgpd.snapshot()["sessions"][0]
    assert snap["interface"] == link.a_if and snap["dropped"] == {}

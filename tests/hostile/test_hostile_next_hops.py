"""The RFC 7606 matrix over a real session, continued: next hops that are not host addresses,
confederation segments, and a Shutdown Communication that is not valid UTF-8.

Same method as ``test_hostile_rfc7606.py``: a hand-rolled peer announces a good route, then the
same prefix again with the one thing under test changed, and the speaker must

* treat the routes as withdrawn: the prefix leaves ``show routes`` and the witness (an eBGP
  peer) is told, the session stays Established, no NOTIFICATION is sent, and the session log
  says ``malformed update`` with the code and subcode (3/8 Invalid NEXT_HOP, 3/11 Malformed
  AS_PATH) and ``treat-as-withdraw``;
* leave the witness session untouched.

Next hops (``bgpd/wire/nexthop.py`` has the table and the RFC sections): 0.0.0.0/8, 127/8,
224/4, 240/4 with 255.255.255.255 in NEXT_HOP; ::, ::1, ff00::/8 and an IPv4-mapped address of
a bad class in an MP_REACH_NLRI next hop; an IPv6 next hop for IPv4 NLRI without RFC 8950;
each from an internal and an external peer. Before: 0.0.0.1 and 127.0.0.1 were accepted, and
MP_REACH_NLRI next hops were not checked at all. The sessions here run between loopback
addresses, where bgpd accepts a peer's loopback next hops (``loopback_next_hop: auto``; the
peer is this host): the loopback cases run on neighbors configured ``reject``, and one case
checks that ``auto`` accepts them.

Confederation segments (RFC 5065 §5, RFC 7606 §7.2): bgpd is in no confederation, so an
AS_CONFED_SEQUENCE or AS_CONFED_SET from any peer is a Malformed AS_PATH. Before: accepted.
"""

import asyncio
import dataclasses
from dataclasses import dataclass

import pytest
from hostile_peer import RawPeer, attr, ip, ports, routes, speaker_config, start_speaker, until
from hostile_peer import update as update_message
from structlog.testing import capture_logs

from bgpd.fsm import session_keys
from bgpd.wire import Notification
from bgpd.wire import prefix as pfx

# Addresses of PYTEST_XDIST_WORKER gw13 (127.0.14.x), outside the interop pool (.10 up).
SPEAKER = "127.0.14.211"
IBGP, EBGP, WITNESS = "127.0.14.212", "127.0.14.213", "127.0.14.214"
IBGP_STRICT, EBGP_STRICT = "127.0.14.215", "127.0.14.216"
ASN = {IBGP: 65000, IBGP_STRICT: 65000, EBGP: 65001, EBGP_STRICT: 65003, WITNESS: 65002}
STRICT = {IBGP_STRICT, EBGP_STRICT}  # loopback_next_hop: reject

WK, OPT = 0x40, 0x80
NH_OK = ip("192.0.2.1")
NH6_OK = ip("2001:db8::1")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def as_path(session: str, confed: int | None = None) -> bytes:
    """The AS_PATH a peer sends (its own AS first for eBGP), maybe led by a confederation
    segment of type ``confed``."""
    value = b""
    if confed is not None:
        value += bytes((confed, 1)) + u32(64512)
    if ASN[session] != 65000:
        value += b"\x02\x01" + u32(ASN[session])
    return attr(WK, 2, value)


def mp_reach(afi: int, nh: bytes, nlri: bytes) -> bytes:
    return attr(OPT, 14, afi.to_bytes(2, "big") + bytes((1, len(nh))) + nh + b"\x00" + nlri)


@dataclass(frozen=True)
class Case:
    name: str
    next_hop: bytes | None = None  # NEXT_HOP attribute value (IPv4 NLRI)
    mp: tuple | None = None  # (afi, next hop) of an MP_REACH_NLRI
    confed: int | None = None  # a leading AS_CONFED_* segment of this type
    strict: bool = False  # on a neighbor with loopback_next_hop: reject
    expect: str = "withdraw"  # or "accept"
    subcode: int = 8


MAPPED = bytes(10) + b"\xff\xff"

CASES = [
    Case("NEXT_HOP-this-network-0.0.0.1", next_hop=ip("0.0.0.1")),
    Case("NEXT_HOP-loopback-127.0.0.1", next_hop=ip("127.0.0.1"), strict=True),
    Case("NEXT_HOP-multicast-239.1.1.1", next_hop=ip("239.1.1.1")),
    Case("NEXT_HOP-reserved-240.0.0.1", next_hop=ip("240.0.0.1")),
    Case("NEXT_HOP-broadcast", next_hop=ip("255.255.255.255")),
    Case("NEXT_HOP-loopback-from-this-host", next_hop=ip("127.0.0.1"), expect="accept"),
    Case("MP-v6-unspecified", mp=(2, bytes(16))),
    Case("MP-v6-loopback", mp=(2, ip("::1")), strict=True),
    Case("MP-v6-multicast", mp=(2, ip("ff02::1"))),
    Case("MP-v6-multicast+link-local", mp=(2, ip("ff02::1") + ip("fe80::1"))),
    Case("MP-v6-mapped-240.0.0.1", mp=(2, MAPPED + ip("240.0.0.1"))),
    Case("MP-v6-mapped-loopback", mp=(2, MAPPED + ip("127.0.0.1")), strict=True),
    Case("MP-v4-loopback", mp=(1, ip("127.0.0.2")), strict=True),
    Case("MP-v4-over-v6-without-rfc8950", mp=(1, NH6_OK)),
    Case("MP-v6-link-local-only", mp=(2, ip("fe80::1")), expect="accept"),
    Case("AS_CONFED_SEQUENCE", confed=3, subcode=11),
    Case("AS_CONFED_SET", confed=4, subcode=11),
]


def build(case: Case, session: str, i: int, good: bool) -> tuple[bytes, str]:
    """The good UPDATE or the one under test, and its prefix."""
    afi = case.mp[0] if case.mp else 1
    text = f"2001:db8:{0x100 + i:x}::/48" if afi == 2 else f"10.14.{i}.0/24"
    p = pfx.from_str(text)
    head = attr(WK, 1, b"\x00") + as_path(session, None if good else case.confed)
    if ASN[session] == 65000:
        tail = attr(WK, 5, u32(100))
    else:
        tail = b""
    tail += attr(OPT, 4, u32(100 if good else 200))  # MED: which UPDATE the route came from
    if case.mp is None:
        nh = NH_OK if good or case.next_hop is None else case.next_hop
        return update_message(head + attr(WK, 3, nh) + tail, p), text
    nh = case.mp[1] if not good else (NH6_OK if afi == 2 else NH_OK)
    return update_message(mp_reach(afi, nh, p) + head + tail, b""), text


@pytest.fixture
async def rig():
    port = next(ports)
    neighbors = [
        # IPv4 sessions carry IPv6 routes to the witness with this next hop.
        {"address": a, "asn": asn, "port": port, "passive": True, "next_hop_ipv6": "2001:db8::211"}
        | ({"loopback_next_hop": "reject"} if a in STRICT else {})
        for a, asn in ASN.items()
    ]
    cfg = speaker_config(SPEAKER, port, neighbors, router_id="10.0.14.211")
    speaker = await start_speaker(cfg)
    for a in ASN:
        _apply_session_keys(speaker, a)
    peers: list[RawPeer] = []

    async def peer(address: str) -> RawPeer:
        rp = RawPeer(address, SPEAKER, port, ASN[address])
        peers.append(rp)
        await rp.connect()
        assert await until(lambda: speaker.neighbors[address].session.established)
        return rp

    witness = await peer(WITNESS)
    try:
        yield speaker, peer, witness
    finally:
        for rp in peers:
            await rp.close()
        await speaker.stop()


def _apply_session_keys(speaker, address: str) -> None:
    """The neighbor keys the FSM reads (``bgpd.fsm.session_keys``: here loopback_next_hop) into
    its session settings, as ``Speaker.settings_for`` is to do (idempotent once it does)."""
    n = speaker.neighbors[address]
    settings = dataclasses.replace(n.session.settings, **session_keys(n.cfg))
    n.session.settings = settings
    n.session.fsm.update_settings(settings)


@pytest.mark.parametrize("ebgp", [False, True], ids=["ibgp", "ebgp"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_next_hop_and_confed_over_a_session(rig, case: Case, ebgp: bool):
    speaker, peer, witness = rig
    session_name = (
        (EBGP_STRICT if ebgp else IBGP_STRICT) if case.strict else (EBGP if ebgp else IBGP)
    )
    witness_session = speaker.neighbors[WITNESS].session
    witness_since = witness_session.fsm.stats.established_at
    rp = await peer(session_name)
    n = speaker.neighbors[session_name]
    i = CASES.index(case) * 2 + ebgp + 1

    good, prefix = build(case, session_name, i, good=True)
    rp.send(good)
    assert await until(lambda: routes(speaker, prefix)), f"good route {prefix} not accepted"
    key = pfx.from_str(prefix)
    assert await until(lambda: key in witness.announced())

    bad, _ = build(case, session_name, i, good=False)
    with capture_logs() as logs:
        rp.send(bad)
        if case.expect == "withdraw":
            assert await until(lambda: not routes(speaker, prefix)), "not treated as withdrawn"
            assert await until(lambda: key not in witness.announced()), "witness not told"
        else:
            assert await until(lambda: (routes(speaker, prefix) or [{}])[0].get("med") == 200)
    assert n.session.established and not rp.eof
    assert rp.notifications() == []
    malformed = [e for e in logs if e["event"] == "malformed update"]
    if case.expect == "withdraw":
        assert len(malformed) == 1, logs
        m = malformed[0]
        assert (m["code"], m["subcode"], m["action"]) == (3, case.subcode, "treat-as-withdraw")
    else:
        assert malformed == []

    await asyncio.sleep(0)
    assert witness_session.established
    assert witness_session.fsm.stats.established_at == witness_since
    assert not witness.eof and witness.notifications() == []


@pytest.mark.parametrize(
    "data, shown, raw",
    [
        (
            b"\x03\x80\x81\x82",
            "invalid shutdown communication (not valid UTF-8 (octet 0: invalid start byte)): 808182",
            "808182",
        ),
        (
            b"\x0aABC",
            "invalid shutdown communication (length octet 10 but 3 octets follow): 0a414243",
            "0a414243",
        ),
        (b"\x05maint", "Administrative Shutdown: 'maint'", None),
    ],
    ids=["bad-utf8", "bad-length", "valid"],
)
async def test_shutdown_communication_over_a_session(rig, data, shown, raw):
    """RFC 9003 §4: an invalid Shutdown Communication is reported as invalid with its octets
    (the session's last error, which ``show neighbors`` shows, and the session log), never as text with replacement
    characters (before: '\ufffd\ufffd\ufffd' in both)."""
    speaker, peer, witness = rig
    rp = await peer(IBGP)
    with capture_logs() as logs:
        rp.send(Notification(6, 2, data).encode())
        assert await until(lambda: not speaker.neighbors[IBGP].session.established)
    session = speaker.neighbors[IBGP].session
    last_error = session.last_error or session.fsm.last_error  # show neighbors' last_error
    assert shown in last_error, last_error
    assert "\ufffd" not in last_error
    [got] = [e for e in logs if e["event"] == "notification received"]
    if raw is None:
        assert got["message"] == "maint" and "message_hex" not in got
    else:
        assert "message" not in got and got["message_hex"] == raw, got
        assert got["invalid_message"] in shown
    assert witness.notifications() == [] and speaker.neighbors[WITNESS].session.established

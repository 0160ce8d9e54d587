"""bgpd against BIRD 2 only: TCP MD5, GTSM and a two-octet-AS peer.

bgpd runs as a real process (``bgpd run``); see test_sessions.py for what every daemon is
tested for. BIRD accepts bgpd's 127.0.0.x next hop, so every route check here is direct.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
import time
from pathlib import Path

import pytest

try:
    from . import peers
except ImportError:  # pragma: no cover - depends on how pytest imports this dir
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peers  # type: ignore[no-redef]

pytestmark = pytest.mark.interop

BGPD_AS = 4200000001
BIRD_AS = 65010
AS_TRANS = 23456
ROUTE = {
    "prefix": "10.10.0.0/24",
    "next_hop": "192.0.2.10",
    "communities": ["65010:1"],
    "med": 5,
}


def _one(paths: list[dict]) -> dict:
    assert len(paths) == 1, paths
    return paths[0]


def _never_established(d, addresses: list[str], seconds: float) -> dict[str, dict]:
    """Poll for ``seconds``: none of the sessions may come up. Returns the last view."""
    deadline = time.monotonic() + seconds
    while True:
        view = {a: d.neighbor(a) for a in addresses}
        for a, n in view.items():
            assert n["state"] != "Established", (a, n)
        if time.monotonic() >= deadline:
            return view
        time.sleep(0.2)


# --------------------------------------------------------------------------------------
# TCP MD5 (RFC 2385)
# --------------------------------------------------------------------------------------


def test_md5_right_password_establishes(bird, bgpd, addresses):
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "password": "s3cret-42"}],
        routes=[ROUTE],
    )
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[{"address": a_bird, "asn": BIRD_AS, "password": "s3cret-42"}],
        networks=["10.244.12.0/26"],
    )
    d.wait_state(a_bird)
    p = _one(d.wait_route("10.10.0.0/24"))
    assert p["next_hop"] == "192.0.2.10" and p["as_path"] == [BIRD_AS] and p["med"] == 5
    p = _one(b.wait_route("10.244.12.0/26"))
    assert p["as_path"] == [BGPD_AS] and p["next_hop"] == a_bgpd
    # The password is never shown or logged.
    assert "s3cret-42" not in d.log_text()
    assert "s3cret-42" not in d.cli("show", "neighbors", "--json").stdout


def test_md5_wrong_password_no_session_and_bgpd_says_why(bird, bgpd, addresses):
    """BIRD A is passive (only bgpd connects), BIRD B is active and bgpd passive.

    With a wrong key the kernel drops every segment silently on both ends, so no session
    ever starts. When bgpd connects, its connect attempts time out and it says that MD5 is
    the likely cause. When bgpd only listens, it never sees a thing (the kernel drops the
    SYNs before any socket does): the neighbor just stays Active with no error.
    """
    a_bgpd, a_a, a_b = addresses(), addresses(), addresses()
    key = {"password": "the-right-one"}
    bird(
        asn=BIRD_AS,
        address=a_a,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "passive": True, **key}],
    )
    b = bird(asn=BIRD_AS, address=a_b, neighbors=[{"address": a_bgpd, "asn": BGPD_AS, **key}])
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[
            {"address": a_a, "asn": BIRD_AS, "password": "not-it"},
            {"address": a_b, "asn": BIRD_AS, "password": "not-it", "passive": True},
        ],
    )
    view = _never_established(d, [a_a, a_b], 5.0)
    err = view[a_a]["last_error"] or ""
    assert "timed out" in err and "MD5" in err and "password" in err, err
    assert view[a_a]["messages"]["in"]["total"] == 0
    # Passive: nothing reached bgpd at all.
    assert view[a_b]["state"] == "Active"
    assert view[a_b]["messages"]["in"]["total"] == 0
    assert b.state(a_bgpd) != "Established"
    assert "not-it" not in d.log_text()


# --------------------------------------------------------------------------------------
# GTSM (RFC 5082)
# --------------------------------------------------------------------------------------


def test_gtsm_with_bird_ttl_security(bird, bgpd, addresses):
    """bgpd ``ttl_security: 1`` with BIRD ``ttl security on``: both send TTL 255 and accept
    only 255 (loopback does not decrement the TTL). Both connect, so both directions of
    the handshake go through the GTSM checks."""
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "ttl_security": True}],
        routes=[ROUTE],
    )
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[{"address": a_bird, "asn": BIRD_AS, "ttl_security": 1}],
        networks=["10.244.12.0/26"],
    )
    d.wait_state(a_bird)
    assert b.wait_state(a_bgpd) == "Established"
    _one(d.wait_route("10.10.0.0/24"))
    _one(b.wait_route("10.244.12.0/26"))


def test_gtsm_refuses_a_peer_without_it(bird, bgpd, addresses):
    """The same BIRD without ``ttl security`` sends with TTL 1 (``multihop 1``): bgpd's
    socket drops those segments, so no session comes up (bgpd connects; BIRD is passive)."""
    a_bird, a_bgpd = addresses(), addresses()
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS, "passive": True}],
    )
    d = bgpd(
        asn=BGPD_AS,
        address=a_bgpd,
        neighbors=[{"address": a_bird, "asn": BIRD_AS, "ttl_security": 1}],
    )
    view = _never_established(d, [a_bird], 5.0)
    n = view[a_bird]
    assert n["messages"]["in"]["total"] == 0, n  # nothing BIRD sent got through
    assert b.state(a_bgpd) != "Established"


# --------------------------------------------------------------------------------------
# A two-octet-AS peer (RFC 6793)
# --------------------------------------------------------------------------------------


class MrtBirdPeer(peers.BirdPeer):
    """BIRD that also writes every BGP message it receives to an MRT file (BGP4MP)."""

    @property
    def mrt_path(self) -> Path:
        return self.workdir / "received.mrt"

    def render_config(self) -> str:
        head = f'mrtdump "{self.mrt_path}";\nmrtdump protocols {{ messages }};\n'
        return head + super().render_config()


def _updates_in_mrt(path: Path) -> list[dict]:
    """The UPDATEs of a BGP4MP MRT file, with the raw AS_PATH of 2-octet sessions.

    Only what the test needs: IPv4 NLRI, AS_PATH (2-octet ASNs: the session is not AS4)
    and AS4_PATH, as flat lists.
    """
    data = path.read_bytes()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        _ts, mtype, subtype, length = struct.unpack_from("!IHHI", data, pos)
        body = data[pos + 12 : pos + 12 + length]
        pos += 12 + length
        if mtype not in (16, 17) or subtype not in (1, 4):
            continue
        as_len = 4 if subtype == 4 else 2
        afi = struct.unpack_from("!H", body, 2 * as_len + 2)[0]
        ip_len = 4 if afi == 1 else 16
        msg = body[2 * as_len + 4 + 2 * ip_len :]
        if len(msg) < 19 or msg[18] != 2:
            continue
        wlen = struct.unpack_from("!H", msg, 19)[0]
        alen = struct.unpack_from("!H", msg, 21 + wlen)[0]
        attrs = msg[23 + wlen : 23 + wlen + alen]
        nlri = msg[23 + wlen + alen :]
        upd: dict = {"as_path": None, "as4_path": None, "nlri": []}
        i = 0
        while i < len(attrs):
            flags, code = attrs[i], attrs[i + 1]
            if flags & 0x10:
                alen2 = struct.unpack_from("!H", attrs, i + 2)[0]
                i += 4
            else:
                alen2 = attrs[i + 2]
                i += 3
            value = attrs[i : i + alen2]
            i += alen2
            if code in (2, 17):
                width = 2 if code == 2 else 4
                asns, j = [], 0
                while j < len(value):
                    count = value[j + 1]
                    j += 2
                    for _ in range(count):
                        asns.append(int.from_bytes(value[j : j + width], "big"))
                        j += width
                upd["as_path" if code == 2 else "as4_path"] = asns
        j = 0
        while j < len(nlri):
            plen = nlri[j]
            octets = (plen + 7) // 8
            raw = nlri[j + 1 : j + 1 + octets].ljust(4, b"\0")
            upd["nlri"].append(f"{ipaddress.IPv4Address(raw)}/{plen}")
            j += 1 + octets
        out.append(upd)
    return out


def test_two_octet_peer_sees_as_trans_and_bgpd_rebuilds_from_as4_path(bird, bgpd, addresses):
    """``old`` is BIRD with ``enable as4 off`` (AS 65011), ``new`` a four-octet BIRD
    (AS 4200000002); bgpd (AS 65001) sits between them.

    bgpd's own AS must fit in two octets here: BIRD with ``enable as4 off`` cannot be
    configured with a four-octet neighbor AS, and it still reads the four-octet AS
    capability of an OPEN, so it refuses a four-octet-AS speaker whatever it is told
    (Bad Peer AS, 4200000001 against AS_TRANS).

    * new -> bgpd -> old: bgpd sends AS_PATH with AS_TRANS for every four-octet ASN plus
      AS4_PATH with the real ones. What ``old`` received is read from its MRT dump;
      BIRD itself merges AS4_PATH back (it is a NEW speaker in an OLD session), so its CLI
      shows the real path.
    * old -> bgpd -> new: ``old`` sends AS_TRANS + AS4_PATH for its four-octet prepend;
      bgpd rebuilds the real path, shows it, and passes it on to ``new``.
    """
    a_bgpd, a_old, a_new = addresses(), addresses(), addresses()
    old = MrtBirdPeer(
        name="old",
        address=a_old,
        asn=65011,
        neighbors=[{"address": a_bgpd, "asn": 65001, "as4": False}],
        routes=[
            {
                "prefix": "10.11.0.0/24",
                "next_hop": "192.0.2.11",
                "as_path_prepend": [4200000099, 65012],
            }
        ],
    )
    bird.peers.append(old)  # the fixture stops it and shows its log on failure
    old.start()
    new = bird(
        asn=4200000002,
        address=a_new,
        neighbors=[{"address": a_bgpd, "asn": 65001}],
        routes=[
            {"prefix": "10.20.0.0/24", "next_hop": "192.0.2.20", "as_path_prepend": [4200000098]}
        ],
    )
    d = bgpd(
        asn=65001,
        address=a_bgpd,
        neighbors=[{"address": a_old, "asn": 65011}, {"address": a_new, "asn": 4200000002}],
        networks=["10.244.12.0/26"],
    )
    n = d.wait_state(a_old)
    assert "four-octet-as" not in n["capabilities"], n["capabilities"]
    assert "four-octet-as" in d.wait_state(a_new)["capabilities"]

    # old -> bgpd: AS_TRANS in AS_PATH, rebuilt from AS4_PATH.
    p = _one(d.wait_route("10.11.0.0/24"))
    assert p["as_path"] == [65011, 4200000099, 65012], p
    assert AS_TRANS not in p["as_path"]
    p = _one(new.wait_route("10.11.0.0/24"))  # and passed on, whole
    assert p["as_path"] == [65001, 65011, 4200000099, 65012]

    # new -> bgpd -> old: on the wire, AS_TRANS and AS4_PATH.
    p = _one(d.wait_route("10.20.0.0/24"))
    assert p["as_path"] == [4200000002, 4200000098]
    p = _one(old.wait_route("10.20.0.0/24"))
    assert p["as_path"] == [65001, 4200000002, 4200000098]  # BIRD merged AS4_PATH itself
    deadline = time.monotonic() + 10
    while True:
        seen = [u for u in _updates_in_mrt(old.mrt_path) if "10.20.0.0/24" in u["nlri"]]
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen, "no UPDATE for 10.20.0.0/24 in the MRT dump"
    assert seen[-1]["as_path"] == [65001, AS_TRANS, AS_TRANS], seen
    assert seen[-1]["as4_path"] == [65001, 4200000002, 4200000098], seen
    # Our own prefix: AS 65001 fits in two octets, so no AS4_PATH is needed.
    own = [u for u in _updates_in_mrt(old.mrt_path) if "10.244.12.0/26" in u["nlri"]]
    assert own and own[-1]["as_path"] == [65001] and own[-1]["as4_path"] is None, own

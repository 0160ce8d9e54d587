"""The Control packet codec: byte-exact vectors both ways, captures, scapy, malformed input.

Vectors are ``(hex, ControlPacket)`` pairs tested for both decode and encode. The hand-made
ones follow RFC 5880 §4.1-4.4 field by field; the captured ones are what BIRD 2.0.12 and
FRR 8.4 bfdd sent to us: each daemon ran in a namespace with one single-hop neighbor across
a veth pair, and a plain UDP socket bound to the neighbor's address on port 3784 in the other
namespace printed the payloads (``recvfrom``; TTL 255 by IP_RECVTTL). BIRD ran once per
``authentication`` type with ``password "secret" { id 7; }``, so its keyed packets check our
hashing: the digest we compute over BIRD's packet must be the one BIRD sent.
"""

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from bgpd.bfd.packet import (
    MALFORMED,
    TRUNCATED,
    WRONG_VERSION,
    AuthSection,
    AuthType,
    ControlPacket,
    Diag,
    Drop,
    State,
    decode,
    digest_of,
    encode,
)

SECRET = b"secret"  # what the BIRD captures were signed with (key id 7)

# --- hand-made vectors (RFC 5880 §4) ------------------------------------------------------------

VECTORS = [
    (
        "minimal Down packet, Your Discriminator still zero",
        "20"  # Vers 1, Diag 0
        "40"  # Sta 1 (Down), no flags
        "03"  # Detect Mult 3
        "18"  # Length 24
        "00000001"  # My Discriminator 1
        "00000000"  # Your Discriminator 0
        "000f4240"  # Desired Min TX 1,000,000 µs (the slow rate while not Up)
        "000493e0"  # Required Min RX 300,000 µs
        "00000000",  # Required Min Echo RX 0: no echo
        ControlPacket(
            state=State.DOWN,
            my_disc=1,
            desired_min_tx=1_000_000,
            required_min_rx=300_000,
        ),
    ),
    (
        "Up with Poll: the start of a poll sequence after coming Up",
        "20"  # Vers 1, Diag 0
        "e0"  # Sta 3 (Up) << 6 | P (0x20)
        "03"
        "18"
        "0000000a"  # My Discriminator 10
        "0000000b"  # Your Discriminator 11
        "000186a0"  # Desired Min TX 100,000 µs
        "000186a0"  # Required Min RX 100,000 µs
        "00000000",
        ControlPacket(
            state=State.UP,
            my_disc=10,
            your_disc=11,
            desired_min_tx=100_000,
            required_min_rx=100_000,
            poll=True,
        ),
    ),
    (
        "Final answering a poll, multiplier 5",
        "20d005180000000b0000000a000186a0000186a000000000",
        # d0 = Up (0xc0) | F (0x10)
        ControlPacket(
            state=State.UP,
            my_disc=11,
            your_disc=10,
            detect_mult=5,
            desired_min_tx=100_000,
            required_min_rx=100_000,
            final=True,
        ),
    ),
    (
        "Down with diag 1 (detection time expired), C and D bits",
        "21"  # Vers 1 << 5 | Diag 1
        "4a"  # Down (0x40) | C (0x08) | D (0x02)
        "03180000000100000000000f4240000f424000000000",
        ControlPacket(
            state=State.DOWN,
            my_disc=1,
            diag=Diag.DETECTION_EXPIRED,
            desired_min_tx=1_000_000,
            required_min_rx=1_000_000,
            cpi=True,
            demand=True,
        ),
    ),
    (
        "AdminDown, diag 7, all-ones discriminators and intervals",
        "27"  # Vers 1, Diag 7 (Administratively Down)
        "00"  # Sta 0 (AdminDown)
        "ff"  # Detect Mult 255
        "18ffffffffffffffffffffffffffffffffffffffff",
        ControlPacket(
            state=State.ADMIN_DOWN,
            my_disc=0xFFFFFFFF,
            your_disc=0xFFFFFFFF,
            diag=Diag.ADMIN_DOWN,
            detect_mult=255,
            desired_min_tx=0xFFFFFFFF,
            required_min_rx=0xFFFFFFFF,
            required_min_echo_rx=0xFFFFFFFF,
        ),
    ),
    (
        "simple password, key id 7, 'secret' (RFC 5880 §4.2)",
        "20"
        "44"  # Down | A (0x04)
        "03"
        "21"  # Length 33 = 24 + Auth Len 9
        "e743f6f500000000000f4240000493e000000000"
        "01"  # Auth Type 1 (Simple Password)
        "09"  # Auth Len 9 = 3 + 6
        "07"  # Auth Key ID 7
        "736563726574",  # "secret"
        ControlPacket(
            state=State.DOWN,
            my_disc=0xE743F6F5,
            desired_min_tx=1_000_000,
            required_min_rx=300_000,
            auth=AuthSection(AuthType.SIMPLE, 7, password=SECRET),
        ),
    ),
]


@pytest.mark.parametrize("what, hexdata, packet", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_decodes(what, hexdata, packet):
    got = decode(bytes.fromhex(hexdata))
    assert got == packet
    assert got.raw == bytes.fromhex(hexdata)


@pytest.mark.parametrize("what, hexdata, packet", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_encodes(what, hexdata, packet):
    secret = packet.auth.password if packet.auth else None
    assert encode(packet, secret).hex() == hexdata


# --- captures from real peers --------------------------------------------------------------------

# FRR 8.4 bfdd, single hop, Down (its 1 s slow rate on both intervals, echo rx 50 ms).
FRR_DOWN = "204003182209973a00000000000f4240000f42400000c350"

# BIRD 2.0.12 (min rx/tx interval 300 ms, multiplier 3), Down, one capture per
# authentication type; key id 7, secret "secret". Two consecutive packets of each keyed type:
# keyed increments its sequence about once a second, meticulous on every packet.
BIRD = {
    None: ["204003183bd62b6200000000000f4240000493e000000000"],
    AuthType.SIMPLE: ["20440321e743f6f500000000000f4240000493e000000000010907736563726574"],
    AuthType.KEYED_MD5: [
        "20440330cd1c3a2500000000000f4240000493e0000000000218070039617b126dc227f24d65c71210f1b3508e3a16c6",
        "20440330cd1c3a2500000000000f4240000493e0000000000218070039617b13d515e40f34a440dfadd2d6afde8f59a4",
    ],
    AuthType.METICULOUS_KEYED_MD5: [
        "204403300fdd5f6d00000000000f4240000493e000000000031807009f4e922fed432f1c853cee08dab1e3964d8b09ad",
        "204403300fdd5f6d00000000000f4240000493e000000000031807009f4e92307a403cacf116a60d6009c74da4adec66",
    ],
    AuthType.KEYED_SHA1: [
        "20440334fbd270a600000000000f4240000493e000000000041c070094a7b22cad3cd686d488fc9cb13a2a2a766be20aa8e3dab1",
        "20440334fbd270a600000000000f4240000493e000000000041c070094a7b22d4a478524740bf0b70354fb796aaa9a6c3ed5e9dd",
    ],
    AuthType.METICULOUS_KEYED_SHA1: [
        "20440334ffea81bb00000000000f4240000493e000000000051c0700ddd00294d43d59d8aafcceed24bbab0cba4d44961233f2fd",
        "20440334ffea81bb00000000000f4240000493e000000000051c0700ddd00295653caa2130e625764060e1dca99d4ed6994d4f22",
    ],
}


def test_frr_capture():
    p = decode(bytes.fromhex(FRR_DOWN))
    assert p == ControlPacket(
        state=State.DOWN,
        my_disc=0x2209973A,
        desired_min_tx=1_000_000,
        required_min_rx=1_000_000,
        required_min_echo_rx=50_000,
    )
    assert encode(p).hex() == FRR_DOWN


@pytest.mark.parametrize(
    "atype, hexdata",
    [(t, h) for t, hs in BIRD.items() for h in hs],
    ids=lambda v: v.name if isinstance(v, AuthType) else None,
)
def test_bird_capture_round_trips_and_verifies(atype, hexdata):
    raw = bytes.fromhex(hexdata)
    p = decode(raw)
    assert isinstance(p, ControlPacket), p
    assert (p.state, p.detect_mult, p.your_disc) == (State.DOWN, 3, 0)
    assert (p.desired_min_tx, p.required_min_rx, p.required_min_echo_rx) == (1_000_000, 300_000, 0)
    if atype is None:
        assert p.auth is None
        assert encode(p) == raw
        return
    assert p.auth.type == atype and p.auth.key_id == 7
    if atype == AuthType.SIMPLE:
        assert p.auth.password == SECRET
    else:
        # Our digest of BIRD's packet equals BIRD's; re-encoding with the secret is exact.
        assert digest_of(raw, atype, SECRET) == p.auth.digest
        assert digest_of(raw, atype, b"Secret") != p.auth.digest
        assert len(p.auth.digest) == atype.digest_len
    assert encode(p, SECRET) == raw


def test_bird_sequences_advance_as_documented():
    for atype in (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1):
        a, b = (decode(bytes.fromhex(h)).auth.sequence for h in BIRD[atype])
        assert b == a + 1


# --- scapy's BFD layer as an independent decoder ------------------------------------------------

scapy_bfd = pytest.importorskip("scapy.contrib.bfd")


def _scapy_fields(raw: bytes) -> dict:
    s = scapy_bfd.BFD(raw)
    out = {
        "version": s.version,
        "diag": s.diag,
        "state": s.sta,
        "flags": int(s.flags),
        "mult": s.detect_mult,
        "len": s.len,
        "my": s.my_discriminator,
        "your": s.your_discriminator,
        "tx": s.min_tx_interval,
        "rx": s.min_rx_interval,
        "echo": s.echo_rx_interval,
    }
    if s.optional_auth is not None:
        a = s.optional_auth
        out["auth"] = (a.auth_type, a.auth_len, a.auth_keyid)
        if a.auth_type > 1:
            out["seq"] = a.sequence_number
    return out


def _our_fields(p: ControlPacket, raw: bytes) -> dict:
    # scapy's FlagsField "MDACFP" lists the bits from the least significant: M=1 ... P=32.
    out = {
        "version": p.version,
        "diag": p.diag,
        "state": int(p.state),
        "flags": p.flags,
        "mult": p.detect_mult,
        "len": len(raw),
        "my": p.my_disc,
        "your": p.your_disc,
        "tx": p.desired_min_tx,
        "rx": p.required_min_rx,
        "echo": p.required_min_echo_rx,
    }
    if p.auth is not None:
        out["auth"] = (int(p.auth.type), len(raw) - 24, p.auth.key_id)
        if p.auth.type > 1:
            out["seq"] = p.auth.sequence
    return out


ALL_RAW = [h for _, h, _ in VECTORS] + [FRR_DOWN] + [h for hs in BIRD.values() for h in hs]


@pytest.mark.parametrize("hexdata", ALL_RAW)
def test_scapy_reads_what_we_read(hexdata):
    raw = bytes.fromhex(hexdata)
    assert _scapy_fields(raw) == _our_fields(decode(raw), raw)


def test_scapy_built_packet_decodes():
    built = bytes(
        scapy_bfd.BFD(
            version=1,
            diag=3,
            sta=3,
            flags="P",
            detect_mult=4,
            my_discriminator=0x01020304,
            your_discriminator=0x0A0B0C0D,
            min_tx_interval=250_000,
            min_rx_interval=200_000,
            echo_rx_interval=0,
        )
    )
    p = decode(built)
    assert p == ControlPacket(
        state=State.UP,
        my_disc=0x01020304,
        your_disc=0x0A0B0C0D,
        diag=Diag.NEIGHBOR_DOWN,
        detect_mult=4,
        desired_min_tx=250_000,
        required_min_rx=200_000,
        poll=True,
    )
    assert encode(p) == built


# --- malformed input: every stateless §6.8.6 rule ------------------------------------------------

GOOD = bytes.fromhex("20c0031800000001000000020007a1200007a12000000000")  # Up, my 1, your 2


def patched(offset: int, value: int, data: bytes = GOOD) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


MALFORMED_INPUTS = [
    ("empty", b"", TRUNCATED),
    ("one octet", b"\x20", TRUNCATED),
    ("23 octets", GOOD[:23], TRUNCATED),
    ("version 0", patched(0, 0x00), WRONG_VERSION),
    ("version 2", patched(0, 0x40), WRONG_VERSION),
    ("version 7 in a short packet", b"\xe0\x00", WRONG_VERSION),
    ("Length 23", patched(3, 23), MALFORMED),
    ("Length 0", patched(3, 0), MALFORMED),
    ("Length 25 > datagram", patched(3, 25), TRUNCATED),
    ("Detect Mult 0", patched(2, 0), MALFORMED),
    ("Multipoint bit", patched(1, 0xC1), MALFORMED),
    ("Poll and Final", patched(1, 0xC0 | 0x30), MALFORMED),
    ("My Discriminator 0", GOOD[:4] + bytes(4) + GOOD[8:], MALFORMED),
    ("Your Discriminator 0 in Up", GOOD[:8] + bytes(4) + GOOD[12:], MALFORMED),
    ("Your Discriminator 0 in Init", patched(1, 0x80, GOOD[:8] + bytes(4) + GOOD[12:]), MALFORMED),
    # A bit set: the section must fit, be of a defined type and have its type's length.
    ("A bit, Length 24", patched(1, 0xC4), MALFORMED),
    (
        "A bit, Length 26 but 24 octets",
        patched(3, 26, patched(1, 0xC4)),
        TRUNCATED,
    ),
    (
        "auth type 0 (reserved)",
        patched(3, 28, patched(1, 0xC4)) + bytes.fromhex("0004 0161"),
        MALFORMED,
    ),
    (
        "auth type 6 (undefined)",
        patched(3, 28, patched(1, 0xC4)) + bytes.fromhex("0604 0161"),
        MALFORMED,
    ),
    (
        "Auth Len beyond Length",
        patched(3, 28, patched(1, 0xC4)) + bytes.fromhex("0105 0161"),
        MALFORMED,
    ),
    (
        "simple password of 0 octets",
        patched(3, 27, patched(1, 0xC4)) + bytes.fromhex("0103 01"),
        MALFORMED,
    ),
    (
        "simple password of 17 octets",
        patched(3, 44, patched(1, 0xC4)) + bytes.fromhex("0114 01") + b"x" * 17,
        MALFORMED,
    ),
    (
        "keyed MD5 with a SHA1-sized section",
        patched(3, 52, patched(1, 0xC4)) + bytes.fromhex("021c 0100 00000001") + bytes(20),
        MALFORMED,
    ),
    (
        "keyed SHA1 cut short",
        patched(3, 48, patched(1, 0xC4)) + bytes.fromhex("0418 0100 00000001") + bytes(16),
        MALFORMED,
    ),
]


@pytest.mark.parametrize(
    "what, data, reason", MALFORMED_INPUTS, ids=[m[0] for m in MALFORMED_INPUTS]
)
def test_malformed_is_a_drop_with_its_reason(what, data, reason):
    got = decode(data)
    assert isinstance(got, Drop), got
    assert got.reason == reason
    assert got.detail


def test_what_the_checks_accept():
    # A zero Your Discriminator is fine in Down and AdminDown.
    assert isinstance(decode(patched(1, 0x40, GOOD[:8] + bytes(4) + GOOD[12:])), ControlPacket)
    assert isinstance(decode(patched(1, 0x00, GOOD[:8] + bytes(4) + GOOD[12:])), ControlPacket)
    # A datagram longer than Length is cut to Length (the rest is not ours).
    p = decode(GOOD + b"trailing")
    assert isinstance(p, ControlPacket) and p.raw == GOOD
    # An unassigned diagnostic is kept as a number.
    assert decode(patched(0, 0x3F)).diag == 31


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=80))
def test_decode_never_raises(data):
    got = decode(data)
    assert isinstance(got, ControlPacket | Drop)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=24, max_size=60))
def test_decode_never_raises_on_valid_looking_headers(tail):
    # Version 1, the A bit and a plausible Length: the authentication parser's input space.
    data = bytes([0x20, 0x44 | (tail[0] & 0xC0), 3, min(len(tail) + 4, 255)]) + tail
    assert isinstance(decode(data), ControlPacket | Drop)


packets = st.builds(
    ControlPacket,
    state=st.sampled_from(State),
    my_disc=st.integers(1, 2**32 - 1),
    your_disc=st.integers(1, 2**32 - 1),
    diag=st.integers(0, 31),
    detect_mult=st.integers(1, 255),
    desired_min_tx=st.integers(0, 2**32 - 1),
    required_min_rx=st.integers(0, 2**32 - 1),
    required_min_echo_rx=st.integers(0, 2**32 - 1),
    poll=st.booleans(),
    cpi=st.booleans(),
    demand=st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(packets, st.sampled_from([None, *AuthType]), st.integers(0, 255), st.integers(0, 2**32 - 1))
def test_round_trip(packet, atype, key_id, seq):
    secret = b"k3y"
    if atype is not None:
        section = AuthSection(atype, key_id, sequence=0 if atype == AuthType.SIMPLE else seq)
        packet = ControlPacket(**{**_fields(packet), "auth": section})
    raw = encode(packet, secret)
    got = decode(raw)
    assert isinstance(got, ControlPacket), got
    assert got.auth == _expected_auth(packet.auth, raw, secret)
    assert _fields(got, auth=False) == _fields(packet, auth=False)
    assert encode(got, secret) == raw


def _fields(p: ControlPacket, auth: bool = True) -> dict:
    names = [
        "state", "my_disc", "your_disc", "diag", "detect_mult", "desired_min_tx",
        "required_min_rx", "required_min_echo_rx", "poll", "final", "cpi", "demand",
    ]  # fmt: skip
    d = {n: getattr(p, n) for n in names}
    if auth:
        d["auth"] = p.auth
    return d


def _expected_auth(section, raw, secret):
    if section is None:
        return None
    if section.type == AuthType.SIMPLE:
        return AuthSection(section.type, section.key_id, password=secret)
    return AuthSection(
        section.type,
        section.key_id,
        sequence=section.sequence,
        digest=digest_of(raw, section.type, secret),
    )

"""RFC 5880 §6.7 authentication: sequence windows, digests, passwords, keys, transmit rules."""

import random

import pytest

from bgpd.bfd.auth import KEYED_SEQ_PERIOD, Auth, AuthState
from bgpd.bfd.packet import AuthSection, AuthType, ControlPacket, State, decode, encode

KEYED = [AuthType.KEYED_MD5, AuthType.KEYED_SHA1]
METICULOUS = [AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1]
SECRET = b"s3cret"


def signed(atype, seq, *, key_id=1, secret=SECRET, mult=3, state=State.UP):
    p = ControlPacket(
        state=state,
        my_disc=7,
        your_disc=9,
        detect_mult=mult,
        auth=AuthSection(atype, key_id, sequence=seq),
    )
    return decode(encode(p, secret))


def verifier(atype, **keys):
    auth = Auth(atype, {1: SECRET, **{int(k[1:]): v for k, v in keys.items()}}, 1)
    return AuthState(auth, random.Random(1))


@pytest.mark.parametrize("atype", KEYED + METICULOUS, ids=lambda t: t.name_in_config)
def test_first_packet_sets_the_sequence(atype):
    v = verifier(atype)
    assert not v.seq_known
    assert v.verify(signed(atype, 123456), 0.0, 0.9) is None
    assert v.seq_known and v.rcv_seq == 123456


@pytest.mark.parametrize("atype", KEYED, ids=lambda t: t.name_in_config)
def test_keyed_window_is_rcv_to_rcv_plus_3_mult(atype):
    for seq, ok in [(1000, True), (1009, True), (1010, False), (999, False)]:
        v = verifier(atype)
        assert v.verify(signed(atype, 1000), 0.0, 0.9) is None
        got = v.verify(signed(atype, seq, mult=3), 0.1, 0.9)
        assert (got is None) == ok, (seq, got)


@pytest.mark.parametrize("atype", METICULOUS, ids=lambda t: t.name_in_config)
def test_meticulous_window_is_rcv_plus_1_to_rcv_plus_3_mult(atype):
    for seq, ok in [(1000, False), (1001, True), (1009, True), (1010, False), (999, False)]:
        v = verifier(atype)
        assert v.verify(signed(atype, 1000), 0.0, 0.9) is None
        got = v.verify(signed(atype, seq, mult=3), 0.1, 0.9)
        assert (got is None) == ok, (seq, got)


@pytest.mark.parametrize("atype", KEYED + METICULOUS, ids=lambda t: t.name_in_config)
def test_window_wraps_at_32_bits(atype):
    v = verifier(atype)
    assert v.verify(signed(atype, 0xFFFFFFFE), 0.0, 0.9) is None
    assert v.verify(signed(atype, 3), 0.1, 0.9) is None
    assert v.rcv_seq == 3
    assert v.verify(signed(atype, 0xFFFFFFFF), 0.2, 0.9) is not None  # behind now


def test_window_follows_the_received_detect_mult():
    atype = AuthType.METICULOUS_KEYED_SHA1
    v = verifier(atype)
    assert v.verify(signed(atype, 100, mult=10), 0.0, 3.0) is None
    assert v.verify(signed(atype, 130, mult=10), 0.1, 3.0) is None  # 3 x 10 ahead
    assert v.verify(signed(atype, 161, mult=10), 0.2, 3.0) is not None


def test_a_refused_sequence_does_not_move_the_window():
    atype = AuthType.KEYED_SHA1
    v = verifier(atype)
    v.verify(signed(atype, 50), 0.0, 0.9)
    assert v.verify(signed(atype, 5000), 0.1, 0.9) is not None
    assert v.rcv_seq == 50
    # Nor does a good sequence with a bad digest.
    assert v.verify(signed(atype, 52, secret=b"nope"), 0.2, 0.9) is not None
    assert v.rcv_seq == 50


def test_sequence_is_forgotten_after_twice_the_detection_time():
    atype = AuthType.METICULOUS_KEYED_MD5
    v = verifier(atype)
    v.verify(signed(atype, 10), 0.0, 0.9)
    assert v.verify(signed(atype, 99999), 1.7, 0.9) is not None  # 1.7 s < 2 x 0.9 s
    assert v.verify(signed(atype, 99999), 1.9, 0.9) is None  # > 1.8 s: any sequence again
    assert v.rcv_seq == 99999


@pytest.mark.parametrize("atype", KEYED + METICULOUS, ids=lambda t: t.name_in_config)
def test_wrong_digest_wrong_key_wrong_type(atype):
    v = verifier(atype)
    assert "digest" in v.verify(signed(atype, 1, secret=b"other"), 0.0, 0.9)
    assert "unknown key id 2" in v.verify(signed(atype, 1, key_id=2), 0.0, 0.9)
    other = AuthType.KEYED_MD5 if atype != AuthType.KEYED_MD5 else AuthType.KEYED_SHA1
    assert "type" in v.verify(signed(other, 1), 0.0, 0.9)
    assert not v.seq_known
    # A tampered packet: one bit of Desired Min TX flipped after signing.
    raw = bytearray(encode(signed(atype, 1), SECRET))
    raw[15] ^= 1
    assert "digest" in v.verify(decode(bytes(raw)), 0.0, 0.9)


def test_unauthenticated_packet_is_refused():
    v = verifier(AuthType.KEYED_SHA1)
    plain = decode(encode(ControlPacket(state=State.UP, my_disc=7, your_disc=9)))
    assert "none" in v.verify(plain, 0.0, 0.9)


def test_simple_password():
    auth = Auth.single(AuthType.SIMPLE, 3, "pw")
    v = AuthState(auth, random.Random(1))

    def pw(password, key_id=3):
        p = ControlPacket(state=State.DOWN, my_disc=7, auth=AuthSection(AuthType.SIMPLE, key_id))
        return decode(encode(p, password))

    assert v.verify(pw(b"pw"), 0.0, 0.9) is None
    assert "password" in v.verify(pw(b"pW"), 0.0, 0.9)
    assert "password" in v.verify(pw(b"pw2"), 0.0, 0.9)
    assert "key id" in v.verify(pw(b"pw", key_id=4), 0.0, 0.9)


def test_key_rollover_accepts_every_listed_key_and_sends_one():
    auth = Auth(AuthType.KEYED_SHA1, {1: b"old", 2: b"new"}, 2)
    v = AuthState(auth, random.Random(1))
    assert v.verify(signed(AuthType.KEYED_SHA1, 5, key_id=1, secret=b"old"), 0.0, 0.9) is None
    assert v.verify(signed(AuthType.KEYED_SHA1, 6, key_id=2, secret=b"new"), 0.1, 0.9) is None
    assert v.verify(signed(AuthType.KEYED_SHA1, 7, key_id=2, secret=b"old"), 0.2, 0.9)
    section = v.section(ControlPacket(state=State.UP, my_disc=1), 0.0)
    assert section.key_id == 2 and v.send_secret == b"new"


def test_transmit_sequence_rules():
    base = ControlPacket(state=State.UP, my_disc=1, your_disc=2)
    # Meticulous: every packet.
    m = AuthState(Auth.single(AuthType.METICULOUS_KEYED_SHA1, 1, "x"), random.Random(1))
    seqs = [m.section(base, t * 0.1).sequence for t in range(5)]
    assert [(b - a) % 2**32 for a, b in zip(seqs, seqs[1:], strict=False)] == [1, 1, 1, 1]
    # Keyed: same content -> same sequence within a second; a change or a second -> +1.
    k = AuthState(Auth.single(AuthType.KEYED_MD5, 1, "x"), random.Random(2))
    s0 = k.section(base, 0.0).sequence
    assert k.section(base, 0.3).sequence == s0
    down = ControlPacket(state=State.DOWN, my_disc=1, your_disc=2)
    assert k.section(down, 0.4).sequence == (s0 + 1) % 2**32
    assert k.section(down, 0.5 + KEYED_SEQ_PERIOD).sequence == (s0 + 2) % 2**32
    # Starts at a random value (two states, two starting points).
    assert m.xmit_seq != k.xmit_seq


@pytest.mark.parametrize(
    "atype, secret",
    [
        (AuthType.SIMPLE, b""),
        (AuthType.SIMPLE, b"x" * 17),
        (AuthType.KEYED_MD5, b"x" * 17),
        (AuthType.KEYED_SHA1, b"x" * 21),
    ],
)
def test_bad_keys_are_refused(atype, secret):
    with pytest.raises(ValueError):
        Auth(atype, {1: secret}, 1)


def test_send_key_must_exist():
    with pytest.raises(ValueError, match="send key"):
        Auth(AuthType.KEYED_SHA1, {1: b"x"}, 2)

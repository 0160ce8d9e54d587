"""RFC 5880 §4 BFD Control packets: both ways, with the stateless §6.8.6 reception checks.

``decode(data)`` returns a :class:`ControlPacket` or a :class:`Drop` (why the packet must be
discarded, as a counter name and a readable detail); it never raises on input from the wire.
``encode(packet, secret)`` builds the bytes, signing the authentication section
(RFC 5880 §4.2-4.4, §6.7) with ``secret`` when ``packet.auth`` is set.

Wire layout (RFC 5880 §4.1), all integers in network byte order::

    0: Vers(3) Diag(5)   1: Sta(2) P F C A D M   2: Detect Mult   3: Length
    4: My Discriminator  8: Your Discriminator
    12: Desired Min TX Interval  16: Required Min RX Interval
    20: Required Min Echo RX Interval    (intervals in microseconds)
    24: optional authentication section: Auth Type, Auth Len, then by type
        simple password (1):       Key ID, Password (1-16 octets)       Auth Len 4..19
        keyed MD5 (2), met. (3):   Key ID, Reserved, Sequence(4), Digest(16)   Auth Len 24
        keyed SHA1 (4), met. (5):  Key ID, Reserved, Sequence(4), Hash(20)     Auth Len 28

Checks done here (the ones that need no session): version 1; the datagram holds at least
24 octets and at least Length octets (a longer datagram is cut to Length); Length is at
least 24, or 26 with the A bit; Detect Mult is not zero; M (multipoint) is clear; P and F are
not both set (§6.8.7 forbids sending that); My Discriminator is not zero; a zero Your
Discriminator comes only with state Down or AdminDown; with A, the authentication section
fits in Length and has a defined type and the length of its type. Authentication itself
(key, sequence window, digest) needs the session's state: :mod:`bgpd.bfd.auth`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 1
HEADER_LEN = 24
MAX_LEN = HEADER_LEN + 28  # the longest authentication section is keyed SHA1's

# UDP ports (RFC 5881 §4, RFC 5883 §5) and the source port range (RFC 5881 §4).
SINGLE_HOP_PORT = 3784
MULTI_HOP_PORT = 4784
SOURCE_PORT_MIN = 49152
SOURCE_PORT_MAX = 65535

# Flag bits of octet 1 (below the two state bits).
FLAG_P = 0x20  # Poll
FLAG_F = 0x10  # Final
FLAG_C = 0x08  # Control Plane Independent
FLAG_A = 0x04  # Authentication Present
FLAG_D = 0x02  # Demand
FLAG_M = 0x01  # Multipoint (reserved, must be zero)


class State(IntEnum):
    """Session states (RFC 5880 §4.1 "Sta")."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATES = (State.ADMIN_DOWN, State.DOWN, State.INIT, State.UP)
_STATE_LABELS = {
    State.ADMIN_DOWN: "AdminDown",
    State.DOWN: "Down",
    State.INIT: "Init",
    State.UP: "Up",
}


class Diag(IntEnum):
    """Diagnostic codes (RFC 5880 §4.1; 9 from RFC 6428)."""

    NONE = 0
    DETECTION_EXPIRED = 1  # Control Detection Time Expired
    ECHO_FAILED = 2
    NEIGHBOR_DOWN = 3  # Neighbor Signaled Session Down
    FORWARDING_RESET = 4
    PATH_DOWN = 5
    CONCAT_PATH_DOWN = 6
    ADMIN_DOWN = 7  # Administratively Down
    REVERSE_CONCAT_PATH_DOWN = 8
    MIS_CONNECTIVITY = 9

    @property
    def label(self) -> str:
        return DIAG_LABELS[self]


DIAG_LABELS = {
    Diag.NONE: "No Diagnostic",
    Diag.DETECTION_EXPIRED: "Control Detection Time Expired",
    Diag.ECHO_FAILED: "Echo Function Failed",
    Diag.NEIGHBOR_DOWN: "Neighbor Signaled Session Down",
    Diag.FORWARDING_RESET: "Forwarding Plane Reset",
    Diag.PATH_DOWN: "Path Down",
    Diag.CONCAT_PATH_DOWN: "Concatenated Path Down",
    Diag.ADMIN_DOWN: "Administratively Down",
    Diag.REVERSE_CONCAT_PATH_DOWN: "Reverse Concatenated Path Down",
    Diag.MIS_CONNECTIVITY: "Mis-Connectivity Defect",
}


def diag_label(code: int) -> str:
    """A readable name for any 5-bit diagnostic code (10-31 are unassigned)."""
    try:
        return DIAG_LABELS[Diag(code)]
    except ValueError:
        return f"Unassigned ({code})"


class AuthType(IntEnum):
    """Authentication types (RFC 5880 §4.1 "Auth Type"; 0 is reserved)."""

    SIMPLE = 1
    KEYED_MD5 = 2
    METICULOUS_KEYED_MD5 = 3
    KEYED_SHA1 = 4
    METICULOUS_KEYED_SHA1 = 5

    @property
    def name_in_config(self) -> str:
        return self.name.lower().replace("_", "-")

    @property
    def meticulous(self) -> bool:
        return self in (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1)

    @property
    def digest_len(self) -> int:
        """Octets of the Auth Key/Digest field (0 for simple password)."""
        return _DIGEST_LEN[self]


_DIGEST_LEN = {
    AuthType.SIMPLE: 0,
    AuthType.KEYED_MD5: 16,
    AuthType.METICULOUS_KEYED_MD5: 16,
    AuthType.KEYED_SHA1: 20,
    AuthType.METICULOUS_KEYED_SHA1: 20,
}
_HASH = {
    AuthType.KEYED_MD5: hashlib.md5,
    AuthType.METICULOUS_KEYED_MD5: hashlib.md5,
    AuthType.KEYED_SHA1: hashlib.sha1,
    AuthType.METICULOUS_KEYED_SHA1: hashlib.sha1,
}
SIMPLE_PASSWORD_MAX = 16


def auth_len(auth_type: AuthType, password_len: int = 0) -> int:
    """The Auth Len of a section of this type (RFC 5880 §4.2-4.4)."""
    if auth_type == AuthType.SIMPLE:
        return 3 + password_len
    return 8 + auth_type.digest_len


# --- drop reasons ------------------------------------------------------------------------------

# Counter names: every discarded packet increments exactly one of these.
MALFORMED = "malformed"
TRUNCATED = "truncated"
WRONG_VERSION = "wrong_version"
WRONG_TTL = "wrong_ttl"
AUTH_FAILURE = "auth_failure"
NO_SESSION = "no_session"
DROP_REASONS = (MALFORMED, TRUNCATED, WRONG_VERSION, WRONG_TTL, AUTH_FAILURE, NO_SESSION)


@dataclass(frozen=True, slots=True)
class Drop:
    """Why a received packet is discarded: ``reason`` is one of :data:`DROP_REASONS`."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


# --- the packet --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthSection:
    """The authentication section as on the wire.

    ``password`` is set for simple password, ``sequence`` and ``digest`` for the keyed types
    (``digest`` is the received digest; when encoding it is computed and this field ignored).
    """

    type: AuthType
    key_id: int
    password: bytes = b""
    sequence: int = 0
    digest: bytes = b""


@dataclass(slots=True)
class ControlPacket:
    """A BFD Control packet (RFC 5880 §4.1). Intervals are in microseconds.

    ``raw`` is the received packet (Length octets), kept to verify a digest; it is empty for
    packets built locally and is not part of equality. Treat it as immutable: it is not
    frozen only because a frozen dataclass costs microseconds to build, thousands of times a
    second.
    """

    state: State
    my_disc: int
    your_disc: int = 0
    diag: int = 0
    detect_mult: int = 3
    desired_min_tx: int = 1_000_000
    required_min_rx: int = 1_000_000
    required_min_echo_rx: int = 0
    poll: bool = False
    final: bool = False
    cpi: bool = False
    demand: bool = False
    multipoint: bool = False
    auth: AuthSection | None = None
    version: int = VERSION
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def flags(self) -> int:
        return (
            (FLAG_P if self.poll else 0)
            | (FLAG_F if self.final else 0)
            | (FLAG_C if self.cpi else 0)
            | (FLAG_A if self.auth is not None else 0)
            | (FLAG_D if self.demand else 0)
            | (FLAG_M if self.multipoint else 0)
        )

    def describe(self) -> str:
        """One line for logs: ``Up P my=… your=… tx=300ms rx=300ms x3``."""
        fl = "".join(
            c for c, b in zip("PFCADM", (32, 16, 8, 4, 2, 1), strict=True) if self.flags & b
        )
        return (
            f"{self.state.label}{' ' + fl if fl else ''} diag={self.diag} my={self.my_disc} "
            f"your={self.your_disc} tx={self.desired_min_tx // 1000}ms "
            f"rx={self.required_min_rx // 1000}ms x{self.detect_mult}"
        )


_HEADER = struct.Struct("!BBBBIIIII")
_CRYPTO = struct.Struct("!BBBBI")  # type, len, key id, reserved, sequence


def pack(
    state: int,
    flags: int,
    diag: int,
    detect_mult: int,
    my_disc: int,
    your_disc: int,
    desired_min_tx: int,
    required_min_rx: int,
    required_min_echo_rx: int = 0,
    auth: AuthSection | None = None,
    secret: bytes | None = None,
) -> bytes:
    """:func:`encode` from fields, without building a :class:`ControlPacket` (the session's
    transmit path). ``flags`` are the P/F/C/D/M bits; A is set from ``auth``."""
    if auth is None:
        return _HEADER.pack(
            0x20 | (diag & 0x1F),
            (state << 6) | (flags & ~FLAG_A),
            detect_mult,
            HEADER_LEN,
            my_disc,
            your_disc,
            desired_min_tx,
            required_min_rx,
            required_min_echo_rx,
        )
    return encode(
        ControlPacket(
            state=State(state),
            my_disc=my_disc,
            your_disc=your_disc,
            diag=diag,
            detect_mult=detect_mult,
            desired_min_tx=desired_min_tx,
            required_min_rx=required_min_rx,
            required_min_echo_rx=required_min_echo_rx,
            poll=bool(flags & FLAG_P),
            final=bool(flags & FLAG_F),
            cpi=bool(flags & FLAG_C),
            demand=bool(flags & FLAG_D),
            multipoint=bool(flags & FLAG_M),
            auth=auth,
        ),
        secret,
    )


def encode(packet: ControlPacket, secret: bytes | None = None) -> bytes:
    """The wire form of ``packet``.

    With ``packet.auth`` set, ``secret`` is the password (simple) or the key (MD5: up to 16
    octets, SHA1: up to 20, zero-padded as RFC 5880 §6.7.3-4 say) and the digest is computed
    over the whole packet. Fields are written as given, so tests can build invalid packets;
    values that do not fit their field raise ``struct.error`` or ``ValueError`` (our bug).
    """
    auth = packet.auth
    tail = b""
    if auth is not None:
        if secret is None:
            raise ValueError("an authenticated packet needs its secret")
        if auth.type == AuthType.SIMPLE:
            if not 1 <= len(secret) <= SIMPLE_PASSWORD_MAX:
                raise ValueError("a simple password has 1 to 16 octets")
            tail = bytes((auth.type, 3 + len(secret), auth.key_id)) + secret
        else:
            n = auth.type.digest_len
            if len(secret) > n:
                raise ValueError(f"a {auth.type.name_in_config} key has at most {n} octets")
            tail = _CRYPTO.pack(auth.type, 8 + n, auth.key_id, 0, auth.sequence & 0xFFFFFFFF)
            tail += secret.ljust(n, b"\0")
    length = HEADER_LEN + len(tail)
    head = _HEADER.pack(
        (packet.version << 5) | (packet.diag & 0x1F),
        (packet.state << 6) | packet.flags,
        packet.detect_mult,
        length,
        packet.my_disc,
        packet.your_disc,
        packet.desired_min_tx,
        packet.required_min_rx,
        packet.required_min_echo_rx,
    )
    if auth is None or auth.type == AuthType.SIMPLE:
        return head + tail
    data = head + tail
    digest = _HASH[auth.type](data).digest()
    return data[: length - len(digest)] + digest


def decode(data: bytes) -> ControlPacket | Drop:
    """Parse a received datagram (the UDP payload) and apply the stateless checks."""
    n = len(data)
    if n < 1:
        return Drop(TRUNCATED, "empty datagram")
    version = data[0] >> 5
    if version != VERSION:
        return Drop(WRONG_VERSION, f"version {version}")
    if n < HEADER_LEN:
        return Drop(TRUNCATED, f"{n} octets, a Control packet has at least {HEADER_LEN}")
    vd, sf, mult, length, my, your, dtx, rrx, rerx = _HEADER.unpack_from(data)
    flags = sf & 0x3F
    has_auth = bool(flags & FLAG_A)
    if length < (HEADER_LEN + 2 if has_auth else HEADER_LEN):
        return Drop(MALFORMED, f"Length {length} is below the minimum")
    if length > n:
        return Drop(TRUNCATED, f"Length {length} but only {n} octets received")
    if mult == 0:
        return Drop(MALFORMED, "Detect Mult is zero")
    if flags & FLAG_M:
        return Drop(MALFORMED, "Multipoint bit set")
    if flags & FLAG_P and flags & FLAG_F:
        return Drop(MALFORMED, "Poll and Final both set")
    if my == 0:
        return Drop(MALFORMED, "My Discriminator is zero")
    state = _STATES[sf >> 6]
    if your == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        return Drop(MALFORMED, f"Your Discriminator is zero in state {state.label}")
    raw = bytes(data[:length])
    auth = None
    if has_auth:
        auth = _decode_auth(raw)
        if isinstance(auth, Drop):
            return auth
    return ControlPacket(
        state=state,
        my_disc=my,
        your_disc=your,
        diag=vd & 0x1F,
        detect_mult=mult,
        desired_min_tx=dtx,
        required_min_rx=rrx,
        required_min_echo_rx=rerx,
        poll=bool(flags & FLAG_P),
        final=bool(flags & FLAG_F),
        cpi=bool(flags & FLAG_C),
        demand=bool(flags & FLAG_D),
        multipoint=False,
        auth=auth,
        version=version,
        raw=raw,
    )


def _decode_auth(raw: bytes) -> AuthSection | Drop:
    length = len(raw)
    atype, alen = raw[HEADER_LEN], raw[HEADER_LEN + 1]
    if HEADER_LEN + alen != length:
        return Drop(MALFORMED, f"Auth Len {alen} does not end at Length {length}")
    try:
        t = AuthType(atype)
    except ValueError:
        return Drop(MALFORMED, f"authentication type {atype} is not defined")
    if t == AuthType.SIMPLE:
        if not 4 <= alen <= 3 + SIMPLE_PASSWORD_MAX:
            return Drop(MALFORMED, f"simple password Auth Len {alen} is not 4..19")
        return AuthSection(t, raw[HEADER_LEN + 2], password=raw[HEADER_LEN + 3 :])
    if alen != 8 + t.digest_len:
        return Drop(MALFORMED, f"{t.name_in_config} Auth Len {alen} is not {8 + t.digest_len}")
    _, _, key_id, _, seq = _CRYPTO.unpack_from(raw, HEADER_LEN)
    return AuthSection(t, key_id, sequence=seq, digest=raw[HEADER_LEN + 8 :])


def digest_of(raw: bytes, auth_type: AuthType, secret: bytes) -> bytes:
    """The digest ``raw`` (a received keyed MD5/SHA1 packet) should carry when signed with
    ``secret``: the Auth Key/Digest field replaced by the zero-padded key, then hashed."""
    n = auth_type.digest_len
    return _HASH[auth_type](raw[:-n] + secret.ljust(n, b"\0")).digest()


__all__ = [
    "AUTH_FAILURE",
    "DIAG_LABELS",
    "DROP_REASONS",
    "FLAG_A",
    "FLAG_C",
    "FLAG_D",
    "FLAG_F",
    "FLAG_M",
    "FLAG_P",
    "HEADER_LEN",
    "MALFORMED",
    "MAX_LEN",
    "MULTI_HOP_PORT",
    "NO_SESSION",
    "SIMPLE_PASSWORD_MAX",
    "SINGLE_HOP_PORT",
    "SOURCE_PORT_MAX",
    "SOURCE_PORT_MIN",
    "TRUNCATED",
    "VERSION",
    "WRONG_TTL",
    "WRONG_VERSION",
    "AuthSection",
    "AuthType",
    "ControlPacket",
    "Diag",
    "Drop",
    "State",
    "auth_len",
    "decode",
    "diag_label",
    "digest_of",
    "encode",
    "pack",
]

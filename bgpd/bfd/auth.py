"""RFC 5880 §6.7 authentication: keys, signing and verification with sequence numbers.

:class:`Auth` is the configuration (one type, one or more keys by Key ID, the one to send
with); :class:`AuthState` is the per-session state of §6.8.1 (bfd.XmitAuthSeq,
bfd.RcvAuthSeq, bfd.AuthSeqKnown) and does what §6.7.2-6.7.4 say on transmit and receive.
Time is passed in; nothing here touches a socket or a clock.

Choices where the RFC leaves room:

* bfd.XmitAuthSeq starts at a random value. The meticulous types increment it for every
  packet; the plain keyed types increment it when the packet's content changes and at most
  about once per second otherwise ("MAY be incremented"), so a replayed old packet falls out
  of the receiver's window soon.
* The window of §6.7.3 is ``3 * Detect Mult`` with Detect Mult the field of the received
  packet (the sender's multiplier: it bounds how many of its packets a detection time spans).
* bfd.AuthSeqKnown is cleared when no valid packet arrived for twice the detection time
  (§6.7.1), evaluated when the next packet arrives, with the detection time the last valid
  packet set (the session forgets the remote side, and its detection time, after one).
"""

from __future__ import annotations

import hmac
import random
from dataclasses import dataclass, field

from .packet import SIMPLE_PASSWORD_MAX, AuthSection, AuthType, ControlPacket, digest_of

SEQ_MOD = 1 << 32
KEYED_SEQ_PERIOD = 1.0  # seconds between increments of a plain keyed sequence number


@dataclass(frozen=True, slots=True)
class Auth:
    """Authentication of one session: ``type``, ``keys`` (Key ID -> secret) and ``send_key``,
    the Key ID used to send (every key in ``keys`` is accepted on receive, for rollover)."""

    type: AuthType
    keys: dict[int, bytes] = field(hash=False)
    send_key: int

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ValueError(problem)

    def problem(self) -> str | None:
        if self.send_key not in self.keys:
            return f"send key {self.send_key} is not among the keys"
        limit = SIMPLE_PASSWORD_MAX if self.type == AuthType.SIMPLE else self.type.digest_len
        for key_id, secret in self.keys.items():
            if not 0 <= key_id <= 255:
                return f"key id {key_id} is not 0..255"
            if not 1 <= len(secret) <= limit:
                return (
                    f"key {key_id}: a {self.type.name_in_config} secret has 1 to {limit} "
                    f"octets, not {len(secret)}"
                )
        return None

    @classmethod
    def single(cls, type: AuthType, key_id: int, secret: bytes | str) -> Auth:
        if isinstance(secret, str):
            secret = secret.encode()
        return cls(type, {key_id: secret}, key_id)


class AuthState:
    """The authentication variables of one session (RFC 5880 §6.8.1) and their rules."""

    __slots__ = (
        "auth",
        "xmit_seq",
        "rcv_seq",
        "seq_known",
        "_last_valid_rx",
        "_forget_after",
        "_last_content",
        "_last_bump",
    )

    def __init__(self, auth: Auth, rng: random.Random) -> None:
        self.auth = auth
        self.xmit_seq = rng.getrandbits(32)
        self.rcv_seq = 0
        self.seq_known = False
        self._last_valid_rx: float | None = None
        self._forget_after = 0.0
        self._last_content: tuple | None = None
        self._last_bump = 0.0

    # --- transmit ------------------------------------------------------------------------

    def section(self, packet: ControlPacket | tuple, now: float) -> AuthSection:
        """The section to put on ``packet`` (built without auth), advancing the sequence.

        ``packet`` may also be the tuple of what identifies its content (the session passes
        ``(state, diag, flags, your_disc, desired_min_tx, required_min_rx, multiplier)``)."""
        a = self.auth
        if a.type == AuthType.SIMPLE:
            return AuthSection(a.type, a.send_key)
        if isinstance(packet, ControlPacket):
            content = (packet.state, packet.diag, packet.flags, packet.your_disc,
                       packet.desired_min_tx, packet.required_min_rx, packet.detect_mult)  # fmt: skip
        else:
            content = packet
        if a.type.meticulous:
            self.xmit_seq = (self.xmit_seq + 1) % SEQ_MOD
        elif content != self._last_content or now - self._last_bump >= KEYED_SEQ_PERIOD:
            self.xmit_seq = (self.xmit_seq + 1) % SEQ_MOD
            self._last_bump = now
        self._last_content = content
        return AuthSection(a.type, a.send_key, sequence=self.xmit_seq)

    @property
    def send_secret(self) -> bytes:
        return self.auth.keys[self.auth.send_key]

    # --- receive -------------------------------------------------------------------------

    def verify(self, packet: ControlPacket, now: float, detect_time: float) -> str | None:
        """None when ``packet`` is authentic (and the receive sequence is advanced), else why
        it must be discarded. ``detect_time`` (seconds) is the detection time this packet
        sets if accepted: bfd.AuthSeqKnown is cleared when the next valid packet comes more
        than twice that late."""
        a = self.auth
        sec = packet.auth
        if sec is None:
            return "authentication is configured but the packet has none"
        if sec.type != a.type:
            return (
                f"authentication type {sec.type.name_in_config}, expected {a.type.name_in_config}"
            )
        secret = a.keys.get(sec.key_id)
        if secret is None:
            return f"unknown key id {sec.key_id}"
        if sec.type == AuthType.SIMPLE:
            if not hmac.compare_digest(sec.password, secret):
                return f"wrong password for key id {sec.key_id}"
            self._last_valid_rx = now
            return None
        if (
            self.seq_known
            and self._last_valid_rx is not None
            and now - self._last_valid_rx > self._forget_after
        ):
            self.seq_known = False
        if self.seq_known:
            ahead = (sec.sequence - self.rcv_seq) % SEQ_MOD
            low = 1 if sec.type.meticulous else 0
            high = 3 * packet.detect_mult
            if not low <= ahead <= high:
                return (
                    f"sequence {sec.sequence} outside the window {self.rcv_seq}+{low}.."
                    f"{self.rcv_seq}+{high}"
                )
        expected = digest_of(packet.raw, sec.type, secret)
        if not hmac.compare_digest(sec.digest, expected):
            return f"wrong digest for key id {sec.key_id}"
        self.rcv_seq = sec.sequence
        self.seq_known = True
        self._last_valid_rx = now
        self._forget_after = 2 * detect_time
        return None

    def forget_sequence(self) -> None:
        """bfd.AuthSeqKnown = 0 (the session was reset)."""
        self.seq_known = False


__all__ = ["KEYED_SEQ_PERIOD", "SEQ_MOD", "Auth", "AuthState"]

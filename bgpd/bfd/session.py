"""One BFD session (RFC 5880 §6.8) as a sans-I/O state machine.

The binding feeds it decoded packets (``receive(packet, now)``) and timer expiries
(``handle_timer(now)``), asks ``next_deadline()`` when to call again, and sends what
``packets_to_send()`` returns. Every input method returns a list of events: a
:class:`StateChanged` for each transition and a :class:`PacketDropped` for a packet the
session refused (authentication, a wrong discriminator). Times are monotonic seconds passed
in; intervals on the wire and in :class:`SessionParams` are microseconds, as in the RFC.

Asynchronous mode only: no Demand mode of our own and no Echo function (we send Required Min
Echo RX Interval 0). A peer that asks for Demand mode (D bit, both sides Up) is honoured:
periodic transmission stops until it clears D or a Poll Sequence is needed (§6.6).

The state table (§6.8.6), received state across, local state down; "-" keeps the state::

                 AdminDown          Down       Init   Up
    Down         -                  Init       Up     -
    Init         Down (diag 3)      -          Up     Up
    Up           Down (diag 3)      Down (3)   -      -
    AdminDown    every packet is discarded; only admin_up() leaves it

and a detection time without a valid packet takes Init or Up to Down with diag 1 and forgets
the remote side (discriminator, intervals), as BIRD does.

Timers (§6.8.3): while not Up, bfd.DesiredMinTxInterval is ``max(min_tx, idle_tx)`` with
``idle_tx`` at least one second; in Up it is ``min_tx``. Every change of
bfd.DesiredMinTxInterval or bfd.RequiredMinRxInterval starts a Poll Sequence (P bit on every
packet until one with F arrives; a change during a poll restarts it). An increase of the
transmit interval and a decrease of the receive interval take effect only when the poll ends;
the opposite changes take effect at once. With no remote discriminator known there is nobody
to answer a poll: the new values are used and sent at once.

Transmission (§6.8.7): periodic packets every ``max(bfd.DesiredMinTxInterval,
bfd.RemoteMinRxInterval)`` less a random 0-25 % (10-25 % when our Detect Mult is 1), none
while a passive session has no remote discriminator or the peer asked for Required Min RX 0.
A state change or the start of a poll sends a packet at once; a received P bit is answered
with an F packet at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .auth import Auth, AuthState
from .packet import (
    AUTH_FAILURE,
    FLAG_F,
    FLAG_P,
    NO_SESSION,
    ControlPacket,
    Diag,
    State,
    diag_label,
    pack,
)

ONE_SECOND = 1_000_000  # microseconds
MAX_INTERVAL = 0xFFFFFFFF

ADMIN_DOWN, DOWN, INIT, UP = State.ADMIN_DOWN, State.DOWN, State.INIT, State.UP


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What the operator configures for one session (intervals in microseconds).

    ``min_tx``: bfd.DesiredMinTxInterval while Up; ``min_rx``: bfd.RequiredMinRxInterval;
    ``multiplier``: bfd.DetectMult; ``idle_tx``: bfd.DesiredMinTxInterval while not Up
    (RFC 5880 §6.8.3: at least one second); ``passive``: send nothing until the peer is
    heard (§6.1); ``auth``: None for no authentication.
    """

    min_tx: int = 300_000
    min_rx: int = 300_000
    multiplier: int = 3
    idle_tx: int = ONE_SECOND
    passive: bool = False
    auth: Auth | None = None

    def __post_init__(self) -> None:
        for name in ("min_tx", "min_rx", "idle_tx"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_INTERVAL:
                raise ValueError(f"{name} {v} µs is not 1..{MAX_INTERVAL}")
        if self.idle_tx < ONE_SECOND:
            raise ValueError("idle_tx must be at least one second (RFC 5880 §6.8.3)")
        if not 1 <= self.multiplier <= 255:
            raise ValueError(f"multiplier {self.multiplier} is not 1..255")


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of what a session reports."""


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """bfd.SessionState went from ``old`` to ``new`` with bfd.LocalDiag ``diag``.

    ``remote_state``/``remote_diag`` are what the peer last said; ``at`` is the ``now`` of
    the call that made the change.
    """

    old: State
    new: State
    diag: int
    remote_state: State
    remote_diag: int
    at: float

    @property
    def is_failure(self) -> bool:
        """An Up session lost for a reason a client (BGP) should act on (RFC 5882 §3.2):
        not our own AdminDown, and not the peer signalling AdminDown."""
        return (
            self.old == UP
            and self.new == DOWN
            and not (self.diag == Diag.NEIGHBOR_DOWN and self.remote_state == ADMIN_DOWN)
        )

    def describe(self) -> str:
        return (
            f"{self.old.label} -> {self.new.label} ({diag_label(self.diag)}; "
            f"remote {self.remote_state.label}, {diag_label(self.remote_diag)})"
        )


@dataclass(frozen=True, slots=True)
class PacketDropped(Event):
    """A received packet was discarded by the session; ``reason`` is a counter name of
    :data:`bgpd.bfd.packet.DROP_REASONS`."""

    reason: str
    detail: str


# --- the session -------------------------------------------------------------------------------


def _drop_counts() -> dict[str, int]:
    return {}


@dataclass(slots=True)
class SessionStats:
    """Counters for ``show bfd`` and metrics; times are the ``now`` values passed in."""

    rx: int = 0  # packets accepted
    tx: int = 0  # packets produced (periodic, immediate and Final)
    dropped: dict[str, int] = field(default_factory=_drop_counts)
    flaps: int = 0  # times the session left Up
    ups: int = 0  # times it reached Up
    polls: int = 0  # Poll Sequences started
    created: float = 0.0
    last_change: float | None = None
    up_since: float | None = None
    last_rx: float | None = None
    last_tx: float | None = None
    last_down_diag: int | None = None
    last_drop: str | None = None


class Session:
    """RFC 5880 §6.8 for one session, without I/O. See the module docstring."""

    __slots__ = (
        "params",
        "local_disc",
        "state",
        "local_diag",
        "remote_disc",
        "remote_state",
        "remote_diag",
        "remote_min_rx",
        "remote_min_tx",
        "remote_mult",
        "remote_demand",
        "stats",
        "_adv_tx",
        "_adv_rx",
        "_tx_used",
        "_rx_used",
        "_poll_active",
        "_poll_restart",
        "_tx_at",
        "_last_tx",
        "_detect_at",
        "_send_now",
        "_out",
        "_last_content",
        "_last_data",
        "_auth",
        "_rng",
        "_now",
    )

    def __init__(
        self,
        params: SessionParams,
        local_disc: int,
        now: float,
        *,
        rng: random.Random | None = None,
        admin_down: bool = False,
    ) -> None:
        if not 1 <= local_disc <= 0xFFFFFFFF:
            raise ValueError("the local discriminator is a non-zero 32-bit value")
        self.params = params
        self.local_disc = local_disc
        self.state = ADMIN_DOWN if admin_down else DOWN
        self.local_diag = Diag.ADMIN_DOWN if admin_down else Diag.NONE
        self._rng = rng if rng is not None else random.Random()
        self._forget_remote()
        self.stats = SessionStats(created=now, last_change=now)
        self._adv_tx = self._desired_tx()
        self._adv_rx = params.min_rx
        self._tx_used = self._adv_tx
        self._rx_used = self._adv_rx
        self._poll_active = False
        self._poll_restart = False
        self._last_tx: float | None = None
        self._detect_at: float | None = None
        self._send_now = False
        self._out: list[bytes] = []
        self._last_content: tuple | None = None
        self._last_data = b""
        self._auth = AuthState(params.auth, self._rng) if params.auth else None
        self._now = now
        self._tx_at: float | None = now if self._may_transmit() else None

    # --- inputs ----------------------------------------------------------------------------

    def receive(self, packet: ControlPacket, now: float) -> list[Event]:
        """A packet that passed :func:`bgpd.bfd.packet.decode` and was demultiplexed here
        (RFC 5880 §6.8.6 from "If the A bit is set and no authentication is in use")."""
        self._now = now
        events: list[Event] = []
        if packet.your_disc and packet.your_disc != self.local_disc:
            return self._drop(NO_SESSION, f"Your Discriminator {packet.your_disc}", events)
        if self._auth is None:
            if packet.auth is not None:
                return self._drop(AUTH_FAILURE, "authenticated packet, none configured", events)
        else:
            detect = packet.detect_mult * max(self._rx_used, packet.desired_min_tx) / ONE_SECOND
            why = self._auth.verify(packet, now, detect)
            if why is not None:
                return self._drop(AUTH_FAILURE, why, events)
        st = self.stats
        st.rx += 1
        st.last_rx = now
        before = (
            self.remote_min_rx,
            self._tx_used,
            self.remote_demand,
            self.remote_disc,
            self.remote_state,
        )
        self.remote_disc = packet.my_disc
        self.remote_state = packet.state
        self.remote_diag = packet.diag
        self.remote_demand = packet.demand
        self.remote_min_rx = packet.required_min_rx
        self.remote_min_tx = packet.desired_min_tx
        self.remote_mult = packet.detect_mult
        if packet.final and self._poll_active:
            self._end_poll()
        if self.state == ADMIN_DOWN:
            self._reschedule_tx()
            return events
        self._detect_at = now + self.detection_time
        rs = packet.state
        state = self.state
        if rs == ADMIN_DOWN:
            if state != DOWN:
                self._set_state(DOWN, Diag.NEIGHBOR_DOWN, events)
        elif state == DOWN:
            if rs == DOWN:
                self._set_state(INIT, Diag.NONE, events)
            elif rs == INIT:
                self._set_state(UP, Diag.NONE, events)
        elif state == INIT:
            if rs in (INIT, UP):
                self._set_state(UP, Diag.NONE, events)
        elif rs == DOWN:  # state == UP
            self._set_state(DOWN, Diag.NEIGHBOR_DOWN, events)
        if packet.poll:
            self._emit(final=True)
        if self._tx_at is None or before != (
            self.remote_min_rx,
            self._tx_used,
            self.remote_demand,
            self.remote_disc,
            self.remote_state,
        ):
            self._reschedule_tx()
        self._flush()
        return events

    def handle_timer(self, now: float) -> list[Event]:
        """Run what is due at ``now``: the detection time (§6.8.4), then a transmission."""
        self._now = now
        events: list[Event] = []
        if self._detect_at is not None and now >= self._detect_at:
            self._detect_at = None
            self._forget_remote()
            self._poll_active = self._poll_restart = False
            self._tx_used, self._rx_used = self._adv_tx, self._adv_rx
            if self.state in (INIT, UP):
                self._set_state(DOWN, Diag.DETECTION_EXPIRED, events)
            self._reschedule_tx()
        if self._tx_at is not None and now >= self._tx_at:
            self._tx_at = None
            self._emit(final=False)
            self._last_tx = now
            self._reschedule_tx()
        self._flush()
        return events

    def admin_down(self, now: float, diag: int = Diag.ADMIN_DOWN) -> list[Event]:
        """Take the session administratively down (§6.8.16): it keeps sending AdminDown at
        the idle rate so the peer does not mistake this for a failure."""
        self._now = now
        events: list[Event] = []
        if self.state != ADMIN_DOWN:
            self._detect_at = None
            self._set_state(ADMIN_DOWN, diag, events)
            self._reschedule_tx()
            self._flush()
        return events

    def admin_up(self, now: float) -> list[Event]:
        """Leave AdminDown for Down (§6.8.16)."""
        self._now = now
        events: list[Event] = []
        if self.state == ADMIN_DOWN:
            self._set_state(DOWN, Diag.NONE, events)
            self._reschedule_tx()
            self._flush()
        return events

    def update_params(self, params: SessionParams, now: float) -> list[Event]:
        """New intervals, multiplier or authentication; interval changes start a poll."""
        self._now = now
        if params.auth != self.params.auth:
            self._auth = AuthState(params.auth, self._rng) if params.auth else None
        self.params = params
        self._apply_timers()
        if self._tx_at is None:
            self._reschedule_tx()
        self._flush()
        return []

    # --- outputs ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: only on input)."""
        t, d = self._tx_at, self._detect_at
        if t is None:
            return d
        if d is None or t < d:
            return t
        return d

    def packets_to_send(self) -> list[bytes]:
        """The encoded packets produced since the last call, in order."""
        out = self._out
        if out:
            self._out = []
        return out

    def final_admin_down(self) -> bytes | None:
        """One AdminDown packet to send when the session is deleted (None: no peer known).
        RFC 5880 §6.8.16 lets a peer tell this from a failure (RFC 5882 §3.2)."""
        if self.remote_disc == 0:
            return None
        saved = self.state, self.local_diag
        self.state, self.local_diag = ADMIN_DOWN, Diag.ADMIN_DOWN
        self._emit(final=False)
        self.state, self.local_diag = saved
        return self._out.pop()

    # --- derived values --------------------------------------------------------------------

    @property
    def detection_time(self) -> float:
        """Seconds without a valid packet before the session goes down (§6.8.4)."""
        if not self.remote_mult:
            return 0.0
        return self.remote_mult * max(self._rx_used, self.remote_min_tx) / ONE_SECOND

    @property
    def tx_interval(self) -> float:
        """The negotiated transmit interval in seconds, before jitter (§6.8.2)."""
        return max(self._tx_used, self.remote_min_rx) / ONE_SECOND

    @property
    def desired_min_tx(self) -> int:
        """bfd.DesiredMinTxInterval as sent (µs)."""
        return self._adv_tx

    @property
    def required_min_rx(self) -> int:
        """bfd.RequiredMinRxInterval as sent (µs)."""
        return self._adv_rx

    @property
    def poll_active(self) -> bool:
        return self._poll_active

    def snapshot(self, now: float) -> dict:
        """Plain data for ``show bfd`` and metrics (intervals in ms, ages in s)."""
        st = self.stats

        def age(t):
            return None if t is None else round(now - t, 3)

        return {
            "state": self.state.label,
            "local_diag": diag_label(self.local_diag),
            "remote_state": self.remote_state.label,
            "remote_diag": diag_label(self.remote_diag),
            "local_discriminator": self.local_disc,
            "remote_discriminator": self.remote_disc,
            "multiplier": self.params.multiplier,
            "remote_multiplier": self.remote_mult,
            "desired_min_tx_ms": self._adv_tx / 1000,
            "required_min_rx_ms": self._adv_rx / 1000,
            "remote_desired_min_tx_ms": self.remote_min_tx / 1000,
            "remote_required_min_rx_ms": self.remote_min_rx / 1000,
            "tx_interval_ms": round(self.tx_interval * 1000, 3),
            "detection_time_ms": round(self.detection_time * 1000, 3),
            "poll": self._poll_active,
            "authentication": self.params.auth.type.name_in_config if self.params.auth else None,
            "passive": self.params.passive,
            "flaps": st.flaps,
            "ups": st.ups,
            "polls": st.polls,
            "last_change_ago_s": age(st.last_change),
            "up_for_s": age(st.up_since) if self.state == UP else None,
            "last_down_diag": None if st.last_down_diag is None else diag_label(st.last_down_diag),
            "rx": st.rx,
            "tx": st.tx,
            "dropped": dict(st.dropped),
            "last_drop": st.last_drop,
            "last_rx_ago_s": age(st.last_rx),
            "last_tx_ago_s": age(st.last_tx),
        }

    # --- internals -------------------------------------------------------------------------

    def _forget_remote(self) -> None:
        """§6.8.1 initial values of the remote variables (also after a detection time)."""
        self.remote_disc = 0
        self.remote_state = DOWN
        self.remote_diag = 0
        self.remote_min_rx = 1
        self.remote_min_tx = 0
        self.remote_mult = 0
        self.remote_demand = False

    def _drop(self, reason: str, detail: str, events: list[Event]) -> list[Event]:
        d = self.stats.dropped
        d[reason] = d.get(reason, 0) + 1
        self.stats.last_drop = f"{reason}: {detail}"
        events.append(PacketDropped(reason, detail))
        return events

    def _desired_tx(self) -> int:
        p = self.params
        return p.min_tx if self.state == UP else max(p.min_tx, p.idle_tx)

    def _set_state(self, new: State, diag: int, events: list[Event]) -> None:
        old = self.state
        if new == old:
            return
        now = self._now
        self.state = new
        self.local_diag = diag
        st = self.stats
        st.last_change = now
        if old == UP:
            st.flaps += 1
            st.up_since = None
            st.last_down_diag = diag
        if new == UP:
            st.ups += 1
            st.up_since = now
        if new == ADMIN_DOWN:
            self._poll_active = self._poll_restart = False
        events.append(StateChanged(old, new, diag, self.remote_state, self.remote_diag, now))
        self._apply_timers()
        self._send_now = True

    def _apply_timers(self) -> None:
        """Bring bfd.DesiredMinTxInterval/RequiredMinRxInterval to what the state and the
        params want (§6.8.3), starting a Poll Sequence when either changes."""
        tx, rx = self._desired_tx(), self.params.min_rx
        changed = False
        up = self.state == UP
        if tx != self._adv_tx:
            self._adv_tx = tx
            changed = True
            if not up or tx < self._tx_used:
                self._tx_used = tx
        if rx != self._adv_rx:
            self._adv_rx = rx
            changed = True
            if not up or rx > self._rx_used:
                self._rx_used = rx
                if self._detect_at is not None and self.stats.last_rx is not None:
                    self._detect_at = self.stats.last_rx + self.detection_time
        if not changed:
            return
        if self.remote_disc == 0 or self.state == ADMIN_DOWN:
            # Nobody to answer a poll: the new values are used and sent as they are.
            self._tx_used, self._rx_used = self._adv_tx, self._adv_rx
            return
        if self._poll_active:
            self._poll_restart = True
            return
        self._poll_active = True
        self.stats.polls += 1
        self._send_now = True

    def _end_poll(self) -> None:
        if self._poll_restart:
            # Values changed while the poll ran: poll again for the latest ones.
            self._poll_restart = False
            self.stats.polls += 1
            self._send_now = True
            return
        self._poll_active = False
        self._tx_used, self._rx_used = self._adv_tx, self._adv_rx

    def _may_transmit(self) -> bool:
        """Whether periodic packets are sent at all (§6.8.7)."""
        if self.params.passive and self.remote_disc == 0:
            return False
        if self.remote_min_rx == 0:
            return False
        return not (
            self.remote_demand
            and self.state == UP
            and self.remote_state == UP
            and not self._poll_active
        )

    def _reschedule_tx(self) -> None:
        """Set the next periodic transmission from the last one and the current interval."""
        if not self._may_transmit():
            self._tx_at = None
            return
        now = self._now
        interval = max(self._tx_used, self.remote_min_rx) / ONE_SECOND
        high = 0.9 if self.params.multiplier == 1 else 1.0
        # Keep a pending transmission that is still within this interval's jitter range.
        last, pending = self._last_tx, self._tx_at
        if (
            pending is not None
            and last is not None
            and last + interval * 0.75 <= pending <= last + interval * high
        ):
            return
        base = self._last_tx if self._last_tx is not None else now
        at = base + interval * self._rng.uniform(0.75, high)
        self._tx_at = at if at > now else now

    def _emit(self, final: bool) -> None:
        poll = self._poll_active and not final
        flags = FLAG_F if final else (FLAG_P if poll else 0)
        content = (self.state, self.local_diag, flags, self.remote_disc, self._adv_tx,
                   self._adv_rx, self.params.multiplier)  # fmt: skip
        if self._auth is None:
            if content == self._last_content:
                data = self._last_data  # most packets repeat the previous one exactly
            else:
                data = pack(self.state, flags, self.local_diag, self.params.multiplier,
                            self.local_disc, self.remote_disc, self._adv_tx, self._adv_rx)  # fmt: skip
                self._last_content, self._last_data = content, data
        else:
            section = self._auth.section(content, self._now)
            data = pack(self.state, flags, self.local_diag, self.params.multiplier,
                        self.local_disc, self.remote_disc, self._adv_tx, self._adv_rx, 0,
                        section, self._auth.send_secret)  # fmt: skip
        self._out.append(data)
        self.stats.tx += 1
        self.stats.last_tx = self._now

    def _flush(self) -> None:
        """Send the packet a state change or a new poll asked for, now."""
        if not self._send_now:
            return
        self._send_now = False
        if self.params.passive and self.remote_disc == 0:
            return
        self._emit(final=False)
        self._last_tx = self._now
        self._tx_at = None
        self._reschedule_tx()


__all__ = [
    "MAX_INTERVAL",
    "ONE_SECOND",
    "Event",
    "PacketDropped",
    "Session",
    "SessionParams",
    "SessionStats",
    "StateChanged",
]

"""Many BFD sessions without I/O: demultiplexing, TTL checks, drop counters, one timer heap.

:class:`Manager` is what the asyncio binding (:mod:`bgpd.bfd.transport`) drives: it hands
in every received datagram with its addressing (source, destination, port, TTL or hop limit,
interface) and the manager finds the session (RFC 5880 §6.3, §6.8.6), checks GTSM (RFC 5881
§5: TTL 255 on port 3784; RFC 5883: a configured minimum on 4784), decodes, and feeds it.
Deadlines of all sessions live in one heap, so the binding needs a single ``call_at`` for the
whole manager, re-armed from :meth:`Manager.next_deadline`. Outgoing packets are collected
per session key with :meth:`Manager.datagrams_to_send`.

Every discarded packet increments exactly one counter of ``Manager.drops`` (and of the
session's own ``stats.dropped`` once it was demultiplexed): malformed, truncated,
wrong_version, wrong_ttl, auth_failure, no_session.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import random
from dataclasses import dataclass

from .packet import (
    DROP_REASONS,
    MULTI_HOP_PORT,
    NO_SESSION,
    SINGLE_HOP_PORT,
    WRONG_TTL,
    ControlPacket,
    Drop,
    decode,
)
from .session import Event, PacketDropped, Session, SessionParams, StateChanged

GTSM_TTL = 255


def normalize_address(text: str) -> str:
    """``"fe80::0001"`` -> ``"fe80::1"``; raises ValueError for what is not an address."""
    return str(ipaddress.ip_address(text.split("%", 1)[0]))


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Identifies a session: the peer, our address, and how the packets travel.

    ``interface`` is set for single-hop sessions bound to an interface (needed for IPv6
    link-local addresses); ``multihop`` sessions use port 4784 and never an interface.
    """

    peer: str
    local: str
    interface: str | None = None
    multihop: bool = False

    @classmethod
    def make(
        cls, peer: str, local: str, interface: str | None = None, multihop: bool = False
    ) -> SessionKey:
        """Checked and normalized; raises ValueError with the reason."""
        p, lo = (
            ipaddress.ip_address(peer.split("%", 1)[0]),
            ipaddress.ip_address(local.split("%", 1)[0]),
        )
        if p.version != lo.version:
            raise ValueError(f"peer {peer} and local {local} are of different families")
        if multihop and interface:
            raise ValueError("a multihop session is not bound to an interface")
        if p.version == 6 and (p.is_link_local or lo.is_link_local) and not interface:
            raise ValueError("an IPv6 link-local session needs its interface")
        return cls(str(p), str(lo), interface or None, bool(multihop))

    @property
    def port(self) -> int:
        return MULTI_HOP_PORT if self.multihop else SINGLE_HOP_PORT

    @property
    def family(self) -> int:
        return 6 if ":" in self.peer else 4

    def __str__(self) -> str:
        where = " multihop" if self.multihop else (f"%{self.interface}" if self.interface else "")
        return f"{self.peer} from {self.local}{where}"


class _Entry:
    __slots__ = ("key", "session", "min_ttl", "armed", "removed")

    def __init__(self, key: SessionKey, session: Session, min_ttl: int | None) -> None:
        self.key = key
        self.session = session
        self.min_ttl = min_ttl
        self.armed: float | None = None  # deadline of this entry's live heap item
        self.removed = False


class Manager:
    """Sessions by key, by local discriminator and by address; see the module docstring."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._entries: dict[SessionKey, _Entry] = {}
        self._by_disc: dict[int, _Entry] = {}
        self._by_addr: dict[tuple[str, str, bool], list[_Entry]] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._out: list[tuple[SessionKey, bytes]] = []
        self.drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.last_drop: str | None = None
        self.rx = 0  # datagrams handed in

    # --- sessions ----------------------------------------------------------------------------

    def add(
        self,
        key: SessionKey,
        params: SessionParams,
        now: float,
        *,
        min_ttl: int | None = None,
        admin_down: bool = False,
    ) -> Session:
        """Create the session for ``key`` (ValueError if it exists). ``min_ttl``: for a
        multihop session, the lowest TTL/hop limit accepted (None: any)."""
        if key in self._entries:
            raise ValueError(f"a BFD session for {key} exists")
        if min_ttl is not None and not 1 <= min_ttl <= 255:
            raise ValueError(f"min_ttl {min_ttl} is not 1..255")
        disc = self._free_discriminator()
        session = Session(params, disc, now, rng=self._rng, admin_down=admin_down)
        entry = _Entry(key, session, min_ttl if key.multihop else None)
        self._entries[key] = entry
        self._by_disc[disc] = entry
        self._by_addr.setdefault((key.peer, key.local, key.multihop), []).append(entry)
        self._touch(entry)
        return session

    def remove(self, key: SessionKey) -> Session | None:
        """Delete the session; a last AdminDown packet is queued for the peer if it is known."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        entry.removed = True
        del self._by_disc[entry.session.local_disc]
        group = self._by_addr[(key.peer, key.local, key.multihop)]
        group.remove(entry)
        if not group:
            del self._by_addr[(key.peer, key.local, key.multihop)]
        last = entry.session.final_admin_down()
        if last is not None:
            self._out.append((key, last))
        return entry.session

    def session(self, key: SessionKey) -> Session | None:
        entry = self._entries.get(key)
        return entry.session if entry else None

    def keys(self) -> list[SessionKey]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def admin_down(self, key: SessionKey, now: float) -> list[tuple[SessionKey, Event]]:
        entry = self._entries[key]
        return self._run(entry, entry.session.admin_down(now))

    def admin_up(self, key: SessionKey, now: float) -> list[tuple[SessionKey, Event]]:
        entry = self._entries[key]
        return self._run(entry, entry.session.admin_up(now))

    def update(
        self, key: SessionKey, params: SessionParams, now: float
    ) -> list[tuple[SessionKey, Event]]:
        entry = self._entries[key]
        return self._run(entry, entry.session.update_params(params, now))

    # --- input -------------------------------------------------------------------------------

    def datagram_received(
        self,
        data: bytes,
        *,
        src: str,
        dst: str,
        port: int,
        ttl: int | None,
        interface: str | None,
        now: float,
    ) -> list[tuple[SessionKey, Event]]:
        """One UDP payload that arrived on ``dst``:``port`` from ``src`` with ``ttl`` (None:
        the kernel did not say) on ``interface``. Returns the sessions' events (state
        changes); drops are counted, never raised."""
        self.rx += 1
        multihop = port == MULTI_HOP_PORT
        if not multihop and ttl != GTSM_TTL:
            return self._count(Drop(WRONG_TTL, f"TTL {ttl} from {src}, single hop needs 255"))
        packet = decode(data)
        if isinstance(packet, Drop):
            return self._count(packet)
        entry = self._demux(packet, src, dst, multihop, interface)
        if isinstance(entry, Drop):
            return self._count(entry)
        if entry.min_ttl is not None and (ttl is None or ttl < entry.min_ttl):
            drop = Drop(WRONG_TTL, f"TTL {ttl} from {src}, at least {entry.min_ttl} required")
            self._session_drop(entry, drop)
            return self._count(drop)
        return self._run(entry, entry.session.receive(packet, now))

    def _demux(
        self, packet: ControlPacket, src: str, dst: str, multihop: bool, interface: str | None
    ) -> _Entry | Drop:
        if packet.your_disc:
            entry = self._by_disc.get(packet.your_disc)
            if entry is None:
                return Drop(NO_SESSION, f"Your Discriminator {packet.your_disc} from {src}")
            k = entry.key
            if k.peer != src or k.local != dst or k.multihop != multihop:
                return Drop(
                    NO_SESSION,
                    f"Your Discriminator {packet.your_disc} belongs to {k}, not {src} -> {dst}",
                )
            if k.interface and interface and k.interface != interface:
                return Drop(NO_SESSION, f"{k} received on {interface}")
            return entry
        group = self._by_addr.get((src, dst, multihop))
        if group:
            fallback = None
            for entry in group:
                if entry.key.interface is None:
                    fallback = entry
                elif interface is None or entry.key.interface == interface:
                    return entry
            if fallback is not None:
                return fallback
        hop = "multihop" if multihop else "single hop"
        return Drop(NO_SESSION, f"no {hop} session for {src} -> {dst}")

    # --- timers ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest deadline of any session (None: none)."""
        heap = self._heap
        while heap:
            when, _, entry = heap[0]
            if entry.removed or entry.armed != when:
                heapq.heappop(heap)  # stale: superseded or removed
                continue
            return when
        return None

    def handle_timer(self, now: float) -> list[tuple[SessionKey, Event]]:
        """Run every session whose deadline is at or before ``now``."""
        out: list[tuple[SessionKey, Event]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, entry = heapq.heappop(heap)
            if entry.removed or entry.armed != when:
                continue
            entry.armed = None
            session = entry.session
            due = session.next_deadline()
            if due is not None and due <= now:
                out += self._run(entry, session.handle_timer(now))
            else:
                self._touch(entry)
        return out

    # --- output ------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[SessionKey, bytes]]:
        """``(key, packet)`` pairs produced since the last call; send to ``key.peer`` on
        ``key.port`` from the session's socket."""
        out = self._out
        if out:
            self._out = []
        return out

    def snapshot(self, now: float) -> dict:
        """``{"sessions": [...], "drops": {...}, "rx": n}`` for ``show bfd`` and metrics."""
        sessions = []
        for key, entry in self._entries.items():
            row = {
                "peer": key.peer,
                "local": key.local,
                "interface": key.interface,
                "multihop": key.multihop,
            }
            if key.multihop:
                row["min_ttl"] = entry.min_ttl
            row.update(entry.session.snapshot(now))
            sessions.append(row)
        return {"sessions": sessions, "drops": dict(self.drops), "rx": self.rx}

    # --- internals ---------------------------------------------------------------------------

    def _free_discriminator(self) -> int:
        while True:
            disc = self._rng.getrandbits(32)
            if disc and disc not in self._by_disc:
                return disc

    def _count(self, drop: Drop) -> list:
        self.drops[drop.reason] = self.drops.get(drop.reason, 0) + 1
        self.last_drop = str(drop)
        return []

    @staticmethod
    def _session_drop(entry: _Entry, drop: Drop) -> None:
        d = entry.session.stats.dropped
        d[drop.reason] = d.get(drop.reason, 0) + 1
        entry.session.stats.last_drop = str(drop)

    def _run(self, entry: _Entry, events: list[Event]) -> list[tuple[SessionKey, Event]]:
        """Count the session's drops, collect its packets, re-arm its deadline."""
        out = []
        for ev in events:
            if isinstance(ev, PacketDropped):
                self.drops[ev.reason] = self.drops.get(ev.reason, 0) + 1
                self.last_drop = f"{ev.reason}: {ev.detail}"
            else:
                out.append((entry.key, ev))
        self._touch(entry)
        return out

    def _touch(self, entry: _Entry) -> None:
        packets = entry.session.packets_to_send()
        if packets:
            key = entry.key
            self._out += [(key, p) for p in packets]
        due = entry.session.next_deadline()
        if due is not None and (entry.armed is None or due < entry.armed):
            entry.armed = due
            heapq.heappush(self._heap, (due, next(self._seq), entry))


__all__ = ["GTSM_TTL", "Manager", "SessionKey", "StateChanged", "normalize_address"]

"""Two sans-I/O sessions back to back over a fake wire, driven by a fake clock.

``Pair.run_until(t)`` advances time from deadline to deadline, delivering every packet after
``delay`` seconds (never, while ``cut`` is set for that direction). Everything each side sent
and every event it reported is recorded with its time.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from bgpd.bfd.packet import ControlPacket, State, decode
from bgpd.bfd.session import Event, Session, SessionParams, StateChanged


@dataclass
class Side:
    name: str
    session: Session
    sent: list[tuple[float, ControlPacket]] = field(default_factory=list)
    events: list[tuple[float, Event]] = field(default_factory=list)
    cut: bool = False  # packets this side sends are lost

    def states(self) -> list[tuple[State, State]]:
        return [(e.old, e.new) for _, e in self.events if isinstance(e, StateChanged)]

    def changes(self) -> list[StateChanged]:
        return [e for _, e in self.events if isinstance(e, StateChanged)]

    def sent_between(self, t0: float, t1: float) -> list[tuple[float, ControlPacket]]:
        return [(t, p) for t, p in self.sent if t0 <= t < t1]


class Pair:
    def __init__(
        self,
        a: SessionParams | None = None,
        b: SessionParams | None = None,
        *,
        seed: int = 1,
        delay: float = 0.001,
        start_b: float = 0.0,
    ) -> None:
        rng = random.Random(seed)
        self.now = 0.0
        self.delay = delay
        self.a = Side("a", Session(a or SessionParams(), 0x0A0A0A0A, 0.0, rng=rng))
        self.b_params = b or SessionParams()
        self.b = None if start_b else Side("b", Session(self.b_params, 0x0B0B0B0B, 0.0, rng=rng))
        self._start_b = start_b
        self._rng = rng
        self._wire: list[tuple[float, int, Side, bytes]] = []
        self._seq = itertools.count()

    def other(self, side: Side) -> Side | None:
        return self.b if side is self.a else self.a

    def sides(self) -> list[Side]:
        return [s for s in (self.a, self.b) if s is not None]

    def _collect(self, side: Side, t: float) -> None:
        for raw in side.session.packets_to_send():
            side.sent.append((t, decode(raw)))
            if not side.cut:
                heapq.heappush(self._wire, (t + self.delay, next(self._seq), side, raw))

    def call(self, side: Side, method: str, *args) -> list[Event]:
        events = getattr(side.session, method)(*args, self.now)
        side.events += [(self.now, e) for e in events]
        self._collect(side, self.now)
        return events

    def run_until(self, t_end: float) -> None:
        while True:
            candidates = []
            if self.b is None and self._start_b:
                candidates.append(self._start_b)
            for s in self.sides():
                d = s.session.next_deadline()
                if d is not None:
                    candidates.append(d)
            if self._wire:
                candidates.append(self._wire[0][0])
            t = min(candidates, default=None)
            if t is None or t > t_end:
                self.now = t_end
                return
            self.now = max(self.now, t)
            if self.b is None and self._start_b and self.now >= self._start_b:
                self.b = Side("b", Session(self.b_params, 0x0B0B0B0B, self.now, rng=self._rng))
            while self._wire and self._wire[0][0] <= self.now:
                _, _, sender, raw = heapq.heappop(self._wire)
                receiver = self.other(sender)
                if receiver is None:
                    continue
                pkt = decode(raw)
                events = receiver.session.receive(pkt, self.now)
                receiver.events += [(self.now, e) for e in events]
                self._collect(receiver, self.now)
            for s in self.sides():
                d = s.session.next_deadline()
                if d is not None and d <= self.now:
                    events = s.session.handle_timer(self.now)
                    s.events += [(self.now, e) for e in events]
                    self._collect(s, self.now)

    def both_up(self) -> bool:
        return all(s.session.state == State.UP for s in self.sides()) and self.b is not None

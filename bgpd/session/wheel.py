"""One event-loop timer for the deadlines of many sessions.

Each :class:`~bgpd.session.peer.PeerSession` keeps its FSM's next deadline armed. With one
``loop.call_at`` handle per session, 5,000 idle sessions cost 1,000 timer handles a second
(keepalives sent every 10 s, hold timers moved by every KEEPALIVE received): creating,
cancelling and heap-ordering them, and an event-loop turn for each, was a fifth of the
daemon's idle CPU. Here deadlines go into slots of ``1 / RATE`` seconds and one handle is
armed at the earliest slot; a slot is served at its end, so a deadline is never served early
and at most one slot late (20 ms: nothing in BGP is that precise; RFC 4271 §10 even asks
for jitter on the keepalive and connect-retry timers).
"""

import heapq
import weakref

RATE = 50  # slots per second


class TimerWheel:
    """Deadlines (on ``clock``, the sessions' clock) of owners with ``_wheel_fired()``."""

    def __init__(self, loop, clock) -> None:
        self.loop = loop
        self.clock = clock
        self.slots: dict = {}  # slot -> {owner: None}, in arrival order
        self.heap: list = []  # slot numbers that hold owners
        self.handle = None
        self.handle_slot: int | None = None

    @staticmethod
    def slot_of(when: float) -> int:
        """The slot serving a deadline: the first that ends at or after it."""
        return int(when * RATE) + 1

    def schedule(self, owner, slot: int) -> int:
        owners = self.slots.get(slot)
        if owners is None:
            owners = self.slots[slot] = {}
            heapq.heappush(self.heap, slot)  # (may already be there, left by a cancel)
        owners[owner] = None
        if self.handle_slot is None or slot < self.handle_slot:
            self._arm(slot)
        return slot

    def cancel(self, owner, slot: int) -> None:
        owners = self.slots.get(slot)
        if owners is not None:
            owners.pop(owner, None)
            if not owners:
                del self.slots[slot]
                heap = self.heap
                if len(heap) > 2 * len(self.slots) + 64:
                    # slot numbers left in the heap by cancellations: rebuild it
                    heap[:] = self.slots.keys()
                    heapq.heapify(heap)

    def __len__(self) -> int:
        return sum(len(o) for o in self.slots.values())

    def _arm(self, slot: int) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle_slot = slot
        delay = slot / RATE - self.clock()
        self.handle = self.loop.call_at(self.loop.time() + max(delay, 0.0), self._fire)

    def _fire(self) -> None:
        self.handle = self.handle_slot = None
        now_slot = self.clock() * RATE
        heap = self.heap
        due = []
        while heap and heap[0] <= now_slot:
            owners = self.slots.pop(heapq.heappop(heap), None)
            if owners:
                due.extend(owners)
        for owner in due:
            owner._wheel_fired()  # serves its due deadlines, schedules its next one
        while heap and heap[0] not in self.slots:
            heapq.heappop(heap)  # emptied by cancellations
        if heap and (self.handle_slot is None or heap[0] < self.handle_slot):
            self._arm(heap[0])  # (an owner may have armed a later slot meanwhile)


_wheels: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def wheel_for(loop, clock) -> TimerWheel | None:
    """The shared wheel of ``loop`` for sessions on ``clock`` (None: the loop cannot be
    keyed weakly, or another clock already owns its wheel)."""
    try:
        w = _wheels.get(loop)
    except TypeError:
        return None
    if w is None:
        w = _wheels[loop] = TimerWheel(loop, clock)
    return w if w.clock == clock else None

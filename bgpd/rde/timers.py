"""Every routing timer of the engine as one set of named deadlines.

A timer is a key (``("gr", peer)``, ``"deferral"``, ...) and a time. Setting a key again
moves it; cancelling forgets it. :meth:`Timers.next` is the earliest deadline (what the
daemon arms its one ``call_at`` for) and :meth:`Timers.due` pops every key whose time has
come. A heap with lazy deletion keeps both cheap with thousands of peers.
"""

import heapq
import itertools


class Timers:
    def __init__(self) -> None:
        self._when: dict = {}  # key -> deadline
        self._heap: list = []  # (deadline, seq, key), stale entries skipped lazily
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._when)

    def __contains__(self, key) -> bool:
        return key in self._when

    def get(self, key) -> float | None:
        return self._when.get(key)

    def set(self, key, when: float) -> None:
        self._when[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))

    def cancel(self, key) -> None:
        self._when.pop(key, None)

    def next(self) -> float | None:
        heap, when = self._heap, self._when
        while heap:
            t, _s, key = heap[0]
            if when.get(key) == t:
                return t
            heapq.heappop(heap)  # cancelled or moved
        return None

    def due(self, now: float) -> list:
        """The keys whose deadline is at or before ``now``, earliest first, removed."""
        out = []
        heap, when = self._heap, self._when
        while heap and heap[0][0] <= now:
            t, _s, key = heapq.heappop(heap)
            if when.get(key) == t:
                del when[key]
                out.append(key)
        return out

    def keys(self) -> list:
        return list(self._when)

"""Rise/fall hysteresis of a health-checked service, as plain state (no clock, no I/O).

A service is *up* (its prefixes announced as configured) or *down* (withdrawn, or announced
with its ``on_fail`` attributes). Check results come in one at a time; the state changes
only after ``rise`` passing results in a row (down → up) or ``fall`` failing results in a
row (up → down), so that a check that flaps is not turned into route flaps. The first result
after a start (or after the check itself was changed by a reload) decides the state at once,
as ExaBGP's healthcheck does out of its INIT state: a restart does not hold a healthy
service back for ``rise`` intervals.
"""

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"  # no result yet


class Hysteresis:
    __slots__ = ("rise", "fall", "state", "streak", "results", "changes")

    def __init__(self, rise: int, fall: int) -> None:
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall are at least 1")
        self.rise = rise
        self.fall = fall
        self.state = UNKNOWN
        self.streak = 0  # results in a row that disagree with the state
        self.results = 0
        self.changes = 0  # state changes after the first decision

    def result(self, ok: bool) -> str | None:
        """Feed one check result; the new state when it changed (the first result always
        decides), else None."""
        self.results += 1
        new = UP if ok else DOWN
        if self.state == UNKNOWN:
            self.state = new
            self.streak = 0
            return new
        if new == self.state:
            self.streak = 0
            return None
        self.streak += 1
        if self.streak < (self.rise if ok else self.fall):
            return None
        self.state = new
        self.streak = 0
        self.changes += 1
        return new

    def reset(self) -> None:
        """The check changed: forget its results (the next one decides at once)."""
        self.state = UNKNOWN
        self.streak = 0

    def retune(self, rise: int, fall: int) -> None:
        """New thresholds, keeping the state (a streak already long enough counts at the
        next result)."""
        self.rise = rise
        self.fall = fall

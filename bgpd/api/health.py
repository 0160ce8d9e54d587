"""Liveness and readiness: pure functions of a speaker snapshot and a clock.

The rules are calico-node's for BIRD (``calico-node -bird-ready``):

* **live**: the event loop answers (whoever evaluates this runs on it, which proves it) and
  the daemon is not stopping;
* **ready**: no graceful restart is in progress, and

  - during the first :data:`STARTUP_GRACE` seconds after start, *every* neighbor is
    Established (a node is not ready before it has the routes of all its peers);
  - afterwards, *at least one* neighbor is Established (a peer that stays down must not take
    the node out of service for good).

  A speaker with no neighbors is ready. Only configured neighbors count: not dynamic ones
  (they exist only while their session does), nor those administratively down
  (``shutdown: true``, ``bgpd neighbor shutdown``, stopped by ``max_prefixes``), which do
  not come up by themselves.

A snapshot is the mapping the speaker builds (``Speaker.snapshot``); only these keys are read:

* ``started``: the clock's value when the daemon started (``time.monotonic()``);
* ``stopping``: bool;
* ``gr_in_progress``: bool (missing: false);
* ``neighbors``: a list of ``{"address": str, "state": str, "enabled": bool, "dynamic":
  bool}``, ``state`` being the RFC 4271 name (``Established``); ``enabled`` and ``dynamic``
  default to true and false.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass

STARTUP_GRACE = 30.0  # seconds during which every neighbor must be Established
ESTABLISHED = "Established"
_LIST_AT_MOST = 5  # neighbors named in a reason


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Health:
    live: bool
    ready: bool
    reason: str  # the liveness reason when not live, else the readiness reason
    live_reason: str
    ready_reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def liveness(snapshot: Mapping) -> Verdict:
    if snapshot.get("stopping"):
        return Verdict(False, "not live: bgpd is stopping")
    return Verdict(True, "live")


def readiness(snapshot: Mapping, now: float, grace: float = STARTUP_GRACE) -> Verdict:
    if snapshot.get("stopping"):
        return Verdict(False, "not ready: bgpd is stopping")
    if snapshot.get("gr_in_progress"):
        return Verdict(False, "not ready: graceful restart in progress")
    counted = [
        n
        for n in snapshot.get("neighbors", ())
        if n.get("enabled", True) and not n.get("dynamic", False)
    ]
    if not counted:
        return Verdict(True, "ready: no neighbors to wait for")
    down = [n["address"] for n in counted if n.get("state") != ESTABLISHED]
    up = len(counted) - len(down)
    total = len(counted)
    age = now - snapshot["started"]
    if age < grace:
        if down:
            return Verdict(
                False,
                f"not ready: {_names(down)} not Established yet "
                f"({up} of {total} up, {age:.0f}s since start; every neighbor must be "
                f"Established during the first {grace:g}s)",
            )
        return Verdict(True, f"ready: {up} of {total} neighbors Established")
    if up == 0:
        return Verdict(False, f"not ready: no neighbor Established ({_names(down)} down)")
    return Verdict(True, f"ready: {up} of {total} neighbors Established")


def check(snapshot: Mapping, now: float, grace: float = STARTUP_GRACE) -> Health:
    live = liveness(snapshot)
    ready = readiness(snapshot, now, grace)
    return Health(
        live=live.ok,
        ready=ready.ok,
        reason=ready.reason if live.ok else live.reason,
        live_reason=live.reason,
        ready_reason=ready.reason,
    )


def _names(addresses: list[str]) -> str:
    shown = ", ".join(addresses[:_LIST_AT_MOST])
    more = len(addresses) - _LIST_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown

"""The route decision engine (RDE): imports, decisions, exports and graceful restart over
the RIB, as one sans-I/O object. See :mod:`bgpd.rde.engine` and docs/architecture.md."""

from . import actions
from .actions import (
    FibConverged,
    Output,
    PauseReading,
    RemovePeer,
    RestartDone,
    ResumeReading,
    SendMessages,
    StartSession,
    StopSession,
)
from .engine import BACKLOG_HIGH, BACKLOG_LOW, Rde
from .graceful import HARD_RESET, PeerDown, graceful_end
from .peer import Link, Peer

__all__ = [
    "BACKLOG_HIGH",
    "BACKLOG_LOW",
    "HARD_RESET",
    "FibConverged",
    "Link",
    "Output",
    "PauseReading",
    "Peer",
    "PeerDown",
    "Rde",
    "RemovePeer",
    "RestartDone",
    "ResumeReading",
    "SendMessages",
    "StartSession",
    "StopSession",
    "actions",
    "graceful_end",
]

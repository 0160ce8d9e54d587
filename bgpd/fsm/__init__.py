"""RFC 4271 §8 session state machine. Events in, actions out. No I/O.

``Protocol(settings)`` is the sans-I/O per-peer core: the binding in :mod:`bgpd.session` feeds
it connection events, bytes and timer expiries, and acts on the :mod:`~bgpd.fsm.events` it
returns.
"""

from . import events, inputs
from .events import (
    CloseRequested,
    ConnectRequested,
    Event,
    NotificationReceived,
    OpenReceived,
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateError,
    UpdateReceived,
)
from .negotiate import Negotiated, build_open, keepalive_interval, negotiate, resolve_collision
from .protocol import (
    HOLD_GRACE,
    HOLD_GRACE_MAX,
    OPENSENT_HOLD_TIME,
    TRANSITIONS,
    Protocol,
    Stats,
    handler_for,
)
from .settings import SessionSettings, session_keys
from .state import State

__all__ = [
    "HOLD_GRACE",
    "HOLD_GRACE_MAX",
    "OPENSENT_HOLD_TIME",
    "TRANSITIONS",
    "CloseRequested",
    "ConnectRequested",
    "Event",
    "Negotiated",
    "NotificationReceived",
    "OpenReceived",
    "Protocol",
    "RouteRefreshReceived",
    "SessionDown",
    "SessionEstablished",
    "SessionSettings",
    "State",
    "StateChanged",
    "Stats",
    "UpdateError",
    "UpdateReceived",
    "build_open",
    "events",
    "handler_for",
    "inputs",
    "keepalive_interval",
    "negotiate",
    "resolve_collision",
    "session_keys",
]

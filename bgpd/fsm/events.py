"""What the protocol object tells its binding: the outputs of every input method.

Each :class:`~bgpd.fsm.protocol.Protocol` method returns a list of these, in the order they
happened. The binding acts on the ones it cares about (open or close the transport, feed the
RIB, log) and ignores the rest. Bytes to write are not events: they are drained with
``Protocol.data_to_send()`` after every call.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..wire import BGPError, Notification, Open, RouteRefresh, Update
from .state import State

if TYPE_CHECKING:
    from .negotiate import Negotiated


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every output event."""


@dataclass(frozen=True, slots=True)
class ConnectRequested(Event):
    """Open an outgoing TCP connection to the peer now (RFC 4271 "initiates a TCP connection").

    Answer with ``connection_made(now, outbound=True)`` or ``connection_failed(now)``.
    """


@dataclass(frozen=True, slots=True)
class CloseRequested(Event):
    """Write what ``data_to_send()`` returns, then close the transport.

    In Connect it also means: abandon the connection attempt in progress. Emitted whenever the
    FSM drops a transport it still believes open or opening; never after
    ``connection_failed``, which already reported the transport gone.
    """


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """The FSM moved from ``old`` to ``new`` (never emitted for a state kept)."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class OpenReceived(Event):
    """The peer's OPEN passed every check; ``open`` is the decoded message.

    The binding runs connection collision detection (RFC 4271 §6.8) on this event and calls
    ``collision_dump`` on the losing connection's protocol object.
    """

    open: Open


@dataclass(frozen=True, slots=True)
class SessionEstablished(Event):
    """The session reached Established with what both sides agreed on."""

    negotiated: "Negotiated"


@dataclass(frozen=True, slots=True)
class SessionDown(Event):
    """The FSM went to Idle. Emitted with every transition into Idle, exactly once.

    ``reason`` is readable; ``notification_sent``/``notification_received`` is the NOTIFICATION
    that ended the session, if any; ``error`` is the local error we detected (also the reason
    of a NOTIFICATION we sent), if any. ``was_established`` tells whether the session was
    Established, i.e. whether the peer's routes must be flushed (or kept stale for GR).
    """

    reason: str
    notification_sent: Notification | None = None
    notification_received: Notification | None = None
    error: BGPError | None = None
    was_established: bool = False


@dataclass(frozen=True, slots=True)
class UpdateReceived(Event):
    """A decoded UPDATE. With an RFC 7606 non-fatal error, ``update.error`` is set and
    ``update.reach()``/``update.unreach()`` already apply treat-as-withdraw."""

    update: Update


@dataclass(frozen=True, slots=True)
class UpdateError(Event):
    """An RFC 7606 error that did not reset the session (treat-as-withdraw or attribute
    discard). Emitted before the :class:`UpdateReceived` it belongs to, for logging."""

    error: BGPError


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived(Event):
    """A ROUTE-REFRESH (RFC 2918) or BoRR/EoRR (RFC 7313) for a negotiated family."""

    rr: RouteRefresh

    @property
    def route_refresh(self) -> RouteRefresh:
        """Alias of ``rr``."""
        return self.rr


@dataclass(frozen=True, slots=True)
class NotificationReceived(Event):
    """The peer sent a NOTIFICATION (``notification.reason``, ``.shutdown_message``).

    Always followed by :class:`SessionDown`.
    """

    notification: Notification


__all__ = [
    "CloseRequested",
    "ConnectRequested",
    "Event",
    "NotificationReceived",
    "OpenReceived",
    "RouteRefreshReceived",
    "SessionDown",
    "SessionEstablished",
    "StateChanged",
    "UpdateError",
    "UpdateReceived",
]

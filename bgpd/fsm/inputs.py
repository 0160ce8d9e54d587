"""The inputs of the state machine: the events of RFC 4271 §8.1, one class each.

The keys of ``TRANSITIONS`` are ``(State, input class)``. The protocol object's public methods
turn calls, timer expiries and received bytes into these; ``Protocol.dispatch`` accepts them
directly (tests drive the table that way). Optional RFC events bgpd does not implement
(AutomaticStop, the DampPeerOscillations variants of AutomaticStart, TcpConnection_Valid,
Tcp_CR_Invalid) have no class: IdleHoldTimerExpires is the automatic start, and checking a
connection's source is the binding's job.
"""

from dataclasses import dataclass
from typing import ClassVar

from ..wire import BGPError, Notification, Open, RouteRefresh, Update
from ..wire.constants import KEEPALIVE, NOTIFICATION, OPEN, ROUTE_REFRESH, UPDATE


@dataclass(frozen=True, slots=True)
class Input:
    """Base class of every FSM input. ``msg_type`` is set on inputs that are received
    messages: it becomes the data of an RFC 6608 FSM-error NOTIFICATION."""

    msg_type: ClassVar[int | None] = None


# --- administrative events (RFC 4271 §8.1.2) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManualStart(Input):
    """Event 1: ManualStart, or Event 4: ManualStart_with_PassiveTcpEstablishment when the
    settings say ``passive``."""


@dataclass(frozen=True, slots=True)
class ManualStop(Input):
    """Event 2: ManualStop. ``subcode`` is the Cease subcode sent if connected (RFC 4486),
    ``message`` the RFC 9003 shutdown communication (subcodes 2 and 4 only)."""

    subcode: int = 2
    message: str = ""


# --- timer events (RFC 4271 §8.1.3) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectRetryTimerExpires(Input):
    """Event 9: ConnectRetryTimer_Expires."""


@dataclass(frozen=True, slots=True)
class HoldTimerExpires(Input):
    """Event 10: HoldTimer_Expires. ``unread_input``: the binding still has bytes it has not
    fed (BIRD's bgp_hold_timeout congestion grace)."""

    unread_input: bool = False


@dataclass(frozen=True, slots=True)
class KeepaliveTimerExpires(Input):
    """Event 11: KeepaliveTimer_Expires."""


@dataclass(frozen=True, slots=True)
class DelayOpenTimerExpires(Input):
    """Event 12: DelayOpenTimer_Expires."""


@dataclass(frozen=True, slots=True)
class IdleHoldTimerExpires(Input):
    """Event 13: IdleHoldTimer_Expires; acts as Event 3/5 AutomaticStart."""


# --- TCP connection events (RFC 4271 §8.1.4) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpCRAcked(Input):
    """Event 16: Tcp_CR_Acked — our outgoing connection is up."""


@dataclass(frozen=True, slots=True)
class TcpConnectionConfirmed(Input):
    """Event 17: TcpConnectionConfirmed — the peer's incoming connection is up."""


@dataclass(frozen=True, slots=True)
class TcpConnectionFails(Input):
    """Event 18: TcpConnectionFails — connect refused or timed out, or the peer closed."""


# --- BGP message events (RFC 4271 §8.1.5) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class BGPOpen(Input):
    """Event 19: BGPOpen, or Event 20: BGPOpen with DelayOpenTimer running (in Connect and
    Active). ``open`` is None when the OPEN arrived in a state that does not decode it."""

    open: Open | None = None
    msg_type: ClassVar[int] = OPEN


@dataclass(frozen=True, slots=True)
class BGPHeaderErr(Input):
    """Event 21: BGPHeaderErr — the message header is malformed (RFC 4271 §6.1)."""

    error: BGPError


@dataclass(frozen=True, slots=True)
class BGPOpenMsgErr(Input):
    """Event 22: BGPOpenMsgErr — the OPEN is malformed or unacceptable (§6.2)."""

    error: BGPError
    msg_type: ClassVar[int] = OPEN


@dataclass(frozen=True, slots=True)
class OpenCollisionDump(Input):
    """Event 23: OpenCollisionDump — this connection lost collision resolution (§6.8)."""


@dataclass(frozen=True, slots=True)
class NotifMsgVerErr(Input):
    """Event 24: NotifMsgVerErr — a NOTIFICATION with Unsupported Version Number (2/1)."""

    notification: Notification
    msg_type: ClassVar[int] = NOTIFICATION


@dataclass(frozen=True, slots=True)
class NotifMsg(Input):
    """Event 25: NotifMsg — any other NOTIFICATION."""

    notification: Notification
    msg_type: ClassVar[int] = NOTIFICATION


@dataclass(frozen=True, slots=True)
class NotifMsgErr(Input):
    """A malformed NOTIFICATION. RFC 4271 §6.4 forbids answering it with a NOTIFICATION: the
    connection is closed silently. (Not an RFC 4271 §8.1 event.)"""

    error: BGPError
    msg_type: ClassVar[int] = NOTIFICATION


@dataclass(frozen=True, slots=True)
class KeepAliveMsg(Input):
    """Event 26: KeepAliveMsg."""

    msg_type: ClassVar[int] = KEEPALIVE


@dataclass(frozen=True, slots=True)
class UpdateMsg(Input):
    """Event 27: UpdateMsg. ``update`` is None when the UPDATE arrived outside Established
    (it is not decoded there: it is an FSM error whatever it contains)."""

    update: Update | None = None
    msg_type: ClassVar[int] = UPDATE


@dataclass(frozen=True, slots=True)
class UpdateMsgErr(Input):
    """Event 28: UpdateMsgErr — an UPDATE error whose RFC 7606 action is session reset."""

    error: BGPError
    msg_type: ClassVar[int] = UPDATE


@dataclass(frozen=True, slots=True)
class RouteRefreshMsg(Input):
    """A ROUTE-REFRESH message (RFC 2918, RFC 7313); ``rr`` is None outside Established."""

    rr: RouteRefresh | None = None
    msg_type: ClassVar[int] = ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class RouteRefreshMsgErr(Input):
    """A malformed ROUTE-REFRESH (RFC 7313 §5: 7/1 Invalid Message Length)."""

    error: BGPError
    msg_type: ClassVar[int] = ROUTE_REFRESH


ALL_INPUTS: tuple[type[Input], ...] = (
    ManualStart,
    ManualStop,
    ConnectRetryTimerExpires,
    HoldTimerExpires,
    KeepaliveTimerExpires,
    DelayOpenTimerExpires,
    IdleHoldTimerExpires,
    TcpCRAcked,
    TcpConnectionConfirmed,
    TcpConnectionFails,
    BGPOpen,
    BGPHeaderErr,
    BGPOpenMsgErr,
    OpenCollisionDump,
    NotifMsgVerErr,
    NotifMsg,
    NotifMsgErr,
    KeepAliveMsg,
    UpdateMsg,
    UpdateMsgErr,
    RouteRefreshMsg,
    RouteRefreshMsgErr,
)

__all__ = [
    "ALL_INPUTS",
    "BGPHeaderErr",
    "BGPOpen",
    "BGPOpenMsgErr",
    "ConnectRetryTimerExpires",
    "DelayOpenTimerExpires",
    "HoldTimerExpires",
    "IdleHoldTimerExpires",
    "Input",
    "KeepAliveMsg",
    "KeepaliveTimerExpires",
    "ManualStart",
    "ManualStop",
    "NotifMsg",
    "NotifMsgErr",
    "NotifMsgVerErr",
    "OpenCollisionDump",
    "RouteRefreshMsg",
    "RouteRefreshMsgErr",
    "TcpCRAcked",
    "TcpConnectionConfirmed",
    "TcpConnectionFails",
    "UpdateMsg",
    "UpdateMsgErr",
]

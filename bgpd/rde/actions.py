"""What the route engine asks the daemon to do: plain values, carried out by the daemon.

The engine never calls up into the daemon. Each of its methods returns a list of these
(possibly empty); :meth:`Rde.drain` returns an :class:`Output` holding the UPDATEs to send.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PauseReading:
    """Stop reading from the peer: the export backlog is high (reading on grows memory)."""

    peer: object


@dataclass(frozen=True, slots=True)
class ResumeReading:
    """The export backlog is low again: read from the peer."""

    peer: object


@dataclass(frozen=True, slots=True)
class StopSession:
    """End the peer's session with a Cease of ``subcode`` (RFC 4486) and keep it down;
    ``reason`` becomes the session's last error."""

    peer: object
    subcode: int
    reason: str


@dataclass(frozen=True, slots=True)
class StartSession:
    """Start the peer's session again (the maximum-prefix restart timer ran out)."""

    peer: object


@dataclass(frozen=True, slots=True)
class RemovePeer:
    """Forget the peer (a dynamic neighbor whose session ended, or one refused at OPEN):
    close its session with Cease ``subcode``, then :meth:`Rde.remove_peer`."""

    peer: object
    subcode: int = 3
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SendMessages:
    """Send these encoded messages to the peer now, ahead of any UPDATE still to drain
    (the BoRR of an enhanced route refresh, RFC 7313)."""

    peer: object
    messages: tuple


@dataclass(frozen=True, slots=True)
class RestartDone:
    """Our graceful restart is over (RFC 4724 §4.1): the OPEN of every next connection
    goes without the R bit."""

    reason: str


@dataclass(frozen=True, slots=True)
class FibConverged:
    """The initial convergence the kernel waits for is over: sweep what a previous run left
    in the FIB and nobody confirmed."""

    reason: str


@dataclass(slots=True)
class Output:
    """What one :meth:`Rde.drain` produced: ``messages`` per peer, ``actions`` to carry out
    (resumed readers), and whether export work is left (``more``)."""

    messages: dict = field(default_factory=dict)
    actions: list = field(default_factory=list)
    more: bool = False

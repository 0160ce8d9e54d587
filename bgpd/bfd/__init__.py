"""BFD: sub-second failure detection (RFC 5880, single hop RFC 5881, multihop RFC 5883).

* :mod:`.packet`: the Control packet codec and the stateless reception checks;
* :mod:`.auth`: simple password, keyed / meticulous keyed MD5 and SHA1 (RFC 5880 §6.7);
* :mod:`.session`: one session's state machine, sans-I/O (time passed in);
* :mod:`.manager`: many sessions, sans-I/O: demultiplexing, GTSM, drop counters, one heap;
* :mod:`.transport`: the asyncio binding (:class:`BfdService`), UDP sockets and one timer;
* :mod:`.config`: the ``bfd:`` section of a neighbor;
* ``python -m bgpd.bfd``: a standalone runner printing state changes as JSON lines.

Everything but :mod:`.transport` and the runner is free of sockets, the event loop and the
clock. The package imports nothing else of bgpd.
"""

from .auth import Auth
from .config import BfdConfig, BfdConfigError
from .manager import Manager, SessionKey
from .packet import AuthType, ControlPacket, Diag, Drop, State, decode, encode
from .session import PacketDropped, Session, SessionParams, StateChanged

__all__ = [
    "Auth",
    "AuthType",
    "BfdConfig",
    "BfdConfigError",
    "ControlPacket",
    "Diag",
    "Drop",
    "Manager",
    "PacketDropped",
    "Session",
    "SessionKey",
    "SessionParams",
    "State",
    "StateChanged",
    "decode",
    "encode",
]

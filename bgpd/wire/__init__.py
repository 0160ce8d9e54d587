"""bytes <-> messages. No I/O, no asyncio, no clock.

The public surface: :class:`Framer` splits a stream, :func:`decode_message` turns a body into
a message, every message has ``encode(ctx)``, :mod:`.packer` builds UPDATEs per attribute set.
"""

from .attrs import DEFAULT_POOL, AttrPool, AttrSet, encode_attrs, intern
from .context import Context
from .errors import Action, BGPError, LocalProtocolError
from .framing import Framer
from .messages import (
    AFS,
    Keepalive,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_message,
    decode_open,
    decode_update,
)
from .packer import end_of_rib, pack_announce, pack_withdraw

__all__ = [
    "AFS",
    "DEFAULT_POOL",
    "Action",
    "AttrPool",
    "AttrSet",
    "BGPError",
    "Context",
    "Framer",
    "Keepalive",
    "LocalProtocolError",
    "MpReach",
    "MpUnreach",
    "Notification",
    "Open",
    "RouteRefresh",
    "Update",
    "decode_message",
    "decode_open",
    "decode_update",
    "encode_attrs",
    "end_of_rib",
    "intern",
    "pack_announce",
    "pack_withdraw",
]

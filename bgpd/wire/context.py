"""The negotiated context passed explicitly to every encode and decode call."""

from dataclasses import dataclass, field

from .constants import MAX_EXTENDED_MESSAGE, MAX_MESSAGE


@dataclass(slots=True)
class Context:
    """What the two speakers agreed on (RFC 4271, 5492, 6793, 7911, 8654, 8950).

    ``add_path_rx`` holds the families whose received NLRI carry path identifiers,
    ``add_path_tx`` those whose sent NLRI carry them. ``ibgp`` selects the iBGP rules of
    RFC 7606 (LOCAL_PREF is discarded when it comes from an external peer).
    ``loopback_next_hop`` accepts loopback next hops: the session runs between two loopback
    addresses, or the neighbor's ``loopback_next_hop`` says so (:mod:`bgpd.wire.nexthop`).
    """

    as4: bool = True
    add_path_rx: frozenset = frozenset()
    add_path_tx: frozenset = frozenset()
    extended_message: bool = False
    ibgp: bool = False
    extended_next_hop: frozenset = frozenset()  # (afi, safi) whose next hop may be IPv6
    loopback_next_hop: bool = False  # 127/8 and ::1 next hops accepted (see .nexthop)
    pool: "object | None" = field(default=None, repr=False)  # an attrs.AttrPool; None = private

    @property
    def max_size(self) -> int:
        return MAX_EXTENDED_MESSAGE if self.extended_message else MAX_MESSAGE


DEFAULT = Context()

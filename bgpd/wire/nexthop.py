"""Which next hops a route may carry: one table for the IPv4 NEXT_HOP attribute and every
MP_REACH_NLRI next hop (IPv6 unicast, and IPv4 unicast over an IPv6 next hop, RFC 8950).

RFC 4271 §6.3 calls a NEXT_HOP that is not a valid IP host address "semantically incorrect"
and says it "SHOULD NOT" close the session: the UPDATE's routes are ignored, which RFC 7606
(§2, §7.3, §7.11) spells treat-as-withdraw, logged with 3/8 Invalid NEXT_HOP. bgpd does that
for every class below, from internal and external peers alike (a route's next hop is as
unusable from an iBGP peer as from an eBGP one), for the NEXT_HOP attribute and the MP_REACH
next hops alike:

| next hop                          | why                          | bgpd     | GoBGP | FRR          | BIRD 1.6 |
|-----------------------------------|------------------------------|----------|-------|--------------|----------|
| 0.0.0.0/8 ("this network")        | RFC 1122 §3.2.1.3(a)(b)      | W        | W     | W            | reset    |
| 127.0.0.0/8 (loopback)            | RFC 1122 §3.2.1.3(g)         | W [1]    | W [1] | W [2]        | accepted |
| 224.0.0.0/4 (multicast)           | RFC 1112 §4, RFC 4271 §6.3   | W        | W     | W            | reset    |
| 240.0.0.0/4 and 255.255.255.255   | RFC 1122 §3.2.1.3(c), RFC    | W        | W     | accepted     | reset    |
|                                   | 1112 §4 (class E)            |          |       |              |          |
| :: (16-octet next hop)            | RFC 4291 §2.5.2              | W        | -     | W            | -        |
| ::1                               | RFC 4291 §2.5.3              | W [1]    | -     | W            | -        |
| ff00::/8 (multicast)              | RFC 4291 §2.7                | W        | -     | W            | -        |
| ::ffff:a.b.c.d (IPv4-mapped)      | RFC 4291 §2.5.5.2            | as a.b.c.d | -   | ::1/multicast only | - |
| fe80::/10 alone (16 octets)       | RFC 2545 §3 wants a global   | accepted | -     | W without an | -        |
|                                   | one; unnumbered fabrics send |          |       | interface [3]|          |
|                                   | the link-local               |          |       |              |          |
| :: then a link-local (32 octets)  | the link-local is the hop    | accepted | -     | accepted     | -        |
| 32 octets, second not fe80::/10   | RFC 2545 §3: the second is   | second   | -     | second       | -        |
|                                   | the link-local address       | ignored  |       | ignored      |          |
| IPv6 next hop for IPv4 NLRI, RFC  | RFC 8950 §3                  | W        | -     | -            | -        |
| 8950 not negotiated               |                              |          |       |              |          |

W: treat-as-withdraw (3/8 logged, session kept); reset: NOTIFICATION 3/8 and the session
closed; -: not checked. GoBGP (osrg/gobgp b7d523b6) checks the NEXT_HOP attribute only, in
``pkg/packet/bgp/validate.go``; FRR (FRRouting/frr fbfc8222) checks NEXT_HOP when parsing
(``bgp_attr_nexthop_valid``, ``ipv4_martian``) and every next hop before use
(``bgp_update_martian_nexthop``), both as treat-as-withdraw; BIRD 1.6 (Calico's, IPv4 build)
sends 3/8 for a NEXT_HOP that ``ipa_classify`` does not call a host address, and 127/8 is one.

[1] Loopback next hops are accepted from a peer whose session itself runs between two
loopback addresses (``Context.loopback_next_hop``): such a peer is this very host, so its
127/8 address never "appears outside a host" (RFC 1122 §3.2.1.3(g)); GoBGP makes the same
exception (``pkg/server/fsm.go``: both ends of the connection loopback). The neighbor key
``loopback_next_hop`` forces the choice either way (``accept`` for a lab whose peers reach
each other through loopback addresses, ``reject`` to test the rule on a loopback session).

[2] FRR's ``bgp allow-martian-nexthop`` (and ``allow-reserved-ranges``) turn it off.

[3] FRR withdraws a link-local global next hop only when it does not know the peer's
interface (a multihop session); bgpd cannot know that at the wire level and leaves it to the
next-hop resolution (a link-local address only resolves on the session's own link).

Nothing here looks at our own addresses: "the IP address of the receiving speaker" (RFC 4271
§6.3) is a check for the speaker, which knows them.
"""

from typing import NamedTuple

from .constants import AFI_IPV4, IPV4_UNICAST
from .prefix import addr_to_str as _text


class Rule(NamedTuple):
    """One class of addresses that is not a usable next hop."""

    network: int  # as an integer of the address's width
    length: int  # prefix length
    name: str
    rfc: str
    loopback: bool = False  # accepted when ``loopback_ok``


IPV4_RULES: tuple[Rule, ...] = (
    Rule(0x00000000, 8, "'this network' 0.0.0.0/8", "RFC 1122 §3.2.1.3"),
    Rule(0x7F000000, 8, "loopback 127.0.0.0/8", "RFC 1122 §3.2.1.3(g)", loopback=True),
    Rule(0xE0000000, 4, "multicast 224.0.0.0/4", "RFC 1112 §4"),
    Rule(0xF0000000, 4, "reserved 240.0.0.0/4 (and broadcast)", "RFC 1122 §3.2.1.3(c)"),
)

IPV6_RULES: tuple[Rule, ...] = (
    Rule(0, 128, "the unspecified address ::", "RFC 4291 §2.5.2"),
    Rule(1, 128, "loopback ::1", "RFC 4291 §2.5.3", loopback=True),
    Rule(0xFF << 120, 8, "multicast ff00::/8", "RFC 4291 §2.7"),
)

_MAPPED = b"\x00" * 10 + b"\xff\xff"  # ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2)
_LINK_LOCAL = 0xFE80 << 112  # fe80::/10


def _match(rules, value: int, bits: int, loopback_ok: bool) -> Rule | None:
    for r in rules:
        if value >> (bits - r.length) == r.network >> (bits - r.length):
            if r.loopback and loopback_ok:
                return None
            return r
    return None


def ipv4_problem(addr: bytes, loopback_ok: bool = False) -> str | None:
    """Why the 4-octet ``addr`` cannot be a next hop, or None when it can."""
    r = _match(IPV4_RULES, int.from_bytes(addr, "big"), 32, loopback_ok)
    if r is None:
        return None
    return f"{_text(addr)} is {r.name} ({r.rfc})"


def is_link_local(addr: bytes) -> bool:
    return len(addr) == 16 and int.from_bytes(addr, "big") >> 118 == _LINK_LOCAL >> 118


def ipv6_problem(addr: bytes, loopback_ok: bool = False) -> str | None:
    """Why the 16-octet ``addr`` cannot be a next hop, or None when it can."""
    if addr[:12] == _MAPPED:
        why = ipv4_problem(addr[12:], loopback_ok)
        return None if why is None else f"{_text(addr)}: {why}"
    r = _match(IPV6_RULES, int.from_bytes(addr, "big"), 128, loopback_ok)
    if r is None:
        return None
    return f"{_text(addr)} is {r.name} ({r.rfc})"


def check_mp_next_hop(family, nh: bytes, ctx) -> tuple[bytes, str | None]:
    """An MP_REACH_NLRI next hop of a length the family allows, checked for ``ctx``.

    Returns the next hop to use (a 32-octet one whose second address is not link-local is cut
    to its global address, as FRR does: RFC 2545 §3 reserves that place for a link-local
    address) and why the routes must be withdrawn, or None.
    """
    loopback_ok = ctx.loopback_next_hop
    n = len(nh)
    if n == 4:
        return nh, ipv4_problem(nh, loopback_ok)
    if family[0] == AFI_IPV4 and family not in ctx.extended_next_hop:
        what = "IPv4" if family == IPV4_UNICAST else f"AFI/SAFI {family[0]}/{family[1]}"
        return nh, (
            f"{_text(nh[:16])} is an IPv6 address for {what} NLRI, and the extended next hop"
            " capability was not negotiated (RFC 8950 §3)"
        )
    glob = nh[:16]
    if n == 32:
        local = nh[16:]
        if not is_link_local(local):
            nh = glob
        elif glob == bytes(16):
            return nh, None  # RFC 2545 §3 as FRR reads it: the link-local one is the next hop
    return nh, ipv6_problem(glob, loopback_ok)


def sendable(family, nh: bytes, ctx) -> bool:
    """Whether ``nh`` may go out as the next hop of ``family`` routes on a session negotiated
    as ``ctx`` (for the export side, which chooses next hops): IPv4 routes take 4 octets, or
    16/32 (global, then link-local) when RFC 8950 was negotiated for them; IPv6 routes 16 or
    32. The packer puts any next hop that is not 4 octets in MP_REACH_NLRI."""
    n = len(nh)
    if family[0] == AFI_IPV4:
        return n == 4 or (n in (16, 32) and family in ctx.extended_next_hop)
    return n in (16, 32)


__all__ = [
    "IPV4_RULES",
    "IPV6_RULES",
    "Rule",
    "check_mp_next_hop",
    "ipv4_problem",
    "ipv6_problem",
    "is_link_local",
    "sendable",
]

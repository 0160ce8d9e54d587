"""Small builders shared by the RIB tests: prefixes, attribute sets, sources, fake members.

Also a tiny "receiving peer" (:class:`View`) that decodes the UPDATEs an export group produced
and keeps the Adj-RIB-In the member would end up with, so tests can assert on the resulting
state as well as on the individual messages.
"""

import ipaddress
import itertools

from bgpd.rib import LocRib, Source
from bgpd.rib.source import router_id_int
from bgpd.wire import AttrSet, Context, decode_update, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    HEADER_LEN,
    IPV4_UNICAST,
    IPV6_UNICAST,
)

IPV4 = IPV4_UNICAST
IPV6 = IPV6_UNICAST
LOCAL_AS = 65000


def P(text: str) -> bytes:
    """A prefix key from text: ``P("10.0.1.0/24") == b"\\x18\\x0a\\x00\\x01"``."""
    return pfx.from_str(text)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def rid(text: str) -> int:
    return router_id_int(text)


def seq(*asns) -> tuple:
    return (AS_SEQUENCE, tuple(asns))


def aset(*asns) -> tuple:
    return (AS_SET, tuple(asns))


def cseq(*asns) -> tuple:
    return (AS_CONFED_SEQUENCE, tuple(asns))


def cset(*asns) -> tuple:
    return (AS_CONFED_SET, tuple(asns))


def path(*segments) -> tuple:
    return tuple(segments)


def A(**kw) -> AttrSet:
    """An interned attribute set; ORIGIN IGP and an empty AS_PATH unless given."""
    kw.setdefault("origin", 0)
    kw.setdefault("as_path", ())
    return intern(AttrSet(**kw))


_counter = itertools.count(1)


def bgp(
    name: str,
    asn: int = 65001,
    *,
    router_id: str | None = None,
    address: str | None = None,
    local_as: int = LOCAL_AS,
    rr_client: bool = False,
    index: int = 0,
    addpath=frozenset(),
) -> Source:
    """A BGP neighbor source. eBGP unless ``asn == local_as``."""
    n = next(_counter)
    hi, lo = divmod(n, 250)
    return Source(
        name,
        "bgp",
        asn=asn,
        local_as=local_as,
        router_id=rid(router_id or f"10.255.{hi % 250}.{lo + 1}"),
        address_key=ip(address or f"198.18.{hi % 250}.{lo + 1}"),
        rr_client=rr_client,
        index=index or (n % 0xFFFF) + 2,  # 0 and 1 are left for local sources
        addpath=frozenset(addpath),
    )


def ibgp(name: str, **kw) -> Source:
    return bgp(name, LOCAL_AS, **kw)


def ebgp(name: str, asn: int = 65001, **kw) -> Source:
    return bgp(name, asn, **kw)


def locribs(cfg=None) -> dict:
    return {IPV4: LocRib(IPV4, cfg), IPV6: LocRib(IPV6, cfg)}


class Recorder:
    """A Loc-RIB listener that keeps copies of every touched map it was given."""

    def __init__(self) -> None:
        self.calls: list = []

    def rib_changed(self, family, touched, locrib) -> None:
        # the best route before the change, as its candidate (Source or Path)
        self.calls.append((family, {p: None if r is None else r.cand for p, r in touched.items()}))


class Member:
    """What an export group needs of a peer: ``.source`` and ``.writable``."""

    def __init__(self, source: Source, writable: bool = True) -> None:
        self.source = source
        self.writable = writable

    def __repr__(self) -> str:
        return f"Member({self.source.name})"


def decode_all(msgs, ctx: Context | None = None) -> list:
    """Decode full UPDATE messages (header included) as the receiving peer would."""
    out = []
    for m in msgs:
        assert m[:16] == b"\xff" * 16
        assert int.from_bytes(m[16:18], "big") == len(m)
        assert m[18] == 2, "not an UPDATE"
        out.append(decode_update(m[HEADER_LEN:], ctx or Context(ibgp=True)))
    return out


class View:
    """The Adj-RIB-In of a member, rebuilt from the UPDATEs it was sent."""

    def __init__(self, ctx: Context | None = None) -> None:
        self.ctx = ctx or Context(ibgp=True)
        self.routes: dict = {IPV4: {}, IPV6: {}}
        self.eor: list = []
        self.log: list = []  # ("A"|"W"|"EOR", family, key) in arrival order
        self.messages = 0

    def apply(self, msgs) -> "View":
        for u in decode_all(msgs, self.ctx):
            self.messages += 1
            assert u.error is None, u.error
            fam = u.eor()
            if fam is not None:
                self.eor.append(fam)
                self.log.append(("EOR", fam, None))
                continue
            for fam, keys in u.unreach():
                for k in keys:
                    self.routes[fam].pop(k, None)
                    self.log.append(("W", fam, k))
            for fam, attrs, keys in u.reach():
                for k in keys:
                    self.routes[fam][k] = attrs
                    self.log.append(("A", fam, k))
        return self

    def announced(self, fam=IPV4) -> list:
        return [k for op, f, k in self.log if op == "A" and f == fam]

    def withdrawn(self, fam=IPV4) -> list:
        return [k for op, f, k in self.log if op == "W" and f == fam]

    def clear_log(self) -> None:
        self.log = []
        self.messages = 0

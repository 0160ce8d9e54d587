"""Our next hop for a family a session's own address is not of (RFC 2545 §3, RFC 8950).

An IPv6 route sent over an IPv4 session needs an IPv6 next hop the receiver can install: the
global IPv6 address of the interface that holds the session's local IPv4 address, as BIRD
and FRR send (a v4-mapped address is installable by nobody). The same the other way round
for IPv4 routes over an IPv6 session without RFC 8950. The interface's addresses are read
with pyroute2 (netlink; link and address handling, where its cost does not matter), in a
thread of its own (its synchronous API drives an event loop of its own) and remembered per
local address for a while: a reflector's thousand sessions share one local address.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import time

import structlog

log = structlog.get_logger("bgpd")

CACHE_SECONDS = 60.0
_cache: dict = {}  # (local address, version) -> (time, packed address or None)


def interface_address(local: str, version: int, now: float | None = None) -> bytes | None:
    """A global address of IP ``version`` on the interface holding ``local`` (packed), or
    None (no such interface or address, or netlink unavailable)."""
    now = time.monotonic() if now is None else now
    key = (local, version)
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            found = ex.submit(_lookup, local, version).result(5)
    except Exception as e:  # netlink refused, timed out: no address, said once per lookup
        log.warning("cannot read the interface's addresses", local=local, error=str(e))
        found = None
    _cache[key] = (now, found)
    return found


def _lookup(local: str, version: int) -> bytes | None:
    from pyroute2 import IPRoute

    want = ipaddress.ip_address(local.split("%")[0])
    with IPRoute() as ipr:
        index = None
        for a in ipr.get_addr():
            if ipaddress.ip_address(a.get("address") or "::") == want:
                index = a["index"]
                break
        if index is None:
            return None
        best = None
        for a in ipr.get_addr(index=index):
            addr = ipaddress.ip_address(a.get("address") or "::")
            if addr.version != version or addr.is_loopback or addr.is_multicast:
                continue
            if addr.is_link_local or a.get("scope", 0) != 0:
                continue  # global scope only
            if best is None:
                best = addr
        return best.packed if best is not None else None

"""The control commands, as a table of named functions over a running daemon.

``COMMANDS`` maps a command name to ``fn(speaker, **args)``; any control front-end serves
them (the JSON socket, bgpd/api/server.py, through :func:`dispatcher`; docs/api.md).
"""

import functools
import ipaddress
import os
import time

from bgpd.api.render import path_to_json
from bgpd.api.server import CommandError, Dispatcher
from bgpd.wire import RouteRefresh
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import FAMILY_BY_NAME, FAMILY_NAMES, IPV4_UNICAST, IPV6_UNICAST

from . import routeapi
from .status import health_check, neighbor_info


def _neighbor(sp, address: str):
    n = sp.neighbors.get(str(address))
    if n is None:
        raise CommandError(f"no neighbor {address}")
    return n


def ping(sp) -> dict:
    return {"pong": True, "pid": os.getpid()}


def health(sp) -> dict:
    return health_check(sp)


def show_neighbors(sp, address: str | None = None) -> dict:
    ns = [_neighbor(sp, address)] if address else list(sp.neighbors.values())
    advertised = sp.rde.advertised_counts()  # one Loc-RIB pass per export group
    return {"neighbors": [neighbor_info(n, advertised) for n in ns]}


def show_summary(sp) -> dict:
    loc = sp.rde.rib.loc
    return {
        "router_id": str(sp.config.router_id),
        "asn": sp.config.asn,
        "uptime": time.monotonic() - sp.started,
        "neighbors": {
            "total": len(sp.neighbors),
            "established": sum(1 for n in sp.neighbors.values() if n.session.established),
        },
        "routes": {"ipv4": len(loc[IPV4_UNICAST]), "ipv6": len(loc[IPV6_UNICAST])},
        "graceful_restart": sp.rde.gr_status(time.monotonic()),
    }


def _sort_key(key):
    return key if isinstance(key, bytes) else (key[1], key[0])


def show_routes(
    sp,
    prefix: str | None = None,
    family: str | None = None,
    neighbor: str | None = None,
    received: bool = False,
    advertised: bool = False,
    limit: int | None = 10000,
) -> dict:
    rde = sp.rde
    fams = [FAMILY_BY_NAME[family]] if family else [IPV4_UNICAST, IPV6_UNICAST]
    want = None
    if prefix:
        net = ipaddress.ip_network(prefix, strict=False)
        want = pfx.from_network(net)
        fams = [IPV4_UNICAST if net.version == 4 else IPV6_UNICAST]
    out = []
    n = _neighbor(sp, neighbor) if neighbor else None
    for fam in fams:
        fname = FAMILY_NAMES[fam]
        if n is not None and received:
            # the Adj-RIB-In: what import accepted, and what it dropped with the reason
            peer = n.peer
            items = [(k, a, None) for k, a in peer.source.adj_in[fam].items()]
            items += [(k, a, True) for k, a in peer.filtered[fam].items()]
            for key, attrs, dropped in sorted(items, key=lambda kv: _sort_key(kv[0])):
                p = key[1] if isinstance(key, tuple) else key
                if want is not None and p != want:
                    continue
                path = path_to_json(attrs, n.address, "bgp")
                path["filtered"] = (
                    rde.imports.why_filtered(peer, attrs, fam, p) if dropped else None
                )
                if isinstance(key, tuple):
                    path["path_id"] = key[0]
                out.append({"prefix": pfx.to_str(p, fam[0]), "family": fname, "paths": [path]})
            continue
        loc = rde.rib.loc[fam]
        keys = [want] if want is not None else sorted(loc.table)
        for p in keys:
            r = loc.route(p)
            if r is None:
                continue
            best, multipath, cands = r
            if n is not None and advertised:
                exp = rde.export_of(n.peer, fam, p)
                if exp is None:
                    continue
                paths = [path_to_json(exp, None, "bgp", best=True)]
            else:
                paths = []
                for c, attrs, lost in cands:
                    src = c.source
                    path = path_to_json(attrs, src.name if src.is_bgp else None, src.kind)
                    path["best"] = c is best
                    path["multipath"] = c in multipath and len(multipath) > 1
                    path["lost_at"] = lost
                    stale = src.stale.get(fam)
                    path["stale"] = bool(stale) and (p if not c.pid else (c.pid, p)) in stale
                    if c.pid:
                        path["path_id"] = c.pid
                    paths.append(path)
                paths.sort(key=lambda x: not x["best"])
            entry = {"prefix": pfx.to_str(p, fam[0]), "family": fname, "paths": paths}
            if sp.kernel is not None and not (n is not None and advertised):
                entry["kernel"] = sp.kernel.status(fam, p)
            out.append(entry)
            if limit and len(out) >= limit:
                break
    return {"routes": out}


def neighbor_reset(sp, address: str, message: str = "") -> dict:
    _neighbor(sp, address).session.reset(message)
    return {"address": address, "action": "reset"}


def neighbor_shutdown(sp, address: str, message: str = "") -> dict:
    _neighbor(sp, address).session.stop(subcode=2, message=message)
    return {"address": address, "action": "shutdown"}


def neighbor_enable(sp, address: str, message: str = "") -> dict:
    s = _neighbor(sp, address).session
    if not s.enabled:
        s.start()
    return {"address": address, "action": "enable"}


def neighbor_refresh(sp, address: str, message: str = "", direction: str = "in") -> dict:
    n = _neighbor(sp, address)
    if not n.session.established:
        raise CommandError(f"neighbor {address} is not Established")
    for fam in sorted(n.session.fsm.negotiated.families):
        if direction in ("in", "both"):
            n.session.send_route_refresh(fam[0], fam[1])
        if direction in ("out", "both"):
            sp.route_refresh_received(n.session, RouteRefresh(fam[0], fam[1], 0))
    return {"address": address, "action": "refresh", "direction": direction}


def show_bfd(sp) -> dict:
    """Every BFD session (docs/bfd.md), each with its neighbor."""
    return sp.bfd.snapshot()


def show_monitoring(sp) -> dict:
    """The MRT update log, the BMP stations and the table dumps (docs/monitoring.md)."""
    return sp.monitor.stats()


async def dump_table(sp, file: str) -> dict:
    """Write a TABLE_DUMP_V2 file of the Loc-RIB and the Adj-RIBs-In to ``file`` (an absolute
    path on the daemon's host; ``.gz``/``.bz2`` compress). Encoded between event loop turns,
    written by a thread: BGP keeps running while it is written."""
    if not isinstance(file, str) or not file:
        raise CommandError("dump_table: file must be a path")
    if not os.path.isabs(file):
        raise CommandError(f"dump_table: {file!r} is not an absolute path")
    parent = os.path.dirname(file)
    if not os.path.isdir(parent):
        raise CommandError(f"dump_table: no directory {parent}")
    try:
        return await sp.monitor.dump_table(file)
    except RuntimeError as e:
        raise CommandError(str(e))
    except OSError as e:
        raise CommandError(f"dump_table: {file}: {e.strerror or e}")


def reload(sp) -> dict:
    result = sp.reload()
    if not result["ok"]:
        raise CommandError(result["error"])
    return result


COMMANDS = {
    "ping": ping,
    "health": health,
    "show_neighbors": show_neighbors,
    "show_summary": show_summary,
    "show_routes": show_routes,
    "show_bfd": show_bfd,
    "neighbor_reset": neighbor_reset,
    "neighbor_shutdown": neighbor_shutdown,
    "neighbor_enable": neighbor_enable,
    "neighbor_refresh": neighbor_refresh,
    "reload": reload,
    **routeapi.COMMANDS,  # route_add, route_del, route_list, show_services
    "show_monitoring": show_monitoring,
    "dump_table": dump_table,
}


def dispatcher(sp) -> Dispatcher:
    """The commands bound to a running daemon, for the control socket."""
    return Dispatcher({name: functools.partial(fn, sp) for name, fn in COMMANDS.items()})

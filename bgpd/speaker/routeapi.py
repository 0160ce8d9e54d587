"""The route API's control commands: ``route_add``, ``route_del``, ``route_list``, and
``show_services`` (docs/api.md). Entries of :data:`bgpd.speaker.control.COMMANDS`.

Every argument is checked before anything changes: a request the API refuses (host bits in
the prefix, a malformed community, an unknown owner, a lease that is not a duration) is a
:class:`CommandError` whose text says why, and the RIB is as it was.
"""

import time

import structlog

from bgpd.api.server import CommandError
from bgpd.config.services import parse_duration
from bgpd.rde.origins import (
    API,
    DEFAULT_OWNER,
    RouteError,
    parse_owner,
    parse_prefix,
    route_spec,
)
from bgpd.rib import best_of
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import FAMILY_BY_NAME, FAMILY_NAMES

log = structlog.get_logger("bgpd.api")

LEASE_MIN = 1.0
LEASE_MAX = 30 * 86400.0


def parse_lease(value) -> float | None:
    """A lease: seconds (a number) or a duration (``"30s"``, ``"2m"``); None: no lease."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise RouteError(f"lease: {e}") from None
    if not LEASE_MIN <= seconds <= LEASE_MAX:
        raise RouteError(f"lease {value!r} is out of range ({LEASE_MIN:g}s..30d)")
    return seconds


def route_add(
    sp,
    prefix,
    next_hop=None,
    communities=None,
    large_communities=None,
    local_pref=None,
    med=None,
    as_path_prepend=None,
    owner=None,
    lease=None,
) -> dict:
    """Announce ``prefix`` as a route of ``owner`` (default ``default``); again: replace its
    attributes in place and renew its lease."""
    try:
        fam, key, text = parse_prefix(prefix)
        who = parse_owner(owner)
        spec = route_spec(
            fam,
            next_hop=next_hop,
            communities=communities,
            large_communities=large_communities,
            local_pref=local_pref,
            med=med,
            as_path_prepend=as_path_prepend,
        )
        seconds = parse_lease(lease)
    except RouteError as e:
        raise CommandError(str(e)) from None
    action = sp.rde.route_add(who, fam, key, spec, time.monotonic(), lease=seconds)
    sp.kick()
    if action != "unchanged" and action != "renewed":
        log.info("route " + action, prefix=text, owner=who, lease=seconds, **spec.to_json())
    return {"prefix": text, "owner": who, "action": action, "lease": seconds, **spec.to_json()}


def route_del(sp, prefix, owner=None) -> dict:
    """Withdraw ``owner``'s route for ``prefix``; another owner's route for it stays."""
    try:
        fam, key, text = parse_prefix(prefix)
        who = parse_owner(owner)
        sp.rde.route_del(who, fam, key)
    except RouteError as e:
        raise CommandError(str(e)) from None
    sp.kick()
    log.info("route deleted", prefix=text, owner=who)
    return {"prefix": text, "owner": who, "action": "deleted"}


def route_list(sp, owner=None, family=None) -> dict:
    """The route API's routes (of one ``owner``, of one ``family``), with their leases and
    whether each is the best path of its prefix."""
    origins = sp.rde.origins
    try:
        who = None if owner is None else parse_owner(owner)
        if who is not None:
            origins.owner(API, who)
    except RouteError as e:
        raise CommandError(str(e)) from None
    fam = None
    if family is not None:
        fam = FAMILY_BY_NAME.get(family)
        if fam is None:
            raise CommandError(f"family: expected ipv4 or ipv6, got {family!r}")
    now = time.monotonic()
    loc = sp.rde.rib.loc
    routes = []
    for o, f, p, r in origins.routes(API, who):
        if fam is not None and f != fam:
            continue
        routes.append(
            {
                "prefix": pfx.to_str(p, f[0]),
                "family": FAMILY_NAMES[f],
                "owner": o.name,
                **r.spec.to_json(),
                "lease": r.lease,
                "expires_in": None if r.expires is None else round(max(0.0, r.expires - now), 3),
                "age": round(now - r.added, 3),
                "best": _source_of(best_of(loc[f].table.get(p))) is o.source,
            }
        )
    owners = [
        {"owner": n, "routes": len(origins.owners[(API, n)].routes)} for n in origins.names(API)
    ]
    return {"routes": routes, "owners": owners, "default_owner": DEFAULT_OWNER}


def _source_of(candidate):
    return None if candidate is None else candidate.source


def show_services(sp) -> dict:
    """The health-checked services: state, last result, schedule."""
    services = sp.services.status() if sp.services is not None else []
    return {"services": services}


COMMANDS = {
    "route_add": route_add,
    "route_del": route_del,
    "route_list": route_list,
    "show_services": show_services,
}

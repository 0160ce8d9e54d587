"""What a running bgpd reports: the metrics snapshot, health, one neighbor's details."""

import time

from bgpd.api import health
from bgpd.fsm import State
from bgpd.wire.capabilities import capability_name
from bgpd.wire.constants import FAMILY_NAMES, IPV4_UNICAST, IPV6_UNICAST

STATE_NAMES = {
    "IDLE": "Idle",
    "CONNECT": "Connect",
    "ACTIVE": "Active",
    "OPENSENT": "OpenSent",
    "OPENCONFIRM": "OpenConfirm",
    "ESTABLISHED": "Established",
}


def state_name(state: State) -> str:
    return STATE_NAMES.get(state.name, state.name.title())


def message_counts(stats, direction: str) -> dict:
    src = getattr(stats, f"messages_{direction}", None) or {}
    out = {k: 0 for k in ("open", "update", "notification", "keepalive", "route_refresh")}
    for k, v in dict(src).items():
        key = str(k).lower().replace("-", "_")
        out[key] = out.get(key, 0) + v
    out["total"] = sum(v for k, v in out.items() if k != "total")
    return out


def snapshot(sp, prefixes: bool = True) -> dict:
    """What metrics and health checks read, at the time they ask (the shape is documented
    in bgpd/api/metrics.py). ``prefixes=False`` leaves out the per-neighbor prefix counts,
    which take a pass over the Loc-RIB per export group."""
    rde = sp.rde
    advertised = rde.advertised_counts() if prefixes else {}
    neighbors = []
    for n in sp.neighbors.values():
        s = n.session
        stats = s.fsm.stats
        entry = {
            "address": n.address,
            "asn": n.cfg.asn,
            "state": state_name(s.state),
            "enabled": s.enabled,
            "dynamic": n.dynamic_from is not None,
            "flaps": stats.flaps,
            "updates": {"in": stats.updates_in, "out": stats.updates_out},
            "messages": {"in": message_counts(stats, "in"), "out": message_counts(stats, "out")},
        }
        if prefixes:
            entry["prefixes"] = {
                "received": n.peer.received_count(),
                "accepted": n.peer.accepted_count(),
                "advertised": advertised.get(n.peer, 0),
            }
        neighbors.append(entry)
    fib = sp.kernel.fib if sp.kernel is not None else None
    fib_stats = None
    if fib is not None:
        fib_stats = {"routes": fib.count(), "sync_errors": fib.stats.get("failed", 0)}
    r = sp.reloads
    loc = rde.rib.loc
    return {
        "router_id": str(sp.config.router_id),
        "asn": sp.config.asn,
        "started": sp.started,
        "stopping": sp.stopping.is_set(),
        "gr_in_progress": rde.gr_in_progress,
        "neighbors": neighbors,
        "rib": {FAMILY_NAMES[f]: len(loc[f]) for f in (IPV4_UNICAST, IPV6_UNICAST)},
        "fib": fib_stats,
        "reloads": {
            "ok": r["ok"],
            "error": r["error"],
            "last_timestamp": r["last"],  # of the last successful one
            "last_result": "error" if r["last_error"] else "ok" if r["ok"] else None,
        },
        "dynamic_refused": sp.neighbors.refused,
        "bfd": sp.bfd.snapshot() if sp.bfd.service is not None else None,
        "monitoring": sp.monitor.stats(),
    }


def health_check(sp) -> dict:
    """Liveness and readiness (bgpd/api/health.py); also served on /livez and /readyz."""
    now = time.monotonic()
    result = health.check(snapshot(sp, prefixes=False), now).as_dict()
    plain = result["ready_reason"]
    ours = sp.rde.gr.ours
    if ours.restarting and plain == "not ready: graceful restart in progress":
        # Not ready because of our own restart: say why it is one and what it waits for.
        detail = f"{plain}: ours ({ours.reason})"
        if ours.waiting:
            detail += f", waiting for End-of-RIB from {', '.join(sorted(ours.waiting))}"
        if ours.deferral_end is not None:
            detail += f", {max(0.0, ours.deferral_end - now):.0f} s of selection deferral left"
        result["ready_reason"] = detail
        if result["reason"] == plain:
            result["reason"] = detail
    return result


def neighbor_info(n, advertised: dict) -> dict:
    """One neighbor for ``show neighbors``; ``advertised`` from ``Rde.advertised_counts``."""
    s = n.session
    fsm = s.fsm
    neg = fsm.negotiated if s.established else None
    stats = fsm.stats
    now = time.monotonic()
    caps = []
    fams = []
    hold = keepalive = router_id = None
    if neg is not None:
        caps = sorted({capability_name(c.code) for c in neg.peer_open.capabilities})
        fams = sorted(FAMILY_NAMES.get(f, str(f)) for f in neg.families)
        hold = neg.hold_time
        keepalive = neg.keepalive
        router_id = neg.peer_open.router_id
    est = stats.established_at
    peer = n.peer
    return {
        "address": n.address,
        "asn": n.cfg.asn,
        "state": state_name(s.state),
        "router_id": router_id,
        "local_address": s.local_address(),
        "uptime": (now - est) if (s.established and est is not None) else None,
        "since": now - n.state_since,
        "hold_time": hold,
        "keepalive": keepalive,
        "capabilities": caps,
        "families": fams,
        "last_error": s.last_error or fsm.last_error or None,
        "messages": {"in": message_counts(stats, "in"), "out": message_counts(stats, "out")},
        "prefixes": {
            "received": peer.received_count(),
            "accepted": peer.accepted_count(),
            "advertised": advertised.get(peer, 0),
        },
        "description": n.cfg.description,
        "dynamic_from": n.dynamic_from,
        "graceful_restart": {
            "peer_capable": peer.helper.cap is not None,
            "state": peer.helper.state,
            "stale_routes": peer.stale_count(),
        },
    }

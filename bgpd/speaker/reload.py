"""Live reload: re-read the config file and apply the difference (SIGHUP, ``bgpd reload``).

An invalid file changes nothing: the running config stays, and the error names the file,
the key and the reason. Only sessions whose session parameters changed are reset; policy,
role and network changes are applied to the running sessions.
"""

import time

import structlog

from bgpd.config import ConfigError
from bgpd.config import diff as config_diff
from bgpd.config import load as load_config
from bgpd.wire.constants import CEASE_CONFIG_CHANGE, CEASE_PEER_DECONFIGURED

log = structlog.get_logger("bgpd")


def reload(sp) -> dict:
    if not sp.config_path:
        return {"ok": False, "error": "bgpd was started without a config file to re-read"}
    try:
        new = load_config(sp.config_path)
    except ConfigError as e:
        sp.reloads["error"] += 1
        sp.reloads["last_error"] = str(e)
        log.error("reload failed, keeping the running configuration", error=str(e))
        return {"ok": False, "error": str(e)}
    changes = apply_config(sp, new)
    sp.reloads["ok"] += 1
    sp.reloads["last"] = time.time()
    sp.reloads["last_error"] = None
    log.info("reloaded", **{k: v for k, v in changes.items() if v})
    return {"ok": True, **changes}


def apply_config(sp, new) -> dict:
    d = config_diff(sp.config, new)
    sp.config = new
    rde = sp.rde
    table = sp.neighbors
    summary: dict = {"added": [], "removed": [], "reset": [], "updated": []}
    if d.reset_all or "cluster_id" in d.globals_changed or "listen" in d.globals_changed:
        # Identity or listeners changed: rebuild every session on the new config.
        sp.rebuild()
        summary["reset"] = sorted(table)
        return summary
    policies_changed = "policies" in d.globals_changed
    decision_changed = any(
        k in d.globals_changed for k in ("multipath", "multipath_relax", "always_compare_med")
    )
    rde.reconfigure(
        decision=sp.decision_config(new) if decision_changed else None,
        policies=new.policies if policies_changed else None,
    )
    if "dynamic_neighbors" in d.globals_changed or "templates" in d.globals_changed:
        table.set_dynamic(new)
        ranges = {str(net) for net, *_ in table.dynamic}
        for n in list(table.values()):
            if n.dynamic_from is not None and n.dynamic_from not in ranges:
                table.remove(n, CEASE_PEER_DECONFIGURED)
    for ncfg in d.removed:
        n = table.get(str(ncfg.address))
        if n is not None:
            table.remove(n, CEASE_PEER_DECONFIGURED, "neighbor removed from the configuration")
            summary["removed"].append(n.address)
    for ch in d.changed:
        n = table.get(str(ch.address))
        if n is None:
            continue
        if ch.session:
            table.remove(n, CEASE_CONFIG_CHANGE, "session parameters changed")
            sp.add_neighbor(ch.new)
            summary["reset"].append(n.address)
        else:
            update_neighbor(sp, n, ch.new, ch.keys)
            summary["updated"].append(n.address)
    for ncfg in d.added:
        sp.add_neighbor(ncfg)
        summary["added"].append(str(ncfg.address))
    if policies_changed:
        changed = {c.address for c in d.changed}
        for n in list(table.values()):
            if n.address not in changed and (n.cfg.import_policy or n.cfg.export_policy):
                update_neighbor(sp, n, n.cfg, ("import_policy", "export_policy"))
                summary["updated"].append(n.address)
    if d.networks_changed:
        rde.originate(sp.networks_of(new))
    for lst in sp.listeners:
        table.set_listener_keys(lst)
    rde.commit()
    sp.kick()
    return summary


def update_neighbor(sp, n, new, keys) -> None:
    """Apply non-session changes to a running neighbor, without a reset."""
    old = n.cfg
    n.cfg = new
    sp.rde.update_peer(n.peer, new)
    if "shutdown" in keys:
        if new.shutdown:
            n.session.stop(message="shut down by configuration")
        elif not n.session.enabled:
            n.session.start()
    if "connect_retry" in keys or "delay_open" in keys:
        n.session.settings = sp.neighbors.settings_for(new, n.peer.asn_mode)
    if not n.session.established:
        return
    if old.import_policy != new.import_policy or "import_policy" in keys:
        refresh_in(n)
    if (
        old.export_policy != new.export_policy
        or "export_policy" in keys
        or "rr_client" in keys
        or "next_hop_self" in keys
    ):
        sp.rde.resend(n.peer)


def refresh_in(n) -> None:
    """Re-evaluate imports: ask for the routes again (RFC 2918), or reset when we can't."""
    neg = n.session.fsm.negotiated
    if neg is not None and neg.route_refresh:
        for fam in sorted(neg.families):
            n.session.send_route_refresh(fam[0], fam[1])
    else:
        log.warning(
            "import policy changed and the neighbor has no route refresh: resetting",
            peer=n.address,
        )
        n.session.reset("import policy changed")

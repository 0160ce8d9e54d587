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
from bgpd.kernel.settings import KernelSettings
from bgpd.wire.constants import CEASE_CONFIG_CHANGE, CEASE_PEER_DECONFIGURED

log = structlog.get_logger("bgpd")


def reload(sp) -> dict:
    if not sp.config_path and sp.bird is None:
        return {"ok": False, "error": "bgpd was started without a config file to re-read"}
    errors: tuple = (ConfigError,)
    if sp.bird is not None:  # the BIRD front-end is loaded only when running on a BIRD file
        from bgpd.bird import BirdError

        errors = (ConfigError, BirdError)
    try:
        if sp.bird is not None:
            setup = sp.bird.reload()
            new = setup.config
        else:
            new = load_config(sp.config_path)
    except errors as e:
        sp.reloads["error"] += 1
        sp.reloads["last_error"] = str(e)
        log.error("reload failed, keeping the running configuration", error=str(e))
        return {"ok": False, "error": str(e)}
    if sp.bird is not None:
        changes = apply_bird(sp, setup)
    else:
        changes = apply_config(sp, new)
    sp.reloads["ok"] += 1
    sp.reloads["last"] = time.time()
    sp.reloads["last_error"] = None
    log.info("reloaded", **{k: v for k, v in changes.items() if v})
    return {"ok": True, "message": _message(changes), **changes}


def _message(changes: dict) -> str:
    """``reloaded: 1 neighbor added, 2 updated; needs a restart: control_socket: ...``."""
    parts = []
    for key, word in (("added", "added"), ("removed", "removed"), ("reset", "reset")):
        if changes.get(key):
            n = len(changes[key])
            parts.append(f"{n} neighbor{'s' if n != 1 else ''} {word}")
    if changes.get("updated"):
        parts.append(f"{len(changes['updated'])} updated without a reset")
    text = "reloaded" + (": " + ", ".join(parts) if parts else "")
    if changes.get("restart_needed"):
        text += "; needs a restart to apply: " + "; ".join(changes["restart_needed"])
    return text


def apply_config(sp, new) -> dict:
    old = sp.config
    d = config_diff(old, new)
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
    summary["restart_needed"] = apply_globals(sp, old, d.globals_changed)
    for lst in sp.listeners:
        table.set_listener_keys(lst)
    rde.commit()
    sp.kick()
    return summary


# Top-level keys a reload cannot apply, and why (everything else is applied at once).
RESTART_ONLY = {
    "control_socket": "the control socket is bound at start",
}


def apply_globals(sp, old, changed) -> list[str]:
    """Apply top-level sections other than neighbors, networks, policies and decision
    options; returns what needs a restart, as ``"key: why"``."""
    need = [f"{k}: {why}" for k, why in RESTART_ONLY.items() if k in changed]
    new = sp.config
    if "graceful_restart" in changed:
        # the capability goes into the OPEN of every next connection; sessions up keep theirs
        sp.rde.reconfigure(graceful=new.graceful_restart)
        sp.neighbors.update_opens()
    if "metrics" in changed:
        sp.loop.create_task(sp.start_metrics())
    if "kernel" in changed or "host_routes" in changed:
        need += _reload_kernel(sp, old, new)
    if "mrt" in changed or "bmp" in changed:
        need += sp.monitor.apply(changed)  # a new log pattern, a new station list
    for line in need:
        log.warning("reload: needs a restart", change=line)
    return need


def _reload_kernel(sp, old, new) -> list[str]:
    kcfg_old = sp.kernel.settings if sp.kernel is not None else None
    settings = KernelSettings.from_config(new, netns=kcfg_old.netns if kcfg_old else None)
    if sp.kernel is None:
        if settings is None:
            return []
        if settings.netlink:
            return ["kernel/host_routes: the kernel side starts with the daemon"]
        sp.loop.create_task(sp.start_kernel())  # static routes only: nothing to wait for
        return []
    if settings is None:
        return ["kernel/host_routes: removing the kernel side needs a restart"]
    need = sp.kernel.reconfigure(settings)
    if (old.kernel.import_policy if old.kernel else ()) != (
        new.kernel.import_policy if new.kernel else ()
    ):
        need.append("kernel.import: the FIB writer's filter is set at start")
    return need


def apply_bird(sp, setup) -> dict:
    """A reload on a BIRD configuration: the Config's difference as usual, and neighbors
    whose filters changed (they are not in the Config) get them in place: route refresh in,
    their table again out, no reset (BIRD's ``configure`` re-evaluates filters the same)."""
    old_setup = sp.bird
    before = {
        a: (f.fingerprint() if (f := old_setup.filters_for(a)) is not None else None)
        for a in sp.neighbors
    }
    sp.bird = setup
    summary = apply_config(sp, setup.config)
    for n in list(sp.neighbors.values()):
        filters = setup.filters_for(n.address)
        if filters is None or n.address not in before:
            continue
        if filters.fingerprint() == before[n.address]:
            n.peer.filters = filters  # same filters, the new setup's objects
            continue
        sp.rde.update_peer(n.peer, n.cfg, filters)
        if n.session.established:
            refresh_in(n)
            sp.rde.resend(n.peer)
        if n.address not in summary["updated"] and n.address not in summary["reset"]:
            summary["updated"].append(n.address)
    sp.kick()
    return summary


def update_neighbor(sp, n, new, keys) -> None:
    """Apply non-session changes to a running neighbor, without a reset."""
    old = n.cfg
    n.cfg = new
    sp.rde.update_peer(n.peer, new)
    if "bfd" in keys:
        sp.bfd.reconfigure(n, old)
    if "shutdown" in keys:
        if new.shutdown:
            n.session.stop(message="shut down by configuration")
        elif not n.session.enabled and not sp.bfd.holds(n):
            n.session.start()
    if any(
        k in keys
        for k in ("connect_retry", "delay_open", "connect_delay", "error_wait", "error_forget")
    ):
        n.session.update_settings(sp.neighbors.settings_for(new, n.peer.asn_mode))
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

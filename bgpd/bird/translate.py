"""From a parsed BIRD configuration to bgpd's own running configuration.

:func:`translate` builds the YAML-shaped mapping that bgpd's loader checks
(``bgpd.config.parse``), so the result is an ordinary, validated :class:`~bgpd.config.Config`,
for every knob bgpd already has: router id, listen, neighbors (address, port, AS, local AS,
source address, passive, multihop / TTL security, password, route-reflector client and
cluster id, next hop self/keep, allow local AS, graceful restart, ADD-PATH, hold time and
keepalive, description), static routes, the connected-interface globs of ``protocol direct``,
kernel learning and installation (table, protocol 12 ``bird``, metric, persist, ECMP).

What ``Config`` cannot express goes into :class:`BirdExtras`, for the daemon to wire in: the
filters as compiled :class:`~.program.Program` objects, BIRD's protocol names and order,
per-protocol preferences, BIRD's connect delay and error wait timers, ``debug``, and the
places where the translation had to approximate (``notes``).
"""

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from bgpd.config import Config, ConfigError
from bgpd.config import parse as parse_config

from . import model
from .program import Program, compile_filter


def _ip(value: int, ipv6: bool) -> str:
    return str(ipaddress.IPv6Address(int(value)) if ipv6 else ipaddress.IPv4Address(int(value)))


def _rid(value: int) -> str:
    return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))


# A filter slot after translation: None (BIRD "all": accept everything), REJECT ("none",
# or no filter on an export) or a Program.
REJECT = model.REJECT


def _program(f, ipv6: bool, export: bool = True, cache: dict | None = None):
    """The compiled filter; structurally equal filters (Calico writes the same inline filter
    into every ``protocol bgp``) share one Program, so that the daemon can share their export
    contexts and groups (a runtime error then names the first one's file and line)."""
    if f is None or f == REJECT:
        return f
    if cache is None:
        return compile_filter(f, ipv6, export)
    key = (f.name, repr(f.body), repr(f.locals), ipv6, export)
    prog = cache.get(key)
    if prog is None:
        prog = cache[key] = compile_filter(f, ipv6, export)
    return prog


@dataclass
class NeighborExtras:
    """What one ``protocol bgp`` adds to its ``Config`` neighbor."""

    name: str  # the BIRD protocol name (Mesh_10_192_0_3): what `show protocols` prints
    address: str  # the neighbor address, as in Config.neighbors[...].address
    import_filter: "Program | str | None"  # None: accept all; "none": reject all
    export_filter: "Program | str | None"
    preference: int  # BIRD route preference of routes from this neighbor (default 100)
    connect_delay: int  # seconds before the first connect (BIRD default 5, Calico 2)
    error_wait: tuple[int, int]  # restart delay after an error: min, max (doubles)
    error_forget: int  # errors older than this are forgotten (BIRD 300)
    startup_hold_time: int  # hold time before the session is established (BIRD 240)
    gateway: str  # "direct" or "recursive": how the NEXT_HOP is resolved
    graceful_restart: "bool | str"  # True, False, or "aware" (helper only)
    graceful_restart_time: int
    rr_cluster_id: str | None  # this protocol's ``rr cluster id`` (None: the router id)
    default_local_pref: int  # LOCAL_PREF BIRD puts on routes exported to iBGP (100)
    debug: frozenset
    description: str | None
    disabled: bool


@dataclass
class ProtocolInfo:
    """One protocol in BIRD's creation order (for `show protocols`)."""

    name: str
    kind: str  # kernel, device, direct, static, bgp
    proto: str  # as `show protocols` prints it: Kernel, Device, Direct, Static, BGP
    table: str = "master"
    disabled: bool = False


@dataclass
class BirdExtras:
    """What bgpd's ``Config`` cannot hold yet, from a BIRD configuration (see docs/bird.md).

    ``protocols``: every protocol in creation order with its BIRD name. ``neighbors``: per
    BGP protocol name, its :class:`NeighborExtras` (address, filters, timers...);
    :meth:`neighbor` finds one by the address of a ``Config`` neighbor. ``skipped``: BGP
    protocols that are not in ``Config.neighbors`` and why (a second session to the same
    address on another port; an address bgpd refuses).
    ``kernel_export``: the kernel protocol's export filter (``calico_kernel_programming``): it
    decides what is installed and sets ``krt_metric``, ``krt_tunnel`` and ``preference``;
    ``kernel_import``: the filter on learned kernel routes (``import all``: None).
    ``static_import``/``direct_import``: the import filters of those protocols.
    ``preferences``: BIRD route preference per source kind (kernel 10, static 200, direct 240,
    bgp 100) as configured. ``kernel_protocol``: the rtproto id BIRD uses (12), already in
    ``Config.kernel.protocol``. ``kernel_graceful_restart``: hold kernel sync until graceful
    restart recovery ends (with ``bird -R``). ``gr_wait``: ``graceful restart wait``, also
    put in ``Config.graceful_restart.selection_deferral``. ``notes``: every place the
    translation approximated, one sentence each.
    """

    family: str  # "ipv4" (bird) or "ipv6" (bird6)
    protocols: list[ProtocolInfo] = field(default_factory=list)
    neighbors: dict[str, NeighborExtras] = field(default_factory=dict)  # by protocol name
    skipped: dict[str, str] = field(default_factory=dict)  # protocol name -> why not in Config
    kernel_name: str | None = None
    kernel_export: "Program | str | None" = REJECT
    kernel_import: "Program | str | None" = None
    kernel_protocol: int = 12
    kernel_graceful_restart: bool = False
    kernel_scan_time: int | None = None
    static_name: str | None = None
    static_import: "Program | str | None" = None
    direct_name: str | None = None
    direct_import: "Program | str | None" = None
    device_name: str | None = None
    preferences: dict[str, int] = field(default_factory=dict)
    gr_wait: int = 240
    debug: dict[str, frozenset] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    programs: dict = field(default_factory=dict, repr=False)  # shared compiled filters

    def neighbor(self, address: str) -> "NeighborExtras | None":
        """The extras of the Config neighbor with this address."""
        for name, n in self.neighbors.items():
            if n.address == address and name not in self.skipped:
                return n
        return None


def translate(cfg: model.BirdConfig, router_id: str | None = None) -> tuple[Config, BirdExtras]:
    """``(Config, BirdExtras)`` for a parsed BIRD configuration.

    ``router_id`` is used when the file sets none (BIRD would pick an interface address).
    Raises :class:`~bgpd.config.ConfigError` when the result is not a valid bgpd config (a
    combination BIRD accepts and bgpd refuses; the message names the key).
    """
    ipv6 = cfg.ipv6
    fam = "ipv6" if ipv6 else "ipv4"
    extras = BirdExtras(family=fam, gr_wait=cfg.gr_wait)
    notes = extras.notes
    data: dict = {}
    if cfg.router_id is not None:
        data["router_id"] = _rid(cfg.router_id)
    elif router_id is not None:
        data["router_id"] = router_id
        notes.append(f"router id: not in the file, {router_id} given")
    else:
        raise ConfigError(cfg.file, "router_id", "the BIRD file sets no router id")

    for p in cfg.protocols:
        extras.protocols.append(
            ProtocolInfo(p.name, p.kind, model.PROTOCOL_NAMES[p.kind], p.table, p.disabled)
        )
        if p.debug:
            extras.debug[p.name] = p.debug
        if p.table != "master":
            notes.append(f"{p.name}: table {p.table}: bgpd has one table; master is used")

    bgps = [p for p in cfg.protocols if isinstance(p, model.Bgp)]
    local_ases = Counter(p.local_as for p in bgps)
    if local_ases:
        asn = local_ases.most_common(1)[0][0]
    else:
        tpl = [t for t in cfg.templates.values() if isinstance(t, model.Bgp) and t.local_as]
        asn = tpl[0].local_as if tpl else 65535
        if not tpl:
            notes.append("asn: no BGP protocol gives one; 65535 is a placeholder")
    data["asn"] = asn

    if bgps:
        addr = cfg.listen_address
        data["listen"] = [
            {
                "address": _ip(addr, ipv6) if addr is not None else ("::" if ipv6 else "0.0.0.0"),
                "port": cfg.listen_port,
            }
        ]

    _bgp(cfg, bgps, asn, data, extras)
    _kernel(cfg, data, extras)
    _host_routes(cfg, data, extras)

    for kind, default in model.DEF_PREF.items():
        if kind == "bfd":
            continue  # no routes
        prefs = {p.preference for p in cfg.protocols if p.kind == kind}
        extras.preferences[kind] = prefs.pop() if len(prefs) == 1 else default
        if prefs:
            notes.append(f"{kind}: protocols with different preferences; see neighbors[...]")

    config = parse_config(data, cfg.file)
    return config, extras


def _bgp(cfg, bgps, asn, data, extras) -> None:
    ipv6 = cfg.ipv6
    fam = extras.family
    notes = extras.notes
    neighbors = []
    gr_on = [p for p in bgps if p.graceful_restart is True]
    cluster_ids = {p.rr_cluster_id for p in bgps if p.rr_client and p.rr_cluster_id}
    if len(cluster_ids) == 1:
        data["cluster_id"] = _rid(cluster_ids.pop())
    elif cluster_ids:
        notes.append(
            "rr cluster id: protocols give different ids; bgpd has one (the router id is used)"
        )
    restart_time = None
    if gr_on:
        # the most common time is the router's; a protocol with another one gets it as
        # the neighbor's own (BIRD advertises each protocol's graceful restart time)
        restart_time = Counter(p.graceful_restart_time for p in gr_on).most_common(1)[0][0]
        data["graceful_restart"] = {
            "restart_time": restart_time,
            "selection_deferral": max(1, cfg.gr_wait),
            # BIRD 1.6 knows no RFC 8538: no N bit, so that a NOTIFICATION (the Cease of
            # a shutdown, a disable) ends the neighbor's help at once, as with BIRD
            "notification": False,
        }
    used: dict[str, str] = {}
    for p in bgps:
        address = _ip(p.neighbor, ipv6)
        ip = ipaddress.ip_address(address)
        if p.neighbor_interface:
            address = f"{address}%{p.neighbor_interface}"
        skip = None
        if ip.is_multicast or ip.is_unspecified:
            skip = f"{address} is not a unicast address: bgpd cannot peer with it"
        elif address in used:
            skip = (
                f"{address} is also the neighbor of {used[address]} (another port): bgpd's "
                "Config holds one neighbor per address"
            )
        n: dict = {"address": address, "asn": p.remote_as, "families": [fam]}
        if p.remote_port != 179:
            n["port"] = p.remote_port
        if p.local_as != asn:
            n["local_as"] = p.local_as
        if p.local_address is not None:
            n["source_address"] = _ip(p.local_address, ipv6)
        if p.passive:
            n["passive"] = True
        hops = p.effective_multihop
        if p.ttl_security:
            n["ttl_security"] = max(1, min(254, hops or 1))
        elif hops:
            n["multihop"] = hops
        if p.password is not None:
            n["password"] = p.password
        if p.rr_client:
            n["rr_client"] = True
        if p.next_hop_self:
            n["next_hop_self"] = True
        elif p.next_hop_keep:
            n["next_hop_self"] = False
        if p.allow_local_as:
            if p.allow_local_as < 0 or p.allow_local_as > 10:
                notes.append(
                    f"{p.name}: allow local as {p.allow_local_as if p.allow_local_as > 0 else ''}"
                    " exceeds bgpd's limit of 10; 10 is used"
                )
            n["allow_own_as"] = 10 if p.allow_local_as < 0 else min(10, p.allow_local_as)
        if p.add_paths:
            n["add_path"] = {
                "send": "tx" in p.add_paths,
                "receive": "rx" in p.add_paths,
            }
        n["hold_time"] = p.hold_time
        if p.keepalive_time:
            n["keepalive"] = p.keepalive_time
        n["connect_retry"] = max(1, p.connect_retry_time)
        n["connect_delay"] = p.connect_delay_time
        n["error_wait"] = list(p.error_wait_time)
        n["error_forget"] = p.error_forget_time
        if p.description is not None:
            n["description"] = p.description
        if p.disabled:
            n["shutdown"] = True
        n["route_refresh"] = bool(p.enable_route_refresh and p.capabilities)
        n["four_octet_as"] = bool(p.enable_as4 and p.capabilities)
        n["extended_message"] = bool(p.enable_extended_messages and p.capabilities)
        if restart_time is not None and p.graceful_restart_time != restart_time:
            n["graceful_restart_time"] = p.graceful_restart_time
        if getattr(p, "bfd", False):
            n["bfd"] = _bfd_for(cfg, p, address, notes)
        if p.import_limit is not None:
            limit, action = p.import_limit
            n["max_prefixes"] = {"limit": limit, "action": "warn" if action == "warn" else "stop"}
            if action not in ("warn", "disable"):
                notes.append(f"{p.name}: import limit action {action}: bgpd stops the session")
        if skip is not None:
            extras.skipped[p.name] = skip
            notes.append(f"{p.name}: left out: {skip}")
        else:
            used[address] = p.name
            neighbors.append(n)
        extras.neighbors[p.name] = NeighborExtras(
            name=p.name,
            address=address,
            import_filter=_program(p.import_filter, ipv6, False, extras.programs),
            export_filter=_program(p.export_filter, ipv6, True, extras.programs),
            preference=p.preference,
            connect_delay=p.connect_delay_time,
            error_wait=tuple(p.error_wait_time),
            error_forget=p.error_forget_time,
            startup_hold_time=p.startup_hold_time,
            gateway=p.gateway or ("recursive" if p.effective_multihop else "direct"),
            graceful_restart=p.graceful_restart,
            graceful_restart_time=p.graceful_restart_time,
            rr_cluster_id=_rid(p.rr_cluster_id) if p.rr_cluster_id else None,
            default_local_pref=p.default_local_pref,
            debug=p.debug,
            description=p.description,
            disabled=p.disabled,
        )
        if p.graceful_restart == "aware" and gr_on:
            notes.append(f"{p.name}: graceful restart aware (helper only); bgpd uses full GR")
        for what in ("receive_limit", "export_limit"):
            if getattr(p, what) is not None:
                notes.append(f"{p.name}: {what.replace('_', ' ')} is not enforced by bgpd")
    if neighbors:
        data["neighbors"] = neighbors
    if bgps and not gr_on and any(p.graceful_restart == "aware" for p in bgps):
        notes.append("graceful restart aware (BIRD's default): bgpd has no helper-only mode")


def _bfd_for(cfg, p, address: str, notes: list) -> dict:
    """``bfd on`` in a ``protocol bgp``: the BFD session bgpd keeps for the neighbor, with the
    options of the ``protocol bfd`` block that serves it (an explicit ``neighbor`` line, else
    the ``multihop`` block for a multihop session or the first ``interface`` block for a
    direct one; BIRD matches the interface at run time); BIRD's defaults without one."""
    bfds = cfg.of_kind("bfd")
    multihop = bool(p.effective_multihop)
    opts = None
    if bfds:
        b = bfds[0]
        for addr, _iface, _local, mh in b.neighbors:
            if _ip(addr, cfg.ipv6) == address.split("%")[0]:
                multihop = mh
        if multihop:
            opts = b.multihop
        elif b.interfaces:
            opts = b.interfaces[0][1]
            if len(b.interfaces) > 1:
                notes.append(
                    f"{p.name}: bfd: the options of the first interface block are used "
                    "(BIRD picks the block of the session's interface)"
                )
    else:
        notes.append(f"{p.name}: bfd on without a protocol bfd: BIRD's defaults are used")
    if opts is None:
        from .model import BfdOptions

        opts = BfdOptions()
    out: dict = {
        "min_tx": f"{opts.min_tx}us",
        "min_rx": f"{opts.min_rx}us",
        "idle_tx": f"{max(opts.idle_tx, 1_000_000)}us",
        "multiplier": opts.multiplier,
        "multihop": multihop,
        "passive": opts.passive,
    }
    if opts.auth_type != "none" and opts.passwords:
        key_id, secret = opts.passwords[0]
        out["auth"] = {
            "type": opts.auth_type,
            "key_id": key_id,
            "secret": secret,
            "keys": [{"id": i, "secret": sec} for i, sec in opts.passwords],
        }
    return out


def _kernel(cfg, data, extras) -> None:
    ipv6 = cfg.ipv6
    kernels = cfg.of_kind("kernel")
    if not kernels:
        return
    k = kernels[0]
    if len(kernels) > 1:
        extras.notes.append(
            f"{len(kernels)} kernel protocols: only {k.name} is used (bgpd syncs one table)"
        )
    extras.kernel_name = k.name
    extras.kernel_export = _program(k.export_filter, ipv6, True, extras.programs)
    extras.kernel_import = _program(k.import_filter, ipv6, False, extras.programs)
    extras.kernel_graceful_restart = k.graceful_restart
    extras.kernel_scan_time = k.scan_time
    kern: dict = {
        "table": k.kernel_table,
        "protocol": 12,
        "metric": k.metric,
        "persist": k.persist,
        "install": k.export_filter != REJECT,
    }
    data["kernel"] = kern
    if k.merge_paths:
        data["multipath"] = min(64, k.merge_paths)
        if k.merge_paths > 64:
            extras.notes.append(f"{k.name}: merge paths limit {k.merge_paths}: bgpd's limit is 64")
    if k.learn:
        hr = data.setdefault("host_routes", {})
        hr["kernel"] = {"learn": True, "prefixes": ["::/0 le 128" if ipv6 else "0.0.0.0/0 le 32"]}
    if k.device_routes:
        extras.notes.append(f"{k.name}: device routes: not exported by bgpd")


def _host_routes(cfg, data, extras) -> None:
    ipv6 = cfg.ipv6
    notes = extras.notes
    directs = cfg.of_kind("direct")
    if directs:
        d = directs[0]
        extras.direct_name = d.name
        extras.direct_import = _program(d.import_filter, ipv6, False, extras.programs)
        if len(directs) > 1:
            notes.append(f"{len(directs)} direct protocols: only {d.name} is used")
        globs = _direct_globs(d, notes)
        data.setdefault("host_routes", {})["connected"] = {"interfaces": globs}
    devices = cfg.of_kind("device")
    if devices:
        extras.device_name = devices[0].name
    statics = cfg.of_kind("static")
    routes = []
    seen: set = set()
    for s in statics:
        if extras.static_name is None:
            extras.static_name = s.name
            extras.static_import = _program(s.import_filter, ipv6, False, extras.programs)
        elif s.import_filter != statics[0].import_filter:
            notes.append(f"{s.name}: a second static protocol's import filter is not applied")
        for r in s.routes:
            prefix = f"{_ip(r.prefix, ipv6)}/{r.length}"
            if prefix in seen:
                notes.append(f"{s.name}: route {prefix} given twice: the first one is used")
                continue
            entry: dict = {"prefix": prefix}
            if r.dest in ("blackhole", "unreachable", "prohibit"):
                entry[r.dest] = True
            elif r.dest == "router":
                entry["via"] = _ip(r.via, ipv6)
                if r.via_interface:
                    entry["interface"] = r.via_interface
            elif r.dest == "device":
                entry["interface"] = r.via_interface
            else:
                notes.append(f"{s.name}: route {prefix} {r.dest}: not supported by bgpd, left out")
                continue
            if r.commands is not None:
                notes.append(f"{s.name}: route {prefix}: its per-route filter is not applied")
            seen.add(prefix)
            routes.append(entry)
    if routes:
        data.setdefault("host_routes", {})["static"] = routes


def _direct_globs(d: model.Direct, notes: list) -> list[str]:
    """BIRD's interface patterns as bgpd's ordered globs (first match decides, ``-``
    excludes)."""
    if not d.interfaces:
        return ["*"]
    if len(d.interfaces) > 1:
        notes.append(
            f"{d.name}: several interface statements, flattened in order: an exclusion now "
            "also hides the later statements' patterns (in BIRD it ends only its own)"
        )
    globs = []
    for patt in d.interfaces:
        for positive, pattern, prefix in patt.nodes:
            if pattern is None:
                notes.append(f"{d.name}: interface prefix {prefix}: not supported, left out")
                continue
            if pattern.startswith("-"):
                pattern, positive = pattern[1:], not positive
            if prefix is not None:
                notes.append(f'{d.name}: interface "{pattern}" {prefix}: the prefix is ignored')
            if any(c in pattern for c in "[]\\"):
                notes.append(f'{d.name}: interface "{pattern}": [ ] and \\ read as glob syntax')
            globs.append(pattern if positive else f"-{pattern}")
    if globs and all(g.startswith("-") for g in globs):
        notes.append(
            f"{d.name}: only exclusions: BIRD then matches no interface, bgpd every other one"
        )
    return globs or ["*"]

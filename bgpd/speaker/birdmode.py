"""Running on a BIRD 1.6 configuration (Calico's ``bird.cfg`` / ``bird6.cfg``).

:class:`BirdSetup` loads the file with its includes (bgpd/bird: BIRD's grammar, errors and
filter semantics), translates it into bgpd's own :class:`~bgpd.config.Config`, and gives
the daemon what that Config cannot hold: the filters and BIRD's attribute conventions around
them, per neighbor, for the route engine:

* **import**: a route from a neighbor gets what BIRD gives it before its import filter
  (LOCAL_PREF 100 when missing, none from eBGP), then the protocol's import filter runs;
  its ``preference = N`` travels on the attribute set (:class:`BirdImport`);
* **export**: the route as BIRD offers it to the neighbor (its AS prepended, the next hop,
  ORIGINATOR_ID and CLUSTER_LIST when reflected, LOCAL_PREF 100 and our AS on a local route:
  ``bgp.export_attrs``), then the protocol's export filter, then what BIRD strips before the
  wire (``bgp.wire_attrs``) (:class:`BirdExportRules`, one export context per distinct
  filter and peer role, so that Calico's thousand identical client protocols share one);
* **kernel**: the kernel protocol's export filter decides what is installed, with which
  metric (``krt_metric``) and, for IPIP, ``via <BGP next hop> dev <krt_tunnel> onlink``, per
  next hop for ECMP (:class:`BirdKernelExport`).

* **next hops** (:class:`NextHops`): as BIRD's ``gateway recursive``, a BGP route's next
  hop is looked up in the host's table (connected networks, our static routes, other
  programs' routes; never a BGP route): an unresolvable route loses to a resolvable one, a
  next hop on a connected network has IGP metric 0 and one through a route BIRD's
  "unknown" (2^31), compared before the router ID and required equal for ECMP, and the
  next hop's interface is the route's ``ifname`` in every filter. A change of the host's
  table that changes an answer runs the decision again for the routes using that next hop.

The protocol names (``Mesh_10_192_0_3``) and their order are in :attr:`BirdSetup.extras`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time

import structlog

from bgpd import bird
from bgpd.bird import ast, bgp
from bgpd.bird.program import RouteView
from bgpd.bird.translate import REJECT, translate
from bgpd.kernel.netlink import RTNH_F_ONLINK
from bgpd.kernel.routes import (
    AF_OF_AFI,
    RTN_BLACKHOLE,
    RTN_PROHIBIT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    KernelRoute,
    Unresolved,
)
from bgpd.kernel.translate import kernel_metric
from bgpd.rib.table import candidates_of

log = structlog.get_logger("bgpd")

# bgpd's own JSON control socket beside a BIRD-compatible daemon, per family (bird, bird6)
DEFAULT_SOCKETS = {False: "/run/bgpd/bgpd.sock", True: "/run/bgpd/bgpd6.sock"}
_DESTS = {RTN_BLACKHOLE: "blackhole", RTN_UNREACHABLE: "unreachable", RTN_PROHIBIT: "prohibit"}
_ERROR_LOG_EVERY = 10.0  # seconds between two log lines of one filter's runtime errors
IGP_METRIC_UNKNOWN = 0x80000000  # BIRD's IGP metric of a next hop reached through a route


def _packed(address: str | None, ipv6: bool) -> bytes:
    if not address:
        return bytes(16 if ipv6 else 4)
    return ipaddress.ip_address(address.split("%")[0]).packed


class NextHops:
    """BGP next hops as BIRD's ``gateway recursive`` sees them, over the kernel's host state
    (:meth:`bgpd.kernel.state.HostState.reach`): ``(resolvable, IGP metric, interface)``
    per next hop, remembered until the host's table changes. :meth:`refresh` (after each
    batch of host changes) looks at every remembered next hop again and, where the answer
    changed, has the engine decide again over the routes using it (and export them again:
    their ``ifname`` may be another)."""

    def __init__(self, state, rde) -> None:
        self.state = state
        self.rde = rde
        self.cache: dict = {}  # (af, next hop) -> (resolvable, igp metric, ifname)
        self.generation = state.generation

    def lookup(self, af: int, nh: bytes) -> tuple:
        key = (af, nh)
        r = self.cache.get(key)
        if r is None:
            r = self.cache[key] = self._compute(af, nh)
        return r

    def _compute(self, af: int, nh: bytes) -> tuple:
        hops, how = self.state.reach(af, nh)
        if type(hops) is Unresolved or not hops:
            return (False, IGP_METRIC_UNKNOWN, "")
        return (
            True,
            0 if how == "connected" else IGP_METRIC_UNKNOWN,
            self.state.ifname(hops[0][1]) or "",
        )

    def of(self, fam, attrs) -> tuple | None:
        """The answer for a route's attribute set (None: no next hop, not a BGP route)."""
        nh = attrs.next_hop if attrs is not None else None
        if not nh:
            return None
        return self.lookup(AF_OF_AFI[fam[0]], nh[:16] if len(nh) == 32 else nh)

    # the decision's hooks (bgpd.rib.decision.DecisionConfig)
    def nexthop_ok(self, fam, attrs) -> bool:
        r = self.of(fam, attrs)
        return r is None or r[0]

    def igp_cost(self, fam, attrs) -> int:
        r = self.of(fam, attrs)
        return 0 if r is None else r[1]

    def refresh(self) -> int:
        """After host changes: answers that changed make their routes be decided again (at
        the engine's next commit). Returns how many next hops changed."""
        if self.state.generation == self.generation:
            return 0
        self.generation = self.state.generation
        changed = set()
        for key, old in self.cache.items():
            new = self._compute(*key)
            if new != old:
                self.cache[key] = new
                changed.add(key[1])
        if changed:
            for fam, loc in self.rde.rib.loc.items():
                for p, entry in list(loc.table.items()):
                    for c in candidates_of(entry):
                        if c.source.kind != "bgp":
                            continue
                        a = c.attrs_for(fam, p)
                        nh = a.next_hop if a is not None else None
                        if nh and (nh[:16] if len(nh) == 32 else nh) in changed:
                            loc.retouch(p)
                            break
        return len(changed)


class BirdSetup:
    """A BIRD file loaded and translated; raises :class:`bgpd.bird.BirdError` (worded and
    placed as ``bird -p`` words it) or :class:`bgpd.config.ConfigError`."""

    def __init__(
        self,
        path: str,
        ipv6: bool = False,
        router_id: str | None = None,
        control_socket: str | None = None,
    ) -> None:
        self.path = path
        self.ipv6 = ipv6
        self.control_socket = control_socket or DEFAULT_SOCKETS[ipv6]
        self.model = bird.check_file(path, ipv6)
        config, self.extras = translate(self.model, router_id)
        self.config = dataclasses.replace(config, control_socket=self.control_socket)
        self.protos = {p.name: p for p in self.model.protocols if p.kind == "bgp"}
        self.router_id = int(ipaddress.IPv4Address(str(self.config.router_id)))
        self.loaded_at = time.time()
        self._frm: dict = {}  # (source index, router id) -> bgp.Peer of a route's source
        self._errors: dict = {}  # program uid -> (last log time, count since)
        # neighbor address -> its protocol's extras (BirdExtras.neighbor, without a scan of
        # every protocol: it is read for every route a filter runs on, for ``proto``)
        self._ext: dict = {}
        for name, x in self.extras.neighbors.items():
            if name not in self.extras.skipped:
                self._ext.setdefault(x.address, x)
        self.next_hops: NextHops | None = None  # once the kernel runs (attach)
        for note in self.extras.notes:
            log.info("bird config", file=path, note=note)

    def reload(self) -> BirdSetup:
        new = BirdSetup(self.path, self.ipv6, str(self.config.router_id), self.control_socket)
        new.next_hops = self.next_hops
        return new

    def attach(self, state, rde) -> None:
        """The kernel's host state is there: resolve next hops as BIRD does, and make the
        engine's decision compare resolvability and IGP metrics (BIRD's bgp_rte_better and
        bgp_rte_mergable)."""
        self.next_hops = nh = NextHops(state, rde)
        cfg = rde.rib.cfg
        cfg.nexthop_ok = nh.nexthop_ok
        cfg.igp_cost = nh.igp_cost

    def host_changed(self) -> None:
        """After a batch of host changes, before the engine commits it."""
        if self.next_hops is not None:
            self.next_hops.refresh()

    def ifname_of(self, fam, attrs) -> str:
        """A BGP route's ``ifname``: its next hop's interface ("" unresolved)."""
        if self.next_hops is None:
            return ""
        r = self.next_hops.of(fam, attrs)
        return r[2] if r is not None else ""

    # --- neighbors --------------------------------------------------------------------------

    def filters_for(self, address: str) -> NeighborFilters | None:
        ext = self._ext.get(address)
        if ext is None:
            return None
        proto = self.protos[ext.name]
        return NeighborFilters(self, ext, proto)

    def name_of(self, source) -> str:
        """The BIRD protocol a route came from (``proto`` in filters, ``show route``)."""
        kind = source.kind
        e = self.extras
        if kind == "bgp":
            ext = self._ext.get(source.name)
            return ext.name if ext is not None else source.name
        if kind == "kernel":
            return e.kernel_name or "kernel1"
        if kind == "connected":
            return e.direct_name or "direct1"
        if kind == "static":
            return e.static_name or "static1"
        return kind

    def frm(self, source) -> bgp.Peer | None:
        """The BIRD view of the neighbor a BGP route came from (None: a local route)."""
        if source.kind != "bgp":
            return None
        key = (source.index, source.router_id)
        p = self._frm.get(key)
        if p is None:
            ext = self._ext.get(source.name)
            proto = self.protos.get(ext.name) if ext is not None else None
            if proto is None:
                return None
            p = self._frm[key] = bgp.peer_of(
                proto, self.router_id, bytes(16 if self.ipv6 else 4), source.router_id
            )
        return p

    def view(self, fam, prefix: bytes, attrs, source, route_attrs=None) -> RouteView:
        """The route as a BIRD filter sees it (``route_attrs``: the route's own set, when
        ``attrs`` is already the one prepared for export: its interface is the route's)."""
        kind = source.kind
        ifname = ""
        krt_metric = gw = None
        dest = "router"
        if kind == "bgp":
            ifname = self.ifname_of(fam, route_attrs if route_attrs is not None else attrs)
        elif hasattr(source, "route_of"):
            hr = source.route_of(fam, prefix)
            if hr is not None:
                ifname = hr.interface or ""
                gw = hr.gateway
                if kind == "kernel":
                    krt_metric = hr.metric
                if hr.type != RTN_UNICAST:
                    dest = _DESTS.get(hr.type, "unreachable")
                elif gw is None:
                    dest = "device"
        pref = attrs.preference
        if pref is None:
            pref = source.preference
        return RouteView(
            prefix,
            attrs,
            kind,
            ipv6=self.ipv6,
            ifname=ifname,
            krt_metric=krt_metric,
            preference=pref,
            gw=gw,
            proto=self.name_of(source),
            dest=dest,
        )

    def run(self, program, view: RouteView):
        """The filter's verdict; a runtime error rejects the route and is logged with the
        file and line, as BIRD does (at most every few seconds per filter)."""
        v = program.run(view)
        if v.error is not None:
            now = time.monotonic()
            last, count = self._errors.get(program.uid, (0.0, 0))
            if now - last >= _ERROR_LOG_EVERY:
                log.error("filter error, route rejected", error=v.error, repeated=count)
                self._errors[program.uid] = (now, 0)
            else:
                self._errors[program.uid] = (last, count + 1)
        return v


class NeighborFilters:
    """A ``protocol bgp``'s filters, for the route engine's peer (``Peer.filters``)."""

    def __init__(self, setup: BirdSetup, ext, proto) -> None:
        self.setup = setup
        self.ext = ext
        self.proto = proto
        self.import_policy = BirdImport(setup, ext, proto)
        self.export_rules = BirdExportRules(setup, ext, proto)

    def fingerprint(self) -> tuple:
        """What a reload compares: the compiled filters (shared when equal) and the
        protocol options the filters depend on."""
        e = self.ext
        return (
            _filter_key(e.import_filter),
            _filter_key(e.export_filter),
            self.export_rules.role(),
        )


def _filter_key(f):
    if f is None or f is REJECT or f == REJECT:
        return f
    body = f.filterdef.body
    return (f.name, repr(body), _called_bodies(body))


def _called_bodies(body) -> tuple:
    """The bodies of the functions a filter calls, directly or through other functions: a
    reload that changes only a function (confd rewrites a BGPFilter's function, the
    protocols' filters stay the same text) changes the filters that call it, as BIRD's
    filter comparison sees it."""
    seen: dict = {}
    todo = [body]
    while todo:
        node = todo.pop()
        if isinstance(node, (list, tuple)):
            todo.extend(node)
        elif isinstance(node, ast.Call):
            fn = node.func
            if id(fn) not in seen:
                seen[id(fn)] = (fn.name, repr(fn.body))
                todo.append(fn.body)
            todo.extend(node.args)
        elif isinstance(node, ast.Node):
            for cls in type(node).__mro__:
                for k in getattr(cls, "__slots__", ()):
                    if k not in ("file", "line"):
                        todo.append(getattr(node, k))
    return tuple(sorted(seen.values()))


class BirdImport:
    """The import side, with the interface of a compiled policy (``bgpd.policy.Policy``):
    ``evaluate(attrs, prefix, family, route)`` -> the accepted set or None."""

    def __init__(self, setup: BirdSetup, ext, proto) -> None:
        self.setup = setup
        self.program = ext.import_filter
        self.frm = bgp.peer_of(proto, setup.router_id, bytes(16 if setup.ipv6 else 4))
        self.name = ext.name
        prog = self.program
        self.attr_only = prog is None or prog is REJECT or prog == REJECT or prog.attr_only
        self.uid = ("bird-import", id(prog), self.frm.internal, self.frm.default_local_pref)

    def evaluate(self, attrs, prefix: bytes, family, route):
        prog = self.program
        if prog is REJECT or prog == REJECT:
            return None
        a = bgp.import_attrs(attrs, self.frm)
        if prog is None:
            return a
        setup = self.setup
        view = RouteView(
            prefix, a, "bgp", ipv6=setup.ipv6, proto=self.name, ifname=setup.ifname_of(family, a)
        )
        v = setup.run(prog, view)
        return v.attrs if v.accepted else None


class BirdExportRules:
    """The export side (``bgpd.rde.exports.ExportRules``)."""

    def __init__(self, setup: BirdSetup, ext, proto) -> None:
        self.setup = setup
        self.ext = ext
        self.proto = proto

    def role(self) -> tuple:
        """What BIRD's export conventions read of the receiving protocol (not its name:
        sending a route back where it came from is the export group's split horizon)."""
        p = self.proto
        return (
            p.local_as,
            p.remote_as,
            p.rr_client,
            p.rr_cluster_id,
            p.next_hop_self,
            p.next_hop_keep,
            p.default_local_pref,
            p.allow_local_pref,
            p.interpret_communities,
            p.rs_client,
        )

    def key(self, peer, neg, local: str | None) -> tuple:
        f = self.ext.export_filter
        ctx = neg.context
        return (
            "bird",
            id(f) if f is not None and f != REJECT else f,
            self.role(),
            local,
            # how the UPDATEs are encoded (one export group packs once for all its members)
            ctx.as4,
            tuple(sorted(ctx.add_path_tx)),
            ctx.extended_message,
            tuple(sorted(neg.families)),
        )

    def build(self, key: tuple, uid: int, peer, neg, local: str | None):
        setup = self.setup
        to = bgp.peer_of(self.proto, setup.router_id, _packed(local, setup.ipv6))
        # the receiving side of a shared context: not one protocol's name
        to = bgp.Peer(**{**to.__dict__, "name": ""})
        return BirdExportContext(key, uid, self.ext.export_filter, to, setup)


class BirdExportContext:
    """One export context under BIRD's rules: ``(source, attrs, prefix, family)`` -> the set
    to send, or None. Not cached: Calico's export filters read the prefix."""

    __slots__ = ("key", "uid", "program", "to", "setup", "prefix_dependent", "skip_next_hop_echo")

    def __init__(self, key, uid, program, to, setup: BirdSetup) -> None:
        self.key = key
        self.uid = uid
        self.program = program
        self.to = to
        self.setup = setup
        self.prefix_dependent = True
        # BIRD 1.6 never sends a neighbor a route whose NEXT_HOP is the neighbor itself
        # (bgp_get_bucket: "Invalid NEXT_HOP attribute"): the export group keeps them back
        self.skip_next_hop_echo = True

    def __call__(self, src, attrs, prefix: bytes, fam):
        prog = self.program
        if prog is REJECT or prog == REJECT:
            return None
        setup = self.setup
        to = self.to
        frm = setup.frm(src)
        if src.kind == "bgp":
            a = bgp.export_attrs(attrs, to, frm)
        else:
            view = setup.view(fam, prefix, attrs, src)
            a = bgp.export_attrs(attrs, to, None, gw=view.gw, dest=view.dest)
        if a is None:
            return None
        if prog is not None:
            view = setup.view(fam, prefix, a, src, attrs)
            v = setup.run(prog, view)
            if not v.accepted:
                return None
            a = v.attrs
        out = bgp.wire_attrs(a, to)
        if out.preference is not None:
            out = out.replace(preference=None)  # the route's preference stays here
        return out


class BirdKernelExport:
    """The kernel protocol's export filter, as the FIB writer's export hook: what is
    installed, its metric (``krt_metric``), and ``krt_tunnel``: ``via <BGP next hop> dev
    <tunnel> onlink``, per next hop when several paths are merged (Calico's BIRD loses the
    tunnel on multipath routes; this does not)."""

    def __init__(self, setup: BirdSetup, program, ifindex) -> None:
        self.setup = setup
        self.program = program
        self.ifindex = ifindex  # interface name -> index, or None (the kernel's host state)

    def __call__(self, fam, prefix: bytes, cands, route: KernelRoute):
        prog = self.program
        if prog is REJECT or prog == REJECT:
            return None
        if prog is None:
            return route
        best = cands[0]
        attrs = best.attrs_for(fam, prefix)
        if attrs is None:
            return None
        v = self.setup.run(prog, self.setup.view(fam, prefix, attrs, best.source))
        if not v.accepted:
            return None
        changes: dict = {}
        if v.krt_metric is not None:
            m = kernel_metric(route.family, v.krt_metric)
            if m != route.metric:
                changes["metric"] = m
        tunnel = v.krt_tunnel
        if tunnel:
            ifx = self.ifindex(tunnel)
            hops = []
            if ifx:
                for c in cands:
                    if c.source.kind != "bgp":
                        continue
                    a = c.attrs_for(fam, prefix)
                    nh = a.next_hop if a is not None else None
                    if nh:
                        hops.append((nh[:16] if len(nh) == 32 else nh, ifx, RTNH_F_ONLINK))
            if hops:
                changes["nexthops"] = tuple(sorted(set(hops), key=lambda h: (h[0], h[1])))
        return route._replace(**changes) if changes else route

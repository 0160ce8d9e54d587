"""The typed model of a parsed BIRD 1.6 configuration.

:class:`BirdConfig` holds what the file says, with BIRD's defaults filled in: router id,
listen, graceful restart wait, and the protocols in creation order (templates apart), each
with its kind, its name exactly as written (or BIRD's default ``kernel1``, ``device1``...),
its import and export filters and its options. :mod:`.translate` turns it into bgpd's own
configuration; :mod:`.program` runs its filters.
"""

import re

# Filter slots: None is BIRD's FILTER_ACCEPT ("all"), REJECT is FILTER_REJECT ("none"),
# anything else a FilterDef.
REJECT = "none"

# BIRD 1.6 protocol preferences (DEF_PREF_*)
DEF_PREF = {"kernel": 10, "device": 240, "direct": 240, "static": 200, "bgp": 100, "bfd": 0}

PROTOCOL_NAMES = {  # as `show protocols` prints them
    "kernel": "Kernel",
    "device": "Device",
    "direct": "Direct",
    "static": "Static",
    "bgp": "BGP",
    "bfd": "BFD",
}


class Protocol:
    """What every protocol has (BIRD's ``struct proto_config``)."""

    kind = ""

    def __init__(self, name: str, template: bool, file: str, line: int) -> None:
        self.name = name
        self.template = template
        self.file = file
        self.line = line
        self.preference = DEF_PREF[self.kind]
        self.disabled = False
        self.debug: frozenset[str] = frozenset()
        self.description: str | None = None
        self.import_filter = None  # accept all
        self.export_filter = REJECT
        self.router_id: int | None = None
        self.table = "master"
        self.import_limit: tuple | None = None  # (limit, action)
        self.receive_limit: tuple | None = None
        self.export_limit: tuple | None = None
        self.import_keep_filtered = False
        self.vrf: str | None = None
        self.parent: str | None = None  # the template (or protocol) it was copied from

    def copy_from(self, src: "Protocol") -> None:
        """``from T``: everything of ``src`` except the name and template flag (BIRD's
        ``proto_copy_config``: filters are shared, lists of interfaces and routes copied so
        that this protocol's own statements add to its copy)."""
        name, template, file, line = self.name, self.template, self.file, self.line
        for k, v in src.__dict__.items():
            self.__dict__[k] = list(v) if isinstance(v, list) else v
        self.name, self.template, self.file, self.line = name, template, file, line
        self.parent = src.name

    def __repr__(self) -> str:
        what = "template" if self.template else "protocol"
        return f"<{what} {self.kind} {self.name}>"


class Kernel(Protocol):
    kind = "kernel"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.persist = False
        self.scan_time = 60
        self.learn = False
        self.device_routes = False
        self.graceful_restart = False
        self.merge_paths = 0  # ECMP limit; 0: off (``merge paths on`` alone: 16)
        self.kernel_table = 254  # main
        self.metric = 0


class Device(Protocol):
    kind = "device"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.scan_time = 60
        self.primary: list = []  # (interface glob | None, prefix text)


class IfacePattern:
    """One ``interface`` statement: nodes ``(positive, glob | None, prefix | None)`` tried in
    order; the first that matches decides (a ``-`` node excludes)."""

    def __init__(self) -> None:
        self.nodes: list = []

    def match(self, ifname: str, address=None):
        """True/False when a node matches ``ifname``, None when none does."""
        for positive, pattern, prefix in self.nodes:
            if pattern is not None:
                if pattern.startswith("-"):
                    pattern = pattern[1:]
                    positive = not positive
                if not patmatch(pattern, ifname):
                    continue
            if prefix is None:
                return positive
            # address-qualified patterns are not used by confd; they never match here
        return None

    def __repr__(self) -> str:
        return "interface " + ", ".join(
            ("" if pos else "-") + (f'"{pat}"' if pat is not None else "") + (pfx or "")
            for pos, pat, pfx in self.nodes
        )


class Direct(Protocol):
    kind = "direct"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.interfaces: list[IfacePattern] = []
        self.check_link = False

    def accepts(self, ifname: str) -> bool:
        """BIRD's ``iface_patt_find``: no pattern means every interface; otherwise the first
        ``interface`` statement with a positive match (a negative one only ends its own
        statement)."""
        if not self.interfaces:
            return True
        return any(p.match(ifname) for p in self.interfaces)


class StaticRoute:
    """One ``route`` of a static protocol."""

    def __init__(self, prefix, length: int, dest: str, file: str, line: int) -> None:
        self.prefix = prefix  # the address (values.Ip)
        self.length = length
        self.dest = dest  # router, device, blackhole, unreachable, prohibit, multipath, recursive
        self.via = None  # values.Ip for router/recursive
        self.via_interface: str | None = None  # ipa%iface, or the device of a device route
        self.multipath: list = []  # (via, interface, weight)
        self.commands = None  # FilterDef-like body run on the route (``route ... { cmds }``)
        self.file = file
        self.line = line

    def __repr__(self) -> str:
        return f"<route {self.prefix}/{self.length} {self.dest}>"


class Static(Protocol):
    kind = "static"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.routes: list[StaticRoute] = []
        self.check_link = False
        self.igp_table: str | None = None


class Bgp(Protocol):
    kind = "bgp"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.local_as = 0
        self.local_address = None  # values.Ip: ``local IP as N`` / ``source address``
        self.neighbor = None  # values.Ip
        self.neighbor_interface: str | None = None
        self.remote_port = 179
        self.remote_as = 0
        self.multihop = -1  # -1 undefined: iBGP 64, eBGP 0 (direct)
        self.hold_time = 240
        self.startup_hold_time = 240
        self.keepalive_time = 0  # 0: hold time / 3
        self.connect_delay_time = 5
        self.connect_retry_time = 120
        self.error_forget_time = 300
        self.error_wait_time = (60, 300)
        self.disable_after_error = False
        self.next_hop_self = False
        self.next_hop_keep = False
        self.missing_lladdr: str | None = None
        self.gateway: str | None = None  # direct | recursive; None: by multihop
        self.rr_client = False
        self.rr_cluster_id = 0  # 0: the router id
        self.rs_client = False
        self.passive = False
        self.password: str | None = None
        self.add_paths = ""  # "", "rx", "tx", "rx tx"
        self.graceful_restart: bool | str = "aware"  # True, False or "aware"
        self.graceful_restart_time = 120
        self.llgr: bool | str | None = None
        self.llgr_time = 3600
        self.ttl_security = False
        self.allow_local_as = 0  # -1: ``allow local as`` without a number
        self.allow_local_pref = False
        self.interpret_communities = True
        self.enable_route_refresh = True
        self.enable_as4 = True
        self.enable_extended_messages = False
        self.capabilities = True
        self.advertise_ipv4 = True
        self.default_local_pref = 100
        self.default_med = 0
        self.path_metric = True
        self.med_metric = False
        self.igp_metric = True
        self.prefer_older = False
        self.deterministic_med = False
        self.check_link = False
        self.bfd = False
        self.setkey = True
        self.secondary = False
        self.igp_table: str | None = None

    @property
    def internal(self) -> bool:
        return self.local_as == self.remote_as

    @property
    def effective_multihop(self) -> int:
        """BIRD: undefined multihop is 64 for iBGP, 0 (direct) for eBGP."""
        if self.multihop < 0:
            return 64 if self.internal else 0
        return self.multihop


class BfdOptions:
    """A ``protocol bfd`` option block (proto/bfd/config.Y ``bfd_iface_item``); intervals in
    microseconds, BIRD's defaults (bfd.h BFD_DEFAULT_*)."""

    def __init__(self) -> None:
        self.min_rx = 10_000
        self.min_tx = 100_000
        self.idle_tx = 1_000_000
        self.multiplier = 5
        self.passive = False
        self.auth_type = "none"  # none, simple, keyed-md5, keyed-sha1, meticulous-keyed-*
        self.passwords: list = []  # (id, secret)

    def copy(self) -> "BfdOptions":
        o = BfdOptions()
        o.__dict__.update(self.__dict__)
        o.passwords = list(self.passwords)
        return o


class Bfd(Protocol):
    """``protocol bfd``: interface and multihop option blocks, explicit neighbors."""

    kind = "bfd"

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.interfaces: list = []  # (IfacePattern, BfdOptions)
        self.multihop: BfdOptions | None = None
        self.neighbors: list = []  # (Ip, interface | None, local Ip | None, multihop)


KINDS = {
    "kernel": Kernel,
    "device": Device,
    "direct": Direct,
    "static": Static,
    "bgp": Bgp,
    "bfd": Bfd,
}


class BirdConfig:
    """A whole configuration: the global settings and the protocols in creation order."""

    def __init__(self, file: str, ipv6: bool) -> None:
        self.file = file
        self.ipv6 = ipv6
        self.files: list[str] = []  # every file read, includes too
        self.router_id: int | None = None
        self.router_id_from: list | None = None
        self.listen_address = None  # values.Ip
        self.listen_port = 179
        self.listen_v6only: bool | None = None
        self.gr_wait = 240
        self.protocols: list[Protocol] = []
        self.templates: dict[str, Protocol] = {}
        self.functions: dict = {}
        self.filters: dict = {}
        self.constants: dict = {}
        self.tables: list[str] = ["master"]
        self.logs: list = []
        self.debug_protocols: frozenset[str] = frozenset()
        self.unsupported: list[str] = []

    def protocol(self, name: str) -> Protocol | None:
        for p in self.protocols:
            if p.name == name:
                return p
        return None

    def of_kind(self, kind: str) -> list:
        return [p for p in self.protocols if p.kind == kind]

    def __repr__(self) -> str:
        return f"<BirdConfig {self.file} {len(self.protocols)} protocols>"


# --- BIRD's shell-like pattern match (lib/patmatch.c) ---------------------------------------

_PATTERN_CACHE: dict = {}


def pattern_regex(pattern: str) -> "re.Pattern":
    """``*``, ``?`` and ``\\`` as BIRD's ``patmatch`` reads them, as an anchored regex.

    BIRD's ``*`` looks ahead for the character after it and tries every place it occurs, so
    ``*?`` wants a literal ``?`` there and ``**`` a literal ``*``; this translation keeps that.
    """
    rx = _PATTERN_CACHE.get(pattern)
    if rx is not None:
        return rx
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "?":
            out.append(".")
            i += 1
        elif c == "*":
            if i + 1 >= n:
                out.append(".*")
            else:
                z = pattern[i + 1]
                if z == "\\" and i + 2 < n:
                    z = pattern[i + 2]
                out.append(f".*(?={re.escape(z)})")
            i += 1
        else:
            if c == "\\" and i + 1 < n:
                i += 1
                c = pattern[i]
            out.append(re.escape(c))
            i += 1
    rx = re.compile("".join(out) + r"\Z", re.DOTALL)
    if len(_PATTERN_CACHE) < 4096:
        _PATTERN_CACHE[pattern] = rx
    return rx


def patmatch(pattern: str, text: str) -> bool:
    return pattern_regex(pattern).match(text) is not None

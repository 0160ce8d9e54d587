"""Real BGP peers (BIRD 2, GoBGP, FRR) for interop tests.

Every peer is one daemon process that

* binds only its own loopback address (``127.0.0.x``), never a wildcard, so that many
  daemons can share port 179 on one machine;
* lives in its own temporary directory (config, control socket, pid file, logs);
* is started with :meth:`BgpPeer.start` and always stopped by :meth:`BgpPeer.stop`
  (SIGTERM, then SIGKILL) or :meth:`BgpPeer.kill`, which only ever signal the PID this
  object started.

The daemons are driven and read through their own command-line clients (``birdc``,
``gobgp``, ``vtysh``) and the answers are normalised to one shape, so a test can say
``peer.wait_route("10.0.0.0/24")`` and check ``as_path`` or ``communities`` without
knowing which daemon it talks to.

Neighbours are plain dicts (see :class:`Neighbor` for the keys and defaults), as are
originated routes (see :class:`Route`).  Features a daemon cannot provide raise
:class:`UnsupportedFeature` when the config is built, never silently.

This module imports nothing from ``bgpd``: it must keep working while bgpd is broken.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "BGP_STATES",
    "BgpPeer",
    "BirdPeer",
    "FrrPeer",
    "GobgpPeer",
    "Neighbor",
    "PeerError",
    "Route",
    "UnsupportedFeature",
    "PEER_CLASSES",
    "tcp_port_free",
]

#: RFC 4271 §8.2.2 state names; :meth:`BgpPeer.state` returns one of these.
BGP_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")

_STATE_ALIASES = {s.lower(): s for s in BGP_STATES}
_STATE_ALIASES.update(
    {
        "down": "Idle",  # BIRD: protocol down
        "start": "Idle",  # BIRD: protocol starting, no connection yet
        "close": "Idle",
        "clearing": "Idle",  # FRR
        "deleted": "Idle",  # FRR
        "unknown": "Idle",
        "": "Idle",
    }
)
# GoBGP's api.PeerState.SessionState enum.
_GOBGP_STATES = {
    0: "Idle",
    1: "Idle",
    2: "Connect",
    3: "Active",
    4: "OpenSent",
    5: "OpenConfirm",
    6: "Established",
}

FAMILIES = ("ipv4", "ipv6")
_ORIGINS = ("igp", "egp", "incomplete")


#: Every peer that may have a running daemon; the atexit hook below stops them if the
#: test process ends without running its fixtures' teardown (e.g. Ctrl-C twice).
_LIVE_PEERS: weakref.WeakSet[BgpPeer] = weakref.WeakSet()


@atexit.register
def _stop_leftover_daemons() -> None:
    for peer in list(_LIVE_PEERS):
        with contextlib.suppress(Exception):
            peer.kill()


class PeerError(RuntimeError):
    """A daemon failed to start, died, or its CLI returned an error."""


class UnsupportedFeature(NotImplementedError):
    """The daemon cannot be configured the way a neighbour or route asks."""


def tcp_port_free(address: str, port: int = 179) -> bool:
    """True when nothing listens on ``address:port`` and we may bind it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------
# Config values
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbor:
    """One configured neighbour of a peer (built from a plain dict).

    ``graceful_restart`` None means "the daemon's default" (BIRD and FRR: helper/aware,
    GoBGP: off); True/False force it on/off.  ``hold_time`` None keeps the daemon's
    default.  ``multihop`` None is a directly connected eBGP session (BIRD still needs
    ``multihop 1`` on loopback, see :class:`BirdPeer`).
    """

    address: str
    asn: int
    port: int = 179
    passive: bool = False
    password: str | None = None
    ttl_security: bool | int = False
    multihop: int | None = None
    rr_client: bool = False
    families: tuple[str, ...] = FAMILIES
    add_path: str | None = None
    as4: bool = True
    hold_time: int | None = None
    graceful_restart: bool | None = None
    next_hop_self: bool = False

    @classmethod
    def from_value(cls, value: Neighbor | Mapping[str, Any]) -> Neighbor:
        if isinstance(value, Neighbor):
            return value
        data = dict(value)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown neighbor keys: {sorted(unknown)}")
        if "families" in data:
            data["families"] = tuple(data["families"])
        n = cls(**data)
        ipaddress.ip_address(n.address)
        bad = set(n.families) - set(FAMILIES)
        if bad or not n.families:
            raise ValueError(f"neighbor {n.address}: families must be a subset of {FAMILIES}")
        if n.add_path not in (None, "rx", "tx", "both"):
            raise ValueError(f"neighbor {n.address}: add_path must be None, rx, tx or both")
        return n

    @property
    def ttl_hops(self) -> int:
        """Hop count for GTSM (``ttl_security=True`` means 1 hop)."""
        if self.ttl_security is True:
            return 1
        return int(self.ttl_security or 0)


@dataclass(frozen=True)
class Route:
    """A route a peer originates.

    ``as_path_prepend`` is either an int (prepend the peer's own ASN that many extra
    times) or a list of ASNs that appear, in that order, right after the originating
    peer's own ASN when the route leaves over eBGP.  ``origin`` defaults to IGP.
    """

    prefix: str
    next_hop: str
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    med: int | None = None
    local_pref: int | None = None
    as_path_prepend: int | tuple[int, ...] | None = None
    origin: str = "igp"

    @classmethod
    def from_value(cls, value: Route | Mapping[str, Any]) -> Route:
        if isinstance(value, Route):
            return value
        data = dict(value)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown route keys: {sorted(unknown)}")
        data["prefix"] = str(ipaddress.ip_network(data["prefix"], strict=False))
        data["next_hop"] = str(ipaddress.ip_address(data["next_hop"]))
        for key in ("communities", "large_communities"):
            if key in data:
                data[key] = tuple(data[key] or ())
        pp = data.get("as_path_prepend")
        if pp is not None and not isinstance(pp, int):
            data["as_path_prepend"] = tuple(int(a) for a in pp)
        r = cls(**data)
        if r.origin not in _ORIGINS:
            raise ValueError(f"route {r.prefix}: origin must be one of {_ORIGINS}")
        for c in r.communities:
            _split_ints(c, 2)
        for c in r.large_communities:
            _split_ints(c, 3)
        return r

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.prefix else "ipv4"

    def prepend_list(self, own_asn: int) -> list[int]:
        """ASNs to put in front of the path (not counting the own ASN eBGP adds)."""
        if self.as_path_prepend is None:
            return []
        if isinstance(self.as_path_prepend, int):
            return [own_asn] * self.as_path_prepend
        return list(self.as_path_prepend)


def _split_ints(text: str, n: int) -> tuple[int, ...]:
    parts = tuple(int(p) for p in str(text).split(":"))
    if len(parts) != n:
        raise ValueError(f"{text!r}: expected {n} colon-separated numbers")
    return parts


def _normalize_prefix(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix, strict=False))


def _family_of(prefix: str) -> str:
    return "ipv6" if ":" in prefix else "ipv4"


def new_path(**values: Any) -> dict[str, Any]:
    """A normalised path dict with every key present."""
    path: dict[str, Any] = {
        "next_hop": None,
        "next_hop_link_local": None,
        "as_path": [],
        "origin": None,
        "med": None,
        "local_pref": None,
        "communities": [],
        "large_communities": [],
        "originator_id": None,
        "cluster_list": [],
        "from": None,
        "best": None,
    }
    path.update(values)
    return path


# --------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------


class BgpPeer:
    """One real BGP daemon bound to one loopback address.

    Subclasses fill in the config writer, the command line and the CLI parsers.
    """

    kind: ClassVar[str] = "peer"
    #: Debian package that provides the daemon.
    package: ClassVar[str] = ""
    #: Executables the class needs (first one is the daemon).
    binaries: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        name: str,
        address: str,
        asn: int,
        router_id: str | None = None,
        port: int = 179,
        neighbors: Iterable[Neighbor | Mapping[str, Any]] = (),
        routes: Iterable[Route | Mapping[str, Any]] = (),
        cluster_id: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        log_level: str = "debug",
    ) -> None:
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified:
            raise ValueError("a peer must bind its own address, never a wildcard")
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        self.address = str(ip)
        self.asn = int(asn)
        self.router_id = router_id or (self.address if ip.version == 4 else "10.255.255.1")
        self.port = int(port)
        self.cluster_id = cluster_id
        self.log_level = log_level
        self.neighbors: dict[str, Neighbor] = {}
        for n in neighbors:
            nb = Neighbor.from_value(n)
            self.neighbors[nb.address] = nb
        self.originated: dict[str, Route] = {}
        for r in routes:
            route = Route.from_value(r)
            self.originated[route.prefix] = route
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout: Any = None
        self._validate()  # before creating anything on disk
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"bgpd-interop-{self.kind}-{self.name}-"))
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)

    # ---- description -----------------------------------------------------------------

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name} {self.address} AS{self.asn} {state}>"

    @property
    def stdout_path(self) -> Path:
        """Where the daemon's own stdout/stderr go."""
        return self.workdir / "stdout.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> BgpPeer:
        """Write the config, start the daemon, wait until its CLI answers."""
        if self.running:
            raise PeerError(f"{self!r} is already running")
        for b in self.binaries:
            if not _find_binary(b):
                raise PeerError(f"{b} not found (Debian package {self.package})")
        self._write_config()
        self._prepare()
        self._check_config()
        cmd = self._command()
        (self.workdir / "command").write_text(shlex.join(cmd) + "\n")
        self._stdout = open(self.stdout_path, "ab")  # noqa: SIM115 - closed in _reap
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,  # our Ctrl-C never reaches it; we stop it ourselves
        )
        _LIVE_PEERS.add(self)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                self._reap()
                raise PeerError(
                    f"{self!r} exited with {self.returncode} during start\n{self._log_tail()}"
                )
            try:
                if self._ready():
                    self._after_start()
                    return self
            except (PeerError, OSError, ValueError) as e:
                last_error = e
            time.sleep(0.1)
        self.kill()
        raise PeerError(
            f"{self!r} did not become ready within {timeout}s ({last_error})\n{self._log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon, SIGKILL it after ``timeout`` seconds. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the daemon at once (no NOTIFICATION, no cleanup on its side)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)
        self._reap()

    def restart(self, timeout: float = 20.0) -> BgpPeer:
        self.stop()
        return self.start(timeout)

    def cleanup(self, remove_workdir: bool = True) -> None:
        """Stop the daemon and (by default) delete its directory."""
        try:
            self.stop()
        finally:
            if remove_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BgpPeer:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup(remove_workdir=not os.environ.get("BGPD_KEEP_PEER_DIRS"))

    def _reap(self) -> None:
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None

    # ---- queries -----------------------------------------------------------------------

    def state(self, neighbor_address: str) -> str:
        """The RFC 4271 state of the session with ``neighbor_address``."""
        addr = self._neighbor(neighbor_address).address
        self._check_alive()
        raw = self._raw_state(addr)
        if isinstance(raw, int):
            return _GOBGP_STATES.get(raw, "Idle")
        key = re.sub(r"[^a-z]", "", str(raw).lower().replace("bgp_fsm_", ""))
        return _STATE_ALIASES.get(key, "Idle")

    def wait_state(
        self, neighbor_address: str, state: str = "Established", timeout: float = 30.0
    ) -> str:
        """Poll until the session is in ``state``; raise TimeoutError with the log tail."""
        if state not in BGP_STATES:
            raise ValueError(f"state must be one of {BGP_STATES}")
        deadline = time.monotonic() + timeout
        current = None
        while True:
            current = self.state(neighbor_address)
            if current == state:
                return current
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: session with {neighbor_address} is {current}, not {state}, "
                    f"after {timeout}s\n{self._log_tail()}"
                )
            time.sleep(0.2)

    def routes(self, family: str = "ipv4", include_local: bool = False) -> dict[str, list[dict]]:
        """Routes in the daemon's RIB: ``{"prefix/len": [path, ...]}``.

        By default only routes learned from neighbours; ``include_local=True`` adds the
        ones the daemon originates itself (with ``from`` None).  Every path has the keys
        of :func:`new_path`.
        """
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}")
        self._check_alive()
        table = self._routes(family)
        if not include_local:
            table = {p: [x for x in paths if x["from"]] for p, paths in table.items()}
            table = {p: paths for p, paths in table.items() if paths}
        return table

    def wait_route(
        self,
        prefix: str,
        timeout: float = 30.0,
        predicate: Callable[[list[dict]], bool] | None = None,
        include_local: bool = False,
    ) -> list[dict]:
        """Wait until ``prefix`` is present (and ``predicate(paths)`` holds); return paths."""
        prefix = _normalize_prefix(prefix)
        family = _family_of(prefix)
        deadline = time.monotonic() + timeout
        paths: list[dict] = []
        while True:
            paths = self.routes(family, include_local=include_local).get(prefix, [])
            if paths and (predicate is None or predicate(paths)):
                return paths
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: {prefix} not there (or predicate false) after {timeout}s; "
                    f"paths={paths}\n{self._log_tail()}"
                )
            time.sleep(0.2)

    def wait_no_route(
        self, prefix: str, timeout: float = 30.0, include_local: bool = False
    ) -> None:
        """Wait until ``prefix`` has gone from the RIB."""
        prefix = _normalize_prefix(prefix)
        family = _family_of(prefix)
        deadline = time.monotonic() + timeout
        while True:
            paths = self.routes(family, include_local=include_local).get(prefix)
            if not paths:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: {prefix} still present after {timeout}s: {paths}\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.2)

    # ---- runtime changes ---------------------------------------------------------------

    def announce(self, prefix: str, next_hop: str, **attrs: Any) -> None:
        """Originate (or replace) a route while running; attrs as in :class:`Route`."""
        route = Route.from_value({"prefix": prefix, "next_hop": next_hop, **attrs})
        self._check_route(route)
        old = self.originated.get(route.prefix)
        self.originated[route.prefix] = route
        if self.running:
            self._announce(route, old)

    def withdraw(self, prefix: str) -> None:
        """Stop originating ``prefix``."""
        prefix = _normalize_prefix(prefix)
        route = self.originated.pop(prefix)
        if self.running:
            self._withdraw(route)

    # ---- logs ----------------------------------------------------------------------------

    def log_paths(self) -> list[Path]:
        return [self.stdout_path]

    def log_text(self) -> str:
        """Everything the daemon logged (its log file(s) and its stdout/stderr)."""
        parts = []
        for p in self.log_paths():
            with contextlib.suppress(OSError):
                text = p.read_text(errors="replace")
                if text:
                    parts.append(f"==> {p.name} <==\n{text}")
        return "\n".join(parts)

    def config_text(self) -> str:
        return self.config_path.read_text() if self.config_path.exists() else ""

    def _log_tail(self, lines: int = 40) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- {self.name} ({self.kind}) log tail, workdir {self.workdir} ---\n{tail}"

    # ---- helpers for subclasses ------------------------------------------------------

    config_path: Path

    def _neighbor(self, address: str) -> Neighbor:
        addr = str(ipaddress.ip_address(address))
        try:
            return self.neighbors[addr]
        except KeyError:
            raise KeyError(f"{self!r} has no neighbor {addr}") from None

    def _check_alive(self) -> None:
        if not self.running:
            raise PeerError(f"{self!r} is not running (exit {self.returncode})\n{self._log_tail()}")

    def _run(self, cmd: list[str], timeout: float = 15.0, check: bool = True) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise PeerError(f"{shlex.join(cmd)} timed out after {timeout}s") from e
        if check and res.returncode != 0:
            raise PeerError(
                f"{shlex.join(cmd)} failed ({res.returncode}): {res.stdout}{res.stderr}".strip()
            )
        return res.stdout

    def _validate(self) -> None:
        for n in self.neighbors.values():
            self._check_neighbor(n)
        for r in self.originated.values():
            self._check_route(r)

    def _check_neighbor(self, n: Neighbor) -> None:
        """Raise UnsupportedFeature for what the daemon cannot do."""

    def _check_route(self, r: Route) -> None:
        """Raise UnsupportedFeature for route attributes the daemon cannot set."""

    def _prepare(self) -> None:
        """Hook run after the config is written and before the daemon starts."""

    def _check_config(self) -> None:
        """Let the daemon check its config (dry run); raise PeerError with its message."""

    def _after_start(self) -> None:
        """Hook run once the daemon answers on its control socket."""

    # ---- to implement --------------------------------------------------------------------

    def _write_config(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _raw_state(self, address: str) -> str | int:
        raise NotImplementedError

    def _routes(self, family: str) -> dict[str, list[dict]]:
        raise NotImplementedError

    def _announce(self, route: Route, old: Route | None = None) -> None:
        """Originate ``route`` in the running daemon (``old``: the route it replaces)."""
        raise NotImplementedError

    def _withdraw(self, route: Route) -> None:
        raise NotImplementedError


def _find_binary(name: str) -> str | None:
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/lib/frr"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


# --------------------------------------------------------------------------------------
# BIRD 2
# --------------------------------------------------------------------------------------


class BirdPeer(BgpPeer):
    """BIRD 2 (``bird -f``), driven with ``birdc -s SOCK``.

    Config notes (found by testing BIRD 2.0.12 on loopback):

    * A directly connected eBGP session on ``lo`` fails with "Invalid remote address"
      (the neighbour is not on a connected network BIRD knows), so every session is
      ``multihop N`` (N = the neighbour's ``multihop`` or 1).  The kernel does not
      decrement the TTL on loopback, so ``multihop 1`` behaves like a direct session.
    * Multihop means ``gateway recursive``: next hops are resolved in an IGP table.  Each
      channel gets ``igp table igp4/igp6``, which hold only a static ``0.0.0.0/0`` and
      ``::/0 blackhole``.  Every next hop (192.0.2.x, 127.0.0.x, 2001:db8::x) then resolves
      and received routes stay valid (their destination shows as ``blackhole``).  These
      tables are never exported.
    * Originated routes are ``route P blackhole { bgp_next_hop = …; bgp_community.add(…);
      … }`` in the static protocols ``orig4`` / ``orig6``.  The BGP export filter does
      ``bgp_next_hop = bgp_next_hop`` and ``bgp_med = bgp_med`` for them: attributes set
      in the export filter are kept even on eBGP (otherwise BIRD sends its own address as
      NEXT_HOP and drops the MED).  Runtime changes rewrite only the
      static protocols and run ``birdc configure``, so BIRD sends just the difference.
    * An IPv6 channel over an IPv4 session has no next hop of its own ("Missing next hop
      address" warning): only routes with an explicit IPv6 next hop are sent.
    """

    kind = "bird"
    package = "bird2"
    binaries = ("bird", "birdc")

    @property
    def config_path(self) -> Path:  # type: ignore[override]
        return self.workdir / "bird.conf"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "bird.ctl"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bird.log"

    def log_paths(self) -> list[Path]:
        return [self.log_path, self.stdout_path]

    @staticmethod
    def protocol_name(address: str) -> str:
        return "n_" + re.sub(r"[^0-9A-Za-z]", "_", address)

    # ---- config --------------------------------------------------------------------------

    def _check_neighbor(self, n: Neighbor) -> None:
        if n.rr_client and n.asn != self.asn:
            raise ValueError(f"{n.address}: rr_client needs an iBGP neighbour")

    def render_config(self) -> str:
        lines = [
            f'log "{self.log_path}" all;',
            f"router id {self.router_id};",
            "debug protocols { states, events };" if self.log_level == "debug" else "",
            "protocol device {}",
            "ipv4 table igp4;",
            "ipv6 table igp6;",
            # Resolve every next hop (see the class docstring); never exported.
            "protocol static resolve4 { ipv4 { table igp4; }; route 0.0.0.0/0 blackhole; }",
            "protocol static resolve6 { ipv6 { table igp6; }; route ::/0 blackhole; }",
        ]
        for fam, proto in (("ipv4", "orig4"), ("ipv6", "orig6")):
            lines.append(f"protocol static {proto} {{")
            lines.append(f"  {fam};")
            for r in self.originated.values():
                if r.family == fam:
                    lines.append(f"  route {r.prefix} blackhole {{ {self._route_attrs(r)} }};")
            lines.append("}")
        lines += [
            # Re-setting NEXT_HOP and MED in the export filter makes BIRD send them on eBGP
            # too (else it uses its own address and drops the MED).  The filter never
            # changes, so announce()/withdraw() reconfigure only the static protocols and
            # BIRD sends just the difference.
            "filter bgp_export {",
            '  if proto = "orig4" || proto = "orig6" then {',
            "    bgp_next_hop = bgp_next_hop;",
            "    if defined(bgp_med) then bgp_med = bgp_med;",
            "  }",
            "  accept;",
            "}",
        ]
        for n in self.neighbors.values():
            lines.append(self._protocol(n))
        return "\n".join(line for line in lines if line) + "\n"

    def _route_attrs(self, r: Route) -> str:
        stmts = [f"bgp_next_hop = {r.next_hop};", f"bgp_origin = ORIGIN_{r.origin.upper()};"]
        for asn in reversed(r.prepend_list(self.asn)):
            stmts.append(f"bgp_path.prepend({asn});")
        for c in r.communities:
            a, b = _split_ints(c, 2)
            stmts.append(f"bgp_community.add(({a},{b}));")
        for c in r.large_communities:
            a, b, c3 = _split_ints(c, 3)
            stmts.append(f"bgp_large_community.add(({a},{b},{c3}));")
        if r.med is not None:
            stmts.append(f"bgp_med = {r.med};")
        if r.local_pref is not None:
            stmts.append(f"bgp_local_pref = {r.local_pref};")  # BIRD drops it on eBGP
        return " ".join(stmts)

    def _protocol(self, n: Neighbor) -> str:
        hops = n.multihop or max(1, n.ttl_hops)
        body = [
            f'description "{self.name} -> {n.address}";',
            f"local {self.address} port {self.port} as {self.asn};",
            f"neighbor {n.address} port {n.port} as {n.asn};",
            "strict bind yes;",
            f"multihop {hops};",
            "connect delay time 1;",
            "connect retry time 3;",
            "error wait time 1, 5;",
        ]
        if n.passive:
            body.append("passive on;")
        if n.password:
            body.append(f'password "{n.password}";')
        if n.ttl_security:
            body.append("ttl security on;")
        if not n.as4:
            body.append("enable as4 off;")
        if n.hold_time is not None:
            body.append(f"hold time {n.hold_time};")
        if n.graceful_restart is not None:
            body.append(f"graceful restart {'on' if n.graceful_restart else 'off'};")
        if n.rr_client:
            body.append("rr client;")
            if self.cluster_id:
                body.append(f"rr cluster id {self.cluster_id};")
        for fam in n.families:
            igp = "igp4" if fam == "ipv4" else "igp6"
            ch = ["import all;", "export filter bgp_export;", f"igp table {igp};"]
            ch.append("gateway recursive;")
            if n.next_hop_self:
                ch.append("next hop self;")
            if n.add_path:
                ch.append(f"add paths {'on' if n.add_path == 'both' else n.add_path};")
            body.append(f"{fam} {{ {' '.join(ch)} }};")
        inner = "\n".join("  " + b for b in body)
        return f"protocol bgp {self.protocol_name(n.address)} {{\n{inner}\n}}"

    def _write_config(self) -> None:
        self.config_path.write_text(self.render_config())

    def _check_config(self) -> None:
        out = subprocess.run(
            ["bird", "-p", "-c", str(self.config_path)], capture_output=True, text=True
        )
        if out.returncode != 0:
            raise PeerError(f"bird rejects {self.config_path}: {out.stdout}{out.stderr}")

    def _command(self) -> list[str]:
        return [
            _find_binary("bird") or "bird",
            "-f",
            "-c",
            str(self.config_path),
            "-s",
            str(self.socket_path),
            "-P",
            str(self.workdir / "bird.pid"),
        ]

    # ---- CLI -------------------------------------------------------------------------------

    def birdc(self, *args: str, timeout: float = 15.0) -> str:
        """Run one ``birdc`` command and return its output (without the banner)."""
        out = self._run(["birdc", "-s", str(self.socket_path), *args], timeout=timeout)
        lines = [line for line in out.splitlines() if not line.startswith("BIRD ")]
        text = "\n".join(lines)
        if re.search(r"^(syntax error|Unknown command|.*: No such file)", text, re.M):
            raise PeerError(f"birdc {' '.join(args)}: {text}")
        return text

    def _ready(self) -> bool:
        if not self.socket_path.exists():
            return False
        return "Daemon is up and running" in self.birdc("show", "status", timeout=5)

    def _raw_state(self, address: str) -> str:
        out = self.birdc("show", "protocols", "all", self.protocol_name(address))
        m = re.search(r"BGP state:\s+(\S+)", out)
        return m.group(1) if m else "Idle"

    def _routes(self, family: str) -> dict[str, list[dict]]:
        table = "master4" if family == "ipv4" else "master6"
        out = self.birdc("show", "route", "all", "table", table)
        return self.parse_show_route_all(out, self._proto_to_address())

    def _proto_to_address(self) -> dict[str, str]:
        return {self.protocol_name(a): a for a in self.neighbors}

    @staticmethod
    def parse_show_route_all(text: str, protocols: Mapping[str, str] | None = None):
        """Parse ``birdc show route all`` (BIRD 2) into normalised paths."""
        protocols = protocols or {}
        result: dict[str, list[dict]] = {}
        prefix = None
        path: dict | None = None
        header = re.compile(r"\[(\S+)\s[^\]]*?(?:\sfrom\s(\S+))?\]\s*(\*)?")
        for line in text.splitlines():
            if not line.strip() or line.startswith("Table ") or line.startswith("BIRD "):
                continue
            if not line.startswith("\t") and "[" in line:
                if not line[0].isspace():
                    prefix = _normalize_prefix(line.split()[0])
                m = header.search(line)
                if prefix is None or m is None:
                    path = None
                    continue
                proto, src, star = m.group(1), m.group(2), m.group(3)
                is_bgp = proto in protocols or src is not None
                path = new_path(
                    best=bool(star),
                    **{"from": (src or protocols.get(proto)) if is_bgp else None},
                )
                path["_proto"] = proto
                result.setdefault(prefix, []).append(path)
                continue
            if path is None:
                continue
            key, _, value = line.strip().partition(":")
            value = value.strip()
            if key == "BGP.origin":
                path["origin"] = {"IGP": "igp", "EGP": "egp"}.get(value, "incomplete")
            elif key == "BGP.as_path":
                path["as_path"] = [int(a) for a in re.findall(r"\d+", value)]
            elif key == "BGP.next_hop":
                hops = value.split()
                path["next_hop"] = hops[0] if hops else None
                if len(hops) > 1:
                    path["next_hop_link_local"] = hops[1]
            elif key == "BGP.med":
                path["med"] = int(value)
            elif key == "BGP.local_pref":
                path["local_pref"] = int(value)
            elif key == "BGP.community":
                path["communities"] = [
                    f"{a}:{b}" for a, b in re.findall(r"\((\d+),\s*(\d+)\)", value)
                ]
            elif key == "BGP.large_community":
                path["large_communities"] = [
                    f"{a}:{b}:{c}" for a, b, c in re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", value)
                ]
            elif key == "BGP.originator_id":
                path["originator_id"] = value
            elif key == "BGP.cluster_list":
                path["cluster_list"] = value.split()
        for paths in result.values():
            for p in paths:
                p.pop("_proto", None)
        return result

    # ---- runtime changes -------------------------------------------------------------

    def _reconfigure(self) -> None:
        self._write_config()
        self._check_config()
        out = self.birdc("configure")
        if "Reconfigured" not in out and "in progress" not in out:
            raise PeerError(f"birdc configure: {out}")

    def _announce(self, route: Route, old: Route | None = None) -> None:
        self._reconfigure()

    def _withdraw(self, route: Route) -> None:
        self._reconfigure()


# --------------------------------------------------------------------------------------
# GoBGP
# --------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


class GobgpPeer(BgpPeer):
    """GoBGP (``gobgpd``), driven with ``gobgp --target unix://…/api.sock``.

    The gRPC API listens on a unix socket in the work dir (``--api-hosts unix://…``), so
    no TCP port is needed for it; pprof is disabled.  Originated routes are added with
    ``gobgp global rib add`` after start.

    Caveats: GoBGP always advertises the four-octet AS capability (``as4=False`` raises
    :class:`UnsupportedFeature`); it treats a loopback NEXT_HOP as invalid, so give it
    routes with next hops like 192.0.2.x; ``next_hop_self`` is a global export policy
    matching the neighbour.
    """

    kind = "gobgp"
    package = "gobgpd"
    binaries = ("gobgpd", "gobgp")

    @property
    def config_path(self) -> Path:  # type: ignore[override]
        return self.workdir / "gobgpd.toml"

    @property
    def api_socket(self) -> Path:
        return self.workdir / "api.sock"

    def _check_neighbor(self, n: Neighbor) -> None:
        if not n.as4:
            raise UnsupportedFeature("GoBGP cannot switch off the four-octet AS capability")

    def render_config(self) -> str:
        g = [
            "[global.config]",
            f"  as = {self.asn}",
            f"  router-id = {_toml(self.router_id)}",
            f"  port = {self.port}",
            f"  local-address-list = {_toml([self.address])}",
        ]
        nhs = [n.address for n in self.neighbors.values() if n.next_hop_self]
        if nhs:
            g += [
                "[global.apply-policy.config]",
                '  export-policy-list = ["next-hop-self"]',
                '  default-export-policy = "accept-route"',
                "[[defined-sets.neighbor-sets]]",
                '  neighbor-set-name = "next-hop-self"',
                f"  neighbor-info-list = {_toml(nhs)}",
                "[[policy-definitions]]",
                '  name = "next-hop-self"',
                "  [[policy-definitions.statements]]",
                '    name = "next-hop-self"',
                "    [policy-definitions.statements.conditions.match-neighbor-set]",
                '      neighbor-set = "next-hop-self"',
                "    [policy-definitions.statements.actions.bgp-actions]",
                '      set-next-hop = "self"',
            ]
        for n in self.neighbors.values():
            g += ["", "[[neighbors]]", "  [neighbors.config]"]
            g.append(f"    neighbor-address = {_toml(n.address)}")
            g.append(f"    peer-as = {n.asn}")
            if n.password:
                g.append(f"    auth-password = {_toml(n.password)}")
            g += [
                "  [neighbors.transport.config]",
                f"    local-address = {_toml(self.address)}",
                f"    remote-port = {n.port}",
                f"    passive-mode = {_toml(n.passive)}",
                "  [neighbors.timers.config]",
                "    connect-retry = 3",
            ]
            if n.hold_time is not None:
                g.append(f"    hold-time = {n.hold_time}")
                g.append(
                    f"    keepalive-interval = {max(n.hold_time // 3, 1) if n.hold_time else 0}"
                )
            if n.multihop:
                g += [
                    "  [neighbors.ebgp-multihop.config]",
                    "    enabled = true",
                    f"    multihop-ttl = {n.multihop}",
                ]
            if n.ttl_security:
                g += [
                    "  [neighbors.ttl-security.config]",
                    "    enabled = true",
                    f"    ttl-min = {256 - n.ttl_hops}",
                ]
            if n.rr_client:
                g += ["  [neighbors.route-reflector.config]", "    route-reflector-client = true"]
                if self.cluster_id:
                    g.append(f"    route-reflector-cluster-id = {_toml(self.cluster_id)}")
            if n.graceful_restart:
                g += [
                    "  [neighbors.graceful-restart.config]",
                    "    enabled = true",
                    "    restart-time = 120",
                ]
            for fam in n.families:
                g += [
                    "  [[neighbors.afi-safis]]",
                    "    [neighbors.afi-safis.config]",
                    f'      afi-safi-name = "{fam}-unicast"',
                ]
                if n.graceful_restart:
                    g += [
                        "    [neighbors.afi-safis.mp-graceful-restart.config]",
                        "      enabled = true",
                    ]
                if n.add_path:
                    g.append("    [neighbors.afi-safis.add-paths.config]")
                    if n.add_path in ("rx", "both"):
                        g.append("      receive = true")
                    if n.add_path in ("tx", "both"):
                        g.append("      send-max = 8")
        return "\n".join(g) + "\n"

    def _write_config(self) -> None:
        self.config_path.write_text(self.render_config())

    def _check_config(self) -> None:
        out = subprocess.run(
            ["gobgpd", "-d", "-t", "toml", "-f", str(self.config_path)],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise PeerError(f"gobgpd rejects {self.config_path}: {out.stdout}{out.stderr}")

    def _command(self) -> list[str]:
        level = {"debug": "debug", "info": "info"}.get(self.log_level, "info")
        return [
            _find_binary("gobgpd") or "gobgpd",
            "-f",
            str(self.config_path),
            "-t",
            "toml",
            "-p",
            "-l",
            level,
            "--api-hosts",
            f"unix://{self.api_socket}",
            "--pprof-disable",
        ]

    def gobgp(self, *args: str, timeout: float = 15.0) -> str:
        """Run one ``gobgp`` CLI command against this daemon."""
        return self._run(["gobgp", "--target", f"unix://{self.api_socket}", *args], timeout=timeout)

    def _ready(self) -> bool:
        if not self.api_socket.exists():
            return False
        self.gobgp("global", "-j", timeout=5)
        return True

    def _after_start(self) -> None:
        for r in self.originated.values():
            self._announce(r)

    def _raw_state(self, address: str) -> int:
        data = json.loads(self.gobgp("neighbor", address, "-j"))
        return int(data.get("state", {}).get("session_state", 0))

    def _routes(self, family: str) -> dict[str, list[dict]]:
        out = self.gobgp("global", "rib", "-a", family, "-j")
        data = json.loads(out) if out.strip() else {}
        return self.parse_rib_json(data)

    @staticmethod
    def parse_rib_json(data: Mapping[str, list[dict]]) -> dict[str, list[dict]]:
        """Parse ``gobgp global rib -j`` into normalised paths."""
        result: dict[str, list[dict]] = {}
        for prefix, paths in (data or {}).items():
            for p in paths:
                path = new_path(best=bool(p.get("best")), **{"from": p.get("neighbor-ip")})
                if p.get("id") or p.get("path-id"):
                    path["path_id"] = p.get("id") or p.get("path-id")
                for a in p.get("attrs", []):
                    t = a.get("type")
                    if t == 1:
                        path["origin"] = _ORIGINS[int(a.get("value", 0))]
                    elif t == 2:
                        path["as_path"] = [
                            asn for seg in a.get("as_paths", []) for asn in seg.get("asns", [])
                        ]
                    elif t == 3:
                        path["next_hop"] = a.get("nexthop")
                    elif t == 4:
                        path["med"] = a.get("metric")
                    elif t == 5:
                        path["local_pref"] = a.get("value")
                    elif t == 8:
                        path["communities"] = [
                            f"{c >> 16}:{c & 0xFFFF}" for c in a.get("communities", [])
                        ]
                    elif t == 9:
                        path["originator_id"] = a.get("value")
                    elif t == 10:
                        path["cluster_list"] = list(a.get("value", []))
                    elif t == 14:
                        nh = a.get("nexthop")
                        if isinstance(nh, list):
                            path["next_hop"] = nh[0] if nh else None
                            if len(nh) > 1:
                                path["next_hop_link_local"] = nh[1]
                        else:
                            path["next_hop"] = nh
                        if a.get("link_local_nexthop"):
                            path["next_hop_link_local"] = a["link_local_nexthop"]
                    elif t == 32:
                        path["large_communities"] = [
                            f"{v['ASN']}:{v['LocalData1']}:{v['LocalData2']}"
                            for v in a.get("value", [])
                        ]
                result.setdefault(_normalize_prefix(prefix), []).append(path)
        return result

    def _announce(self, route: Route, old: Route | None = None) -> None:
        # Adding the same prefix again replaces GoBGP's local path (implicit withdraw).
        args = ["global", "rib", "add", "-a", route.family, route.prefix, "nexthop", route.next_hop]
        args += ["origin", route.origin]
        if route.communities:
            args += ["community", ",".join(route.communities)]
        if route.large_communities:
            args += ["large-community", ",".join(route.large_communities)]
        if route.med is not None:
            args += ["med", str(route.med)]
        if route.local_pref is not None:
            args += ["local-pref", str(route.local_pref)]
        prepend = route.prepend_list(self.asn)
        if prepend:
            args += ["aspath", " ".join(str(a) for a in prepend)]
        self.gobgp(*args)

    def _withdraw(self, route: Route) -> None:
        self.gobgp("global", "rib", "del", "-a", route.family, route.prefix)


# --------------------------------------------------------------------------------------
# FRR
# --------------------------------------------------------------------------------------


class FrrPeer(BgpPeer):
    """FRR's ``bgpd`` run standalone, driven with ``vtysh --vty_socket DIR -d bgpd``.

    Started as ``/usr/lib/frr/bgpd -Z -u frr -g frr -l ADDR -p PORT -P 0 --vty_socket DIR
    -f CONF -i PIDFILE``: no zebra (``-Z``), BGP bound to ADDR only (``-l``), no TCP vty
    (``-P 0``; otherwise it listens on port 2605 on every address).  The work dir is
    chowned to ``frr``.  Without zebra every next hop counts as reachable.

    Config notes: ``no bgp ebgp-requires-policy`` (else eBGP sends and accepts nothing),
    ``no bgp network import-check`` (``network`` statements need no RIB route),
    ``update-source ADDR`` (source address of outgoing connections) and, for eBGP
    without ``multihop``, ``disable-connected-check`` (FRR knows no interfaces without
    zebra).  Originated routes are ``network P route-map O-…`` (that route-map sets the
    attributes and the next hop).  For eBGP, FRR replaces the NEXT_HOP with its own
    address unless an *outbound* route-map sets it (``set ip next-hop unchanged`` does
    not help: the reset happens before the map), so eBGP neighbours get ``route-map
    OUT4/OUT6 out`` with one ``match ip address prefix-list O-…`` + ``set ip next-hop``
    entry per originated prefix.  ``bgp route-map delay-timer 0`` stops FRR from
    re-sending every route when announce() adds such an entry at runtime.

    Caveat (FRR 8.4): for an IPv6 route it relays over an IPv4 eBGP session FRR has no
    IPv6 address of its own and sends the IPv4-mapped ``::ffff:127.0.0.x``, which BIRD
    rejects ("mismatched address family").  Worse, it stores that mapped address as the
    session's IPv6 next hop, so from then on *every* IPv6 route to that neighbour, the
    originated ones included, carries it.  To keep two-daemon tests clean each eBGP
    neighbour gets ``filter-list NOT-FROM-<its AS> out`` (FRR otherwise echoes a
    neighbour's routes back to it); a three-daemon chain that relays IPv6 through FRR
    over eBGP will still see mapped next hops.
    """

    kind = "frr"
    package = "frr"
    binaries = ("/usr/lib/frr/bgpd", "vtysh")
    user = "frr"

    @property
    def config_path(self) -> Path:  # type: ignore[override]
        return self.workdir / "bgpd.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bgpd.log"

    def log_paths(self) -> list[Path]:
        return [self.log_path, self.stdout_path]

    def _check_neighbor(self, n: Neighbor) -> None:
        if not n.as4 and (tuple(n.families) != ("ipv4",) or n.add_path or n.graceful_restart):
            raise UnsupportedFeature(
                "FRR can drop the four-octet AS capability only by sending no capabilities "
                "at all (dont-capability-negotiate): use families=['ipv4'], no add_path, no GR"
            )
        if n.multihop and n.ttl_security:
            raise UnsupportedFeature("FRR: ebgp-multihop and ttl-security are exclusive")

    # ---- config ------------------------------------------------------------------------

    @staticmethod
    def _rm_name(route: Route) -> str:
        return "O-" + re.sub(r"[^0-9A-Za-z]", "_", route.prefix)

    def _route_lines(self, route: Route) -> list[str]:
        """Origination route-map of a route, plus its entry in the eBGP outbound map."""
        name = self._rm_name(route)
        v6 = route.family == "ipv6"
        ip = "ipv6" if v6 else "ip"
        sets = [f" set origin {route.origin}"]
        if route.communities:
            sets.append(" set community " + " ".join(route.communities))
        if route.large_communities:
            sets.append(" set large-community " + " ".join(route.large_communities))
        if route.med is not None:
            sets.append(f" set metric {route.med}")
        if route.local_pref is not None:
            sets.append(f" set local-preference {route.local_pref}")
        prepend = route.prepend_list(self.asn)
        if prepend:
            sets.append(" set as-path prepend " + " ".join(str(a) for a in prepend))
        if v6:
            nh = f" set ipv6 next-hop global {route.next_hop}"
        else:
            nh = f" set ip next-hop {route.next_hop}"
        return [
            f"{ip} prefix-list {name} seq 5 permit {route.prefix}",
            f"route-map {name} permit 10",
            *sets,
            nh,
            "exit",
            f"route-map {'OUT6' if v6 else 'OUT4'} permit {self._seq(route)}",
            f" match {ip} address prefix-list {name}",
            nh,
            "exit",
        ]

    @staticmethod
    def _seq(route: Route) -> int:
        """Stable sequence number of a prefix in the outbound map (below 65000)."""
        return 10 + zlib.crc32(route.prefix.encode()) % 64000

    def render_config(self) -> str:
        c = [
            "frr defaults traditional",
            f"hostname {self.name}",
            f"log file {self.log_path} {'debugging' if self.log_level == 'debug' else 'informational'}",
            "log timestamp precision 3",
        ]
        if self.log_level == "debug":
            c += ["debug bgp neighbor-events", "debug bgp updates"]
        for r in self.originated.values():
            c += self._route_lines(r)
        for asn in sorted({n.asn for n in self.neighbors.values() if n.asn != self.asn}):
            c += [
                f"bgp as-path access-list NOT-FROM-{asn} seq 5 deny _{asn}_",
                f"bgp as-path access-list NOT-FROM-{asn} seq 10 permit .*",
            ]
        c += [
            "route-map OUT4 permit 65000",
            "exit",
            "route-map OUT6 permit 65000",
            "exit",
            f"router bgp {self.asn}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",
            " no bgp default ipv4-unicast",
            " bgp log-neighbor-changes",
            # 0: a route-map change applies to routes announced from then on, and does
            # not make FRR re-send every route (announce() adds outbound map entries).
            " bgp route-map delay-timer 0",
        ]
        if self.cluster_id:
            c.append(f" bgp cluster-id {self.cluster_id}")
        if any(n.graceful_restart for n in self.neighbors.values()):
            # Per-neighbour "graceful-restart" fails under -Z ("% Invalid value"); the
            # global restart mode works and neighbours with GR False opt out below.
            c.append(" bgp graceful-restart")
        for n in self.neighbors.values():
            a = n.address
            ebgp = n.asn != self.asn
            c += [
                f" neighbor {a} remote-as {n.asn}",
                f" neighbor {a} port {n.port}",
                f" neighbor {a} update-source {self.address}",
                f" neighbor {a} timers connect 3",
            ]
            if n.hold_time is not None:
                ka = max(n.hold_time // 3, 1) if n.hold_time else 0
                c.append(f" neighbor {a} timers {ka} {n.hold_time}")
            if n.passive:
                c.append(f" neighbor {a} passive")
            if n.password:
                c.append(f" neighbor {a} password {n.password}")
            if n.multihop and ebgp:
                c.append(f" neighbor {a} ebgp-multihop {n.multihop}")
            elif ebgp:
                c.append(f" neighbor {a} disable-connected-check")
            if n.ttl_security:
                c.append(f" neighbor {a} ttl-security hops {n.ttl_hops}")
            if not n.as4:
                c.append(f" neighbor {a} dont-capability-negotiate")
            if n.graceful_restart is False:
                c.append(f" neighbor {a} graceful-restart-disable")
        for fam in FAMILIES:
            c.append(f" address-family {fam} unicast")
            for r in self.originated.values():
                if r.family == fam:
                    c.append(f"  network {r.prefix} route-map {self._rm_name(r)}")
            for n in self.neighbors.values():
                if fam not in n.families:
                    continue
                a = n.address
                c.append(f"  neighbor {a} activate")
                if n.asn != self.asn:
                    # Do not echo a neighbour's routes back to it (BIRD and GoBGP do not;
                    # sender-as-path-loop-detection does not stop it in 8.4), see Caveat.
                    c.append(f"  neighbor {a} filter-list NOT-FROM-{n.asn} out")
                if n.asn != self.asn and not n.next_hop_self:
                    c.append(f"  neighbor {a} route-map {'OUT4' if fam == 'ipv4' else 'OUT6'} out")
                if n.rr_client:
                    c.append(f"  neighbor {a} route-reflector-client")
                if n.next_hop_self:
                    c.append(f"  neighbor {a} next-hop-self")
                if n.add_path in ("tx", "both"):
                    c.append(f"  neighbor {a} addpath-tx-all-paths")
                if n.add_path in (None, "tx"):
                    c.append(f"  neighbor {a} disable-addpath-rx")
            c.append(" exit-address-family")
        c.append("exit")
        return "\n".join(c) + "\n"

    def _write_config(self) -> None:
        self.config_path.write_text(self.render_config())

    def _prepare(self) -> None:
        # bgpd drops to the frr user: it must be able to write logs, pid and vty socket.
        try:
            import pwd

            pw = pwd.getpwnam(self.user)
        except KeyError:
            raise PeerError(f"user {self.user!r} does not exist (install the frr package)")
        for p in [self.workdir, *self.workdir.iterdir()]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.workdir, 0o755)

    def _check_config(self) -> None:
        # bgpd -C exits 0 even on errors; it logs "[EC 100663304] No such command ...".
        cmd = self._command()
        out = subprocess.run([cmd[0], "-C", *cmd[1:]], capture_output=True, text=True)
        text = out.stdout + out.stderr
        if out.returncode != 0 or re.search(r"\[EC \d+\]|[Ee]rror", text):
            raise PeerError(f"bgpd rejects {self.config_path}: {text}")

    def _command(self) -> list[str]:
        return [
            _find_binary("/usr/lib/frr/bgpd") or "/usr/lib/frr/bgpd",
            "-Z",
            "-u",
            self.user,
            "-g",
            self.user,
            "-l",
            self.address,
            "-p",
            str(self.port),
            "-P",
            "0",
            "--vty_socket",
            str(self.workdir),
            "-f",
            str(self.config_path),
            "-i",
            str(self.workdir / "bgpd.pid"),
        ]

    def vtysh(self, *commands: str, timeout: float = 15.0) -> str:
        """Run vtysh commands (each one a ``-c``) against this bgpd."""
        cmd = ["vtysh", "--vty_socket", str(self.workdir), "-d", "bgpd"]
        for c in commands:
            cmd += ["-c", c]
        out = self._run(cmd, timeout=timeout)
        if re.search(r"^% (Unknown command|Invalid|Command incomplete|.*[Ee]rror)", out, re.M):
            raise PeerError(f"vtysh {commands}: {out}")
        return out

    def _ready(self) -> bool:
        if not (self.workdir / "bgpd.vty").exists():
            return False
        json.loads(self.vtysh("show bgp summary json", timeout=5))
        return True

    def _raw_state(self, address: str) -> str:
        data = json.loads(self.vtysh(f"show bgp neighbors {address} json"))
        return data.get(address, {}).get("bgpState", "Idle")

    def _routes(self, family: str) -> dict[str, list[dict]]:
        out = self.vtysh(f"show bgp {family} unicast json detail")
        return self.parse_detail_json(json.loads(out))

    @staticmethod
    def parse_detail_json(data: Mapping[str, Any]) -> dict[str, list[dict]]:
        """Parse ``show bgp <afi> unicast json detail`` (FRR 8.4) into normalised paths."""
        result: dict[str, list[dict]] = {}
        for prefix, entries in (data.get("routes") or {}).items():
            paths = entries if isinstance(entries, list) else entries.get("paths", [])
            for p in paths:
                if "aspath" not in p and "nexthops" not in p:
                    continue  # the per-prefix header entry
                peer = p.get("peer") or {}
                peer_id = peer.get("peerId")
                local = p.get("sourced") or p.get("local") or peer_id in (None, "0.0.0.0", "::")
                path = new_path(
                    best=bool((p.get("bestpath") or {}).get("overall")),
                    **{"from": None if local else peer_id},
                )
                segs = (p.get("aspath") or {}).get("segments") or []
                path["as_path"] = [a for s in segs for a in s.get("list", [])]
                origin = str(p.get("origin", "")).lower()
                path["origin"] = origin if origin in _ORIGINS else None
                path["med"] = p.get("metric")
                path["local_pref"] = p.get("locPrf", p.get("localpref"))
                path["communities"] = list((p.get("community") or {}).get("list") or [])
                path["large_communities"] = list((p.get("largeCommunity") or {}).get("list") or [])
                path["originator_id"] = p.get("originatorId")
                path["cluster_list"] = list((p.get("clusterList") or {}).get("list") or [])
                for nh in p.get("nexthops") or []:
                    if nh.get("scope") == "link-local":
                        path["next_hop_link_local"] = nh.get("ip")
                    elif path["next_hop"] is None:
                        path["next_hop"] = nh.get("ip")
                if "addpathRxId" in p:
                    path["path_id"] = p["addpathRxId"]
                result.setdefault(_normalize_prefix(prefix), []).append(path)
        return result

    def _announce(self, route: Route, old: Route | None = None) -> None:
        if old is not None:
            self._withdraw(old)
            self.vtysh("configure terminal", f"no route-map {self._rm_name(old)}", "end")
        lines = ["configure terminal"]
        lines += [line.strip() for line in self._route_lines(route)]
        lines += [
            f"router bgp {self.asn}",
            f"address-family {route.family} unicast",
            f"network {route.prefix} route-map {self._rm_name(route)}",
            "end",
        ]
        self.vtysh(*lines)

    def _withdraw(self, route: Route) -> None:
        self.vtysh(
            "configure terminal",
            f"router bgp {self.asn}",
            f"address-family {route.family} unicast",
            f"no network {route.prefix} route-map {self._rm_name(route)}",
            "end",
        )


#: Peer classes by short name (the names the conftest fixtures use).
PEER_CLASSES: dict[str, type[BgpPeer]] = {
    "bird": BirdPeer,
    "gobgp": GobgpPeer,
    "frr": FrrPeer,
}

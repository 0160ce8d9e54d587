"""bgpd itself as a real subprocess, for interop tests against BIRD, GoBGP and FRR.

:class:`BgpdProcess` writes a YAML config into its own temporary directory (listen on its
own ``127.0.0.x:179``, control socket in that directory), runs
``python -m bgpd.cli.main run -c CFG --log-level debug`` (the same entry point as the
``bgpd`` console script, with the interpreter running the tests), waits until the control
socket answers ``ping``, and reads the daemon's state through :mod:`bgpd.api.client` only.

Routes are returned in the harness's normalised shape (:func:`peers.new_path`): ``as_path``
a list of ints, ``from`` the neighbor's address (None for routes bgpd originates itself),
so a test can compare what bgpd learned with what a peer's CLI shows.

The process is only ever signalled by the PID this object started (SIGTERM in :meth:`stop`,
SIGKILL in :meth:`kill`); the ``bgpd`` fixture in conftest.py stops every instance in
teardown, even when the test fails.
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
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

try:
    from . import peers
except ImportError:  # pragma: no cover - depends on how pytest imports this dir
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peers  # type: ignore[no-redef]

from bgpd.api.client import ApiError, request

BGP_STATES = peers.BGP_STATES

#: Defaults every test wants: quick retries (the harness peers retry every 3 s too), and
#: a short wait after a failed session (BIRD's peers here say ``error wait time 1, 5``; the
#: default wait, 5 s doubling, is tested in tests/fsm/test_fsm_restart_timing.py). A
#: neighbor that sets ``error_wait`` or takes a ``template`` keeps its own.
DEFAULT_CONNECT_RETRY = 2
DEFAULT_ERROR_WAIT = [1, 5]

_LIVE: weakref.WeakSet[BgpdProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        with contextlib.suppress(Exception):
            p.kill()


def bgpd_command() -> list[str]:
    """The ``bgpd`` command: the console script next to the running interpreter (the venv's
    ``bin/bgpd``) if there is one, else ``python -m bgpd.cli.main``."""
    script = Path(sys.executable).with_name("bgpd")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "bgpd.cli.main"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BGPD_SOCKET", None)
    env.pop("BGPD_CONFIG", None)
    # Run the bgpd of this checkout, whatever the cwd of the test run.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def tcp_sessions(a: str, b: str, port: int = 179) -> list[tuple[str, str]]:
    """Established TCP connections between addresses ``a`` and ``b`` with ``port`` at one end,
    as ``(a's end, b's end)`` strings ``"addr:port"`` (read with ``ss``)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", "src", a, "dst", b],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    conns = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local, remote = fields[-2], fields[-1]
        if local.endswith(f":{port}") or remote.endswith(f":{port}"):
            conns.append((local, remote))
    return conns


def free_port(host: str) -> int:
    """A TCP port nobody listens on at ``host`` (for sessions on ``::1``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BgpdError(RuntimeError):
    """bgpd failed to start, died, or its control socket returned an error."""


def _as_path_list(text: str | None) -> list[int]:
    """bgpd's ``as_path`` string (``"65010 {1,2} 65020"``) as a flat list of ASNs."""
    return [int(a) for a in re.findall(r"\d+", text or "")]


def normalize_path(path: Mapping[str, Any]) -> dict[str, Any]:
    """One path of ``show_routes`` in the harness's shape (plus ``raw``: bgpd's own dict)."""
    return peers.new_path(
        next_hop=path.get("next_hop"),
        as_path=_as_path_list(path.get("as_path")),
        origin=path.get("origin"),
        med=path.get("med"),
        local_pref=path.get("local_pref"),
        communities=list(path.get("communities") or []),
        large_communities=list(path.get("large_communities") or []),
        originator_id=path.get("originator_id"),
        cluster_list=list(path.get("cluster_list") or []),
        best=path.get("best"),
        raw=dict(path),
        **{"from": path.get("from")},
    )


class BgpdProcess:
    """One ``bgpd run`` process bound to one loopback address.

    ``neighbors`` are bgpd config mappings (docs/configuration.md), written to the YAML as
    given; ``connect_retry`` defaults to :data:`DEFAULT_CONNECT_RETRY` at the top level.
    ``extra`` adds or overrides top-level keys. ``listen`` overrides the default
    ``[{address: ADDRESS, port: PORT}]``.
    """

    kind = "bgpd"
    #: the neighbors' ``error_wait`` unless they set one; None: bgpd's default
    error_wait: list[int] | None = DEFAULT_ERROR_WAIT

    def __init__(
        self,
        *,
        name: str,
        address: str,
        asn: int,
        router_id: str | None = None,
        port: int = 179,
        neighbors: Iterable[Mapping[str, Any]] = (),
        networks: Iterable[str] = (),
        listen: Iterable[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        log_level: str = "debug",
    ) -> None:
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified:
            raise ValueError("bgpd must bind its own address, never a wildcard")
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        self.address = str(ip)
        self.asn = int(asn)
        self.router_id = router_id or (self.address if ip.version == 4 else "10.255.255.2")
        self.port = int(port)
        self.neighbor_configs: list[dict[str, Any]] = [dict(n) for n in neighbors]
        self.networks = [str(n) for n in networks]
        self.listen = (
            [dict(x) for x in listen]
            if listen is not None
            else [{"address": self.address, "port": self.port}]
        )
        self.extra = dict(extra or {})
        self.log_level = log_level
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"bgpd-interop-bgpd-{self.name}-"))
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.starts = 0

    # ---- description -----------------------------------------------------------------

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BgpdProcess {self.name} {self.address} AS{self.asn} {state}>"

    @property
    def config_path(self) -> Path:
        return self.workdir / "bgpd.yaml"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "bgpd.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bgpd.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "router_id": self.router_id,
            "asn": self.asn,
            "listen": self.listen,
            "control_socket": str(self.socket_path),
            "connect_retry": DEFAULT_CONNECT_RETRY,
            "networks": self.networks,
            "neighbors": [
                n
                if self.error_wait is None or "error_wait" in n or "template" in n
                else {**n, "error_wait": self.error_wait}
                for n in self.neighbor_configs
            ],
        }
        cfg.update(self.extra)
        return cfg

    def config_text(self) -> str:
        return yaml.safe_dump(self.config(), sort_keys=False)

    def command(self) -> list[str]:
        return [*bgpd_command(), "run", "-c", str(self.config_path), "--log-level", self.log_level]

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> BgpdProcess:
        """Write the config, start bgpd, wait until its control socket answers ``ping``."""
        if self.running:
            raise BgpdError(f"{self!r} is already running")
        self.config_path.write_text(self.config_text())
        cmd = self.command()
        (self.workdir / "command").write_text(shlex.join(cmd) + "\n")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=_env(),
            start_new_session=True,
        )
        self.starts += 1
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                self._reap()
                raise BgpdError(
                    f"{self!r} exited with {self.returncode} during start\n{self.log_tail()}"
                )
            if self.socket_path.exists():
                try:
                    if self.request("ping", timeout=2).get("pong"):
                        return self
                except ApiError as e:
                    last = e
            time.sleep(0.05)
        self.kill()
        raise BgpdError(f"{self!r} not ready within {timeout}s ({last})\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` s. Returns the exit status. Idempotent."""
        proc = self._proc
        if proc is None:
            return None
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
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL at once: no NOTIFICATION, the peers find out through their hold timers."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)
        self._reap()

    def restart(self, timeout: float = 15.0) -> BgpdProcess:
        self.stop()
        return self.start(timeout)

    def cleanup(self, remove_workdir: bool = True) -> None:
        try:
            self.stop()
        finally:
            if remove_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # ---- control socket --------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run the real ``bgpd`` command against this daemon (``-s`` is added)."""
        cmd = [*bgpd_command(), *args, "-s", str(self.socket_path)]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=self.workdir
        )

    def cli_json(self, *args: str) -> Any:
        """``bgpd ARGS --json -s SOCK``: the parsed output; raise BgpdError on failure."""
        res = self.cli(*args, "--json")
        if res.returncode != 0:
            raise BgpdError(f"bgpd {' '.join(args)} --json: exit {res.returncode}: {res.stderr}")
        return json.loads(res.stdout)

    def request(self, command: str, args: dict | None = None, timeout: float = 10.0) -> Any:
        return request(str(self.socket_path), command, args, timeout=timeout)

    def _check_alive(self) -> None:
        if not self.running:
            raise BgpdError(f"{self!r} is not running (exit {self.returncode})\n{self.log_tail()}")

    def neighbors(self) -> dict[str, dict]:
        """``show_neighbors``: ``{address: NEIGHBOR}`` (docs/api.md)."""
        self._check_alive()
        result = self.request("show_neighbors")
        return {n["address"]: n for n in result["neighbors"]}

    def neighbor(self, address: str) -> dict:
        self._check_alive()
        address = str(ipaddress.ip_address(address))
        result = self.request("show_neighbors", {"address": address})
        (n,) = result["neighbors"]
        return n

    def state(self, address: str) -> str:
        return self.neighbor(address)["state"]

    def wait_state(self, address: str, state: str = "Established", timeout: float = 20.0) -> dict:
        """Poll until the session with ``address`` is in ``state``; return the neighbor."""
        if state not in BGP_STATES:
            raise ValueError(f"state must be one of {BGP_STATES}")
        deadline = time.monotonic() + timeout
        while True:
            n = self.neighbor(address)
            if n["state"] == state:
                return n
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: session with {address} is {n['state']} "
                    f"(last_error {n['last_error']!r}), not {state}, after {timeout}s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def wait_neighbor(
        self, address: str, predicate: Callable[[dict], bool], timeout: float = 20.0
    ) -> dict:
        """Poll ``show_neighbors ADDRESS`` until ``predicate(neighbor)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.neighbor(address)
            if predicate(n):
                return n
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: neighbor {address} never matched after {timeout}s: "
                    f"{json.dumps(n)}\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def raw_routes(self, family: str | None = None, **args: Any) -> list[dict]:
        """``show_routes`` as bgpd returns it."""
        self._check_alive()
        if family:
            args["family"] = family
        return self.request("show_routes", args)["routes"]

    def routes(self, family: str = "ipv4", include_local: bool = False) -> dict[str, list[dict]]:
        """The Loc-RIB as ``{prefix: [path, ...]}`` in the harness's shape (like
        :meth:`peers.BgpPeer.routes`: learned routes only unless ``include_local``)."""
        table: dict[str, list[dict]] = {}
        for r in self.raw_routes(family):
            paths = [normalize_path(p) for p in r["paths"]]
            if not include_local:
                paths = [p for p in paths if p["from"]]
            if paths:
                table[r["prefix"]] = paths
        return table

    def wait_route(
        self,
        prefix: str,
        timeout: float = 20.0,
        predicate: Callable[[list[dict]], bool] | None = None,
        include_local: bool = False,
    ) -> list[dict]:
        prefix = str(ipaddress.ip_network(prefix, strict=False))
        family = "ipv6" if ":" in prefix else "ipv4"
        deadline = time.monotonic() + timeout
        while True:
            paths = self.routes(family, include_local).get(prefix, [])
            if paths and (predicate is None or predicate(paths)):
                return paths
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self!r}: {prefix} not there (or predicate false) after {timeout}s; "
                    f"paths={paths}\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def wait_no_route(self, prefix: str, timeout: float = 20.0) -> None:
        prefix = str(ipaddress.ip_network(prefix, strict=False))
        family = "ipv6" if ":" in prefix else "ipv4"
        deadline = time.monotonic() + timeout
        while True:
            paths = self.routes(family).get(prefix)
            if not paths:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self!r}: {prefix} still there after {timeout}s: {paths}")
            time.sleep(0.1)

    # ---- logs --------------------------------------------------------------------------

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_events(self) -> list[dict]:
        """The log as parsed JSON lines (bgpd logs JSON when stderr is not a terminal)."""
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    out.append(obj)
        return out

    def log_tail(self, lines: int = 60) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- {self.name} (bgpd) log tail, workdir {self.workdir} ---\n{tail}"

    _log_tail = log_tail  # the name PeerFactory.close uses for the harness peers


class BgpdFactory:
    """``bgpd(asn=…, neighbors=[…], networks=[…])`` → a started :class:`BgpdProcess`.

    Every instance is stopped (SIGTERM, then SIGKILL) by :meth:`close`.
    """

    def __init__(self, addresses: Callable[[], str], test_name: str = "") -> None:
        self.addresses = addresses
        self.test_name = test_name
        self.procs: list[BgpdProcess] = []

    def __call__(
        self,
        *,
        asn: int,
        neighbors: Iterable[Mapping[str, Any]] = (),
        networks: Iterable[str] = (),
        name: str | None = None,
        address: str | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> BgpdProcess:
        address = address or self.addresses()
        name = name or f"bgpd{len(self.procs) + 1}"
        p = BgpdProcess(
            name=name, address=address, asn=asn, neighbors=neighbors, networks=networks, **kwargs
        )
        self.procs.append(p)
        if start:
            p.start()
        return p

    def close(self, failed: bool, keep: bool = False) -> None:
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                errors.append(e)
            if failed:
                sys.stderr.write(f"\n{p.log_tail(120)}\n--- config ---\n{p.config_text()}\n")
            if keep:
                sys.stderr.write(f"kept {p!r} work dir {p.workdir}\n")
            else:
                shutil.rmtree(p.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

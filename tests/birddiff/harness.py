"""The differential harness: BIRD 1.6.8 and ``bgpd run --bird`` on one configuration, side by
side, in identical network namespaces, fed the same inputs; their kernel tables and what each
peer received are collected and diffed.

One :class:`Side` per daemon: a node namespace ``bd<tag><b|g>n`` (the daemon, ``eth0`` with
the node's addresses, the workload, tunnel and other interfaces, Felix's and the admin's
routes) and a peers namespace ``bd<tag><b|g>p`` (``eth0``, the other end, with every peer's
address, and :mod:`peerrig` speaking BGP for all of them). :func:`run_case` builds both
sides, starts them together, applies each step, waits until both are quiet and returns one
:class:`Observation` per side per step; :func:`diff` compares two observations.

Everything a side creates is named with the ``bd`` prefix and removed by :meth:`Side.close`
(processes by the PID started, namespaces by name), also when a step fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from inputs import NO_LOCAL_PREF, Plan, Step, plan

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_TUNNEL = re.compile(r'krt_tunnel\s*=\s*"[^"]*"')


def strip_tunnel(text: str) -> str:
    """Upstream BIRD 1.6.8's version of a fork file: ``krt_tunnel = "X"`` becomes a no-op
    statement (``preference = preference``: the kernel export filter's preference changes
    nothing), so the ``if ... then A; else B;`` shapes stay valid."""
    return _TUNNEL.sub("preference = preference", text)


def bgpd_command() -> list[str]:
    script = Path(sys.executable).with_name("bgpd")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "bgpd.cli.main"]


def sh(*args: str, check: bool = True) -> str:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


# --- observing -------------------------------------------------------------------------------


def _route_text(r: dict) -> str:
    """One kernel route as a canonical line: what the comparison is about."""
    parts = [r.get("type", "unicast"), r["dst"]]
    if r.get("gateway"):
        parts += ["via", r["gateway"]]
    if r.get("dev"):
        parts += ["dev", r["dev"]]
    parts += ["proto", str(r.get("protocol", "boot"))]
    parts += ["scope", r.get("scope", "global")]
    parts += ["metric", str(r.get("metric", 0))]
    flags = sorted(f for f in r.get("flags", []) if f not in ("linkdown",))
    if flags:
        parts += ["flags", ",".join(flags)]
    if r.get("prefsrc"):
        parts += ["src", r["prefsrc"]]
    hops = []
    for h in r.get("nexthops", []):
        hop = ["nexthop"]
        if h.get("gateway"):
            hop += ["via", h["gateway"]]
        if h.get("dev"):
            hop += ["dev", h["dev"]]
        hop += ["weight", str(h.get("weight", 1))]
        f = sorted(x for x in h.get("flags", []) if x not in ("linkdown",))
        if f:
            hop += ["flags", ",".join(f)]
        hops.append(" ".join(hop))
    return " ".join(parts + sorted(hops))


def kernel_table(ns: str, ipv6: bool) -> list[str]:
    out = sh("ip", "-n", ns, "-6" if ipv6 else "-4", "-j", "route", "show", "table", "main")
    rows = [_route_text(r) for r in json.loads(out or "[]")]
    if ipv6:  # link-local networks of each veth: identical, but noise
        rows = [r for r in rows if " fe80::/64 " not in f" {r} "]
    return sorted(rows)


@dataclass
class Observation:
    kernel: list  # canonical route lines
    peers: dict  # peer name -> {"state", "established", "eor", "rib": [[pid, prefix, attrs]]}

    def received(self, peer: str) -> list:
        """What ``peer`` holds: ``prefix attrs-json`` lines, path ids left out (they are
        each speaker's own numbering), one line per path."""
        rib = self.peers.get(peer, {}).get("rib", [])
        return sorted(f"{p} {json.dumps(a, sort_keys=True)}" for _pid, p, a in rib)


@dataclass
class Difference:
    what: str  # "kernel" or "peer NAME"
    bird_only: list
    bgpd_only: list

    def __str__(self) -> str:
        lines = [f"{self.what}:"]
        lines += [f"  BIRD only: {x}" for x in self.bird_only]
        lines += [f"  bgpd only: {x}" for x in self.bgpd_only]
        return "\n".join(lines)


def diff(bird: Observation, bgpd: Observation, ignore_peers=()) -> list[Difference]:
    out = []
    b, g = set(bird.kernel), set(bgpd.kernel)
    if b != g:
        out.append(Difference("kernel", sorted(b - g), sorted(g - b)))
    for name in sorted(set(bird.peers) | set(bgpd.peers)):
        if name in ignore_peers:
            continue
        rb, rg = bird.received(name), bgpd.received(name)
        sb, sg = bird.peers.get(name, {}), bgpd.peers.get(name, {})
        extra_b = [f"session {sb.get('state')}"] if sb.get("state") != sg.get("state") else []
        extra_g = [f"session {sg.get('state')}"] if extra_b else []
        for k in ("notifications", "errors"):
            if sb.get(k) or sg.get(k):
                extra_b += [f"{k}: {x}" for x in sb.get(k, [])]
                extra_g += [f"{k}: {x}" for x in sg.get(k, [])]
        if rb != rg or extra_b or extra_g:
            mb, mg = _multiset_minus(rb, rg), _multiset_minus(rg, rb)
            out.append(Difference(f"peer {name}", extra_b + mb, extra_g + mg))
    return out


@dataclass(frozen=True)
class Known:
    """A deliberate difference (docs/bird.md, "Differences from BIRD 1.6.8"):
    ``explain(difference) -> (BIRD-only lines, bgpd-only lines)`` it accounts for."""

    name: str
    explain: object


def _prefix_of(line: str) -> str:
    return line.split()[1]


def _unresolved(d: Difference) -> tuple:
    """BIRD installs ``unreachable`` for a BGP route whose next hop does not resolve; bgpd
    installs nothing."""
    if d.what != "kernel":
        return [], []
    other = {_prefix_of(x) for x in d.bgpd_only}
    return [
        x
        for x in d.bird_only
        if x.startswith("unreachable ") and " proto bird " in x and _prefix_of(x) not in other
    ], []


def _through_bgp(d: Difference) -> tuple:
    """A next hop covered by a BGP route (a ToR's default route) in BIRD's table cannot
    resolve (a recursive route never resolves through another): BIRD installs
    ``unreachable``; bgpd resolves it through the host's table (the kernel's default route)
    and installs the route."""
    if d.what != "kernel":
        return [], []
    bird = {_prefix_of(x): x for x in d.bird_only if x.startswith("unreachable ")}
    ours = [x for x in d.bgpd_only if x.startswith("unicast ") and _prefix_of(x) in bird]
    return [bird[_prefix_of(x)] for x in ours], ours


def _no_local_pref(d: Difference) -> tuple:
    """An iBGP route without LOCAL_PREF (inputs.NO_LOCAL_PREF): BIRD takes it with its
    ``default bgp_local_pref`` (100), bgpd treats it as withdrawn (RFC 7606 §3 (d))."""
    marks = [f" {p} " for p in NO_LOCAL_PREF.values()]

    def hit(line: str) -> bool:
        return any(m in f" {line} " for m in marks)

    return [x for x in d.bird_only if hit(x)], [x for x in d.bgpd_only if hit(x)]


KNOWN = {
    k.name: k
    for k in (
        Known("unresolved-next-hop", _unresolved),
        Known("next-hop-through-bgp-route", _through_bgp),
        Known("ibgp-without-local-pref", _no_local_pref),
    )
}


# explained wherever they show (inputs.py gives every case routes with unresolvable next
# hops); a case that must show one declares it (test_birddiff.Case.known)
EVERYWHERE = ("unresolved-next-hop",)


def explain(diffs: list, names) -> tuple[list, set]:
    """``diffs`` without the lines the known differences ``names`` explain, and the names
    that explained something."""
    hits: set = set()
    rest = []
    for d in diffs:
        bird_only, bgpd_only = list(d.bird_only), list(d.bgpd_only)
        for name in names:
            b, g = KNOWN[name].explain(Difference(d.what, bird_only, bgpd_only))
            if b or g:
                hits.add(name)
                bird_only = [x for x in bird_only if x not in b]
                bgpd_only = [x for x in bgpd_only if x not in g]
        if bird_only or bgpd_only:
            rest.append(Difference(d.what, bird_only, bgpd_only))
    return rest, hits


def _multiset_minus(a: list, b: list) -> list:
    rest = list(b)
    out = []
    for x in a:
        if x in rest:
            rest.remove(x)
        else:
            out.append(x)
    return out


# --- one side ----------------------------------------------------------------------------------


class Side:
    """One daemon (``"bird"`` or ``"bgpd"``) with its namespaces, host state and peers."""

    def __init__(self, kind: str, tag: str, plan: Plan, workdir: Path, sbin: Path | None):
        self.kind = kind
        self.plan = plan
        self.workdir = workdir
        self.sbin = sbin
        k = "b" if kind == "bird" else "g"
        self.node = f"bd{tag}{k}n"
        self.peers = f"bd{tag}{k}p"
        self.procs: list[subprocess.Popen] = []
        self.daemon: subprocess.Popen | None = None
        self.rig: subprocess.Popen | None = None
        self.rig_sock = str(workdir / "rig.sock")
        self.logs: dict = {}
        self.made: list[str] = []

    # --- building -------------------------------------------------------------------------

    def build(self) -> None:
        p = self.plan
        for ns in (self.node, self.peers):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip", "-n", self.node, "link", "add", "eth0", "type", "veth",
            "peer", "name", "eth0", "netns", self.peers,
        )  # fmt: skip
        for i, name in enumerate(p.links[1:], 1):
            sh(
                "ip",
                "-n",
                self.node,
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                f"bdw{i}",
            )
            sh("ip", "-n", self.node, "link", "set", f"bdw{i}", "up")
        for name in p.links:
            sh("ip", "-n", self.node, "link", "set", name, "up")
        sh("ip", "-n", self.peers, "link", "set", "eth0", "up")
        v6 = ["nodad"] if p.ipv6 else []
        for a in p.node_addresses:
            sh("ip", "-n", self.node, "addr", "add", a, "dev", "eth0", *v6)
        for dev, a in p.link_addresses:
            sh("ip", "-n", self.node, "addr", "add", a, "dev", dev, *v6)
        for a in p.peer_addresses:
            sh("ip", "-n", self.peers, "addr", "add", a, "dev", "eth0", *v6)
        fam = "-6" if p.ipv6 else "-4"
        # the peers reach every node address (a /32 outside their subnet) over eth0
        for a in p.node_addresses:
            if not a.endswith(f"/{p.subnet.prefixlen}"):
                sh("ip", "-n", self.peers, fam, "route", "add", a, "dev", "eth0")
        for r in p.routes:
            sh("ip", "-n", self.node, *r)

    # --- running ----------------------------------------------------------------------------

    def _spawn(self, ns: str, argv: list[str], name: str) -> subprocess.Popen:
        self.logs[name] = self.workdir / f"{name}.log"
        with open(self.logs[name], "w") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.procs.append(proc)
        return proc

    def start_rig(self) -> None:
        p = self.plan
        spec = {"ipv6": p.ipv6, "peers": [pp.spec(p.node_address, p.node_port) for pp in p.peers]}
        path = self.workdir / "rig.json"
        path.write_text(json.dumps(spec))
        self.rig = self._spawn(
            self.peers, [sys.executable, str(HERE / "peerrig.py"), str(path), self.rig_sock], "rig"
        )

    def start_daemon(self, config: Path) -> None:
        ipv6 = self.plan.ipv6
        if self.kind == "bird":
            binary = self.sbin / ("bird6" if ipv6 else "bird")
            argv = [str(binary), "-d", "-c", str(config), "-s", str(self.workdir / "bird.ctl")]
        else:
            argv = [*bgpd_command(), "run", "--bird", str(config), "--log-level", "info"]
            argv += ["--control-socket", str(self.workdir / "bgpd.sock")]
            if ipv6:
                argv.append("--ipv6")
        self.daemon = self._spawn(self.node, argv, self.kind)

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        sock = self.workdir / ("bird.ctl" if self.kind == "bird" else "bgpd.sock")
        while not (Path(self.rig_sock + ".ready").exists() and sock.exists()):
            for proc, name in ((self.daemon, self.kind), (self.rig, "rig")):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{self.kind}: {name} exited:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}: not ready in {timeout} s")
            time.sleep(0.05)

    def rig_call(self, req: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.rig_sock)
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def observe(self) -> Observation:
        return Observation(kernel_table(self.node, self.plan.ipv6), self.rig_call({"cmd": "state"}))

    def alive(self) -> str | None:
        for proc, name in ((self.daemon, self.kind), (self.rig, "rig")):
            if proc is not None and proc.poll() is not None:
                return f"{self.kind}: {name} exited with {proc.returncode}:\n{self.log_tail(name)}"
        return None

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- a step's changes -------------------------------------------------------------------

    def apply(self, step: Step) -> None:
        for r in step.host:
            sh("ip", "-n", self.node, *r)
        for peer, routes in step.announce.items():
            self.rig_call({"cmd": "announce", "peer": peer, "routes": routes})
        for peer, routes in step.withdraw.items():
            self.rig_call({"cmd": "withdraw", "peer": peer, "routes": routes})

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --- a whole case ------------------------------------------------------------------------------


def case_files(golden: Path, ipv6: bool, splice: Path | None, fork: bool) -> dict:
    """The case's files as text, ``{name: text}``: the golden files (krt_tunnel stripped
    unless ``fork``), and ``splice``'s ``protocol bgp`` blocks appended to the main file (a
    case without peers given the mesh confd would write for it)."""
    main = "bird6.cfg" if ipv6 else "bird.cfg"
    prefix = "bird6" if ipv6 else "bird"
    files = {}
    for f in sorted(golden.glob(f"{prefix}*.cfg")):
        if f.name.startswith("bird6") != ipv6:
            continue
        text = f.read_text()
        files[f.name] = text if fork else strip_tunnel(text)
    if splice is not None:
        extra = splice.joinpath(main).read_text()
        blocks = re.findall(r"^protocol bgp .*?^\}", extra, flags=re.S | re.M)
        files[main] = files[main].rstrip() + "\n" + "\n".join(blocks) + "\n"
    return files


def write_files(files: dict, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (where / name).write_text(text)


class Run:
    """Both sides of one case, started; :meth:`settle` observes both until they are quiet."""

    def __init__(self, files: dict, ipv6: bool, sbin: Path, default_route=False, sides=None):
        self.tag = secrets.token_hex(2)
        self.tmp = Path(tempfile.mkdtemp(prefix="bd-"))
        self.ipv6 = ipv6
        main = "bird6.cfg" if ipv6 else "bird.cfg"
        write_files(files, self.tmp / "cfg")
        self.config = self.tmp / "cfg" / main
        text = "\n".join(files.values())
        self.plan = plan(str(self.config), text, ipv6, default_route=default_route)
        self.sides: dict[str, Side] = {}
        for kind in sides or ("bird", "bgpd"):
            d = self.tmp / kind
            d.mkdir()
            self.sides[kind] = Side(kind, self.tag, self.plan, d, sbin)

    def start(self) -> None:
        for s in self.sides.values():
            s.build()
        for s in self.sides.values():
            s.start_rig()
            s.start_daemon(self.config)
        for s in self.sides.values():
            s.wait_ready()

    def established(self) -> dict:
        return {
            k: {n: st["state"] for n, st in s.observe().peers.items()}
            for k, s in self.sides.items()
        }

    def settle(
        self, timeout: float = 30.0, quiet: float = 2.5, stuck: float = 6.0, ignore_peers=()
    ) -> dict:
        """Observe both sides until every expected session is up with End-of-RIB from the
        node and the two agree and stay so for ``quiet`` seconds (BIRD's kernel scan is
        2 s), or until each side on its own has not changed for ``stuck`` seconds while they
        differ (a real difference: no need to wait longer), or ``timeout``. Returns the last
        observations."""
        deadline = time.monotonic() + timeout
        agreed_at = None
        agreed: list = []
        since: dict = {}  # side -> (observation, unchanged since)
        while True:
            for s in self.sides.values():
                dead = s.alive()
                if dead:
                    raise RuntimeError(dead)
            last = {k: s.observe() for k, s in self.sides.items()}
            now = time.monotonic()
            for k, o in last.items():
                prev = since.get(k)
                if prev is None or not _same_obs(prev[0], o):
                    since[k] = (o, now)
            ready = all(
                st["state"] == "Established" and st["eor"]
                for o in last.values()
                for n, st in o.peers.items()
                if n not in ignore_peers
            )
            obs = list(last.values())
            same = len(obs) < 2 or not diff(obs[0], obs[1], ignore_peers)
            if ready and same:
                if agreed_at is None:
                    agreed_at, agreed = now, obs
                elif now - agreed_at >= quiet:
                    if all(_same_obs(a, b) for a, b in zip(agreed, obs, strict=True)):
                        return last
                    agreed_at, agreed = now, obs
            else:
                agreed_at = None
                if ready and all(now - t >= stuck for _o, t in since.values()):
                    return last
            if now > deadline:
                return last
            time.sleep(0.25)

    def apply(self, step: Step) -> None:
        for s in self.sides.values():
            s.apply(step)

    def bgpd_json(self, *args: str):
        """``bgpd ARGS --json`` against the bgpd side's control socket, parsed."""
        sock = str(self.sides["bgpd"].workdir / "bgpd.sock")
        out = subprocess.run(
            [*bgpd_command(), *args, "--json", "-s", sock],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return json.loads(out.stdout)

    def close(self, keep: bool = False) -> None:
        for s in self.sides.values():
            s.close()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- {k} {name} ---\n{s.log_tail(name)}"
            for k, s in self.sides.items()
            for name in (k, "rig")
        )


def _same_obs(a: Observation, b: Observation) -> bool:
    return a.kernel == b.kernel and {n: a.received(n) for n in a.peers} == {
        n: b.received(n) for n in b.peers
    }

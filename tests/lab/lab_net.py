"""The cluster lab in network namespaces: switches, ToRs, nodes, pods, the daemons.

:class:`Lab` builds lab_cluster's topology (every namespace named ``lab<tag>...``), runs
one daemon kind on every node, as calico-node's runit runs BIRD (``bird -R -s
<dir>/bird.ctl -d -c <dir>/bird.cfg`` and the same for ``bird6``, found on PATH under
those names so that argv[0] is ``bird``/``bird6``):

* ``bgpd``: bgpd-bird / bgpd-bird6 (this project);
* ``bird16``: BIRD 1.6.8 (the ``bird16`` fixture's bird / bird6).

and BIRD 2 on the ToRs. It writes the nodes' files as confd does (a staged
``.bird.cfgNNNN`` checked with ``bird -p -c`` in the destination directory, then renamed
into place, then SIGHUP) and runs the operations (pods, node links, daemon stops and
starts, ToR commands). :meth:`Lab.close` stops every process it started (by pid) and
deletes every namespace it made, whatever happened before.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lab_calico as cg
import lab_cluster as lc
from needs import skip_or_fail

HERE = Path(__file__).resolve().parent
BGPD_BIRD = str(Path(sys.executable).parent / "bgpd-bird")
BGPD_BIRD6 = str(Path(sys.executable).parent / "bgpd-bird6")
BGPD_BIRDCL = str(Path(sys.executable).parent / "bgpd-birdcl")
BIRD2 = "/usr/sbin/bird"
BIRDC2 = "/usr/sbin/birdc"
PROBE = str(HERE / "lab_probe.py")
KINDS = ("bgpd", "bird16")
CALI_MAC = "ee:ee:ee:ee:ee:ee"  # Felix's MAC on every cali interface
CALI_LL = "fe80::ecee:eeff:feee:eeee"  # its link-local address: the pods' IPv6 gateway


def run(argv: list[str], *, check: bool = True, timeout: float = 30, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def query(path: str | Path, command: str, timeout: float = 5.0) -> list[str]:
    """One command on a BIRD 1.6 control socket; the reply's lines (greeting dropped)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        buf, lines, replies = b"", [], 0
        while replies < 2:
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"{path}: closed")
            buf += data
            while b"\n" in buf and replies < 2:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode()
                final = len(line) > 4 and line[:4].isdigit() and line[4] == " "
                if replies == 1:
                    lines.append(line)
                if final:
                    replies += 1
        return lines


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {what}")
        time.sleep(interval)


class Watch:
    """Polls ``pred`` in a thread every ``interval`` s from now on; :attr:`at` is the wall
    time it was first true (None: not yet). For times measured from an action on."""

    def __init__(self, pred, interval: float = 0.05) -> None:
        import threading

        self.at: float | None = None
        self._stop = threading.Event()

        def loop():
            while not self._stop.is_set():
                try:
                    ok = pred()
                except Exception:  # noqa: BLE001 - a socket between two daemons, say
                    ok = False
                if ok:
                    self.at = time.time()
                    return
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> float | None:
        self._thread.join(timeout)
        return self.at

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Daemon:
    """One process started by the lab (its pid is the daemon's: ``ip netns exec`` and
    ``env`` exec)."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "a") as f:
            self.proc = subprocess.Popen(
                argv, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(5)
        return None


class Probe:
    """lab_probe.py ``watch`` in a pod: an echo every 10 ms to each target."""

    def __init__(self, lab: Lab, pod_ns: str, targets: list[str], name: str) -> None:
        self.targets = targets
        self.out = lab.dir / f"probe-{name}.json"
        self.log = lab.dir / f"probe-{name}.log"
        self.out.unlink(missing_ok=True)
        self._f = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod_ns, sys.executable, PROBE, "watch", "0.01", str(self.out)]
            + targets,
            stdout=self._f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lab.probes.append(self)

    def received(self) -> dict[str, int]:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        for line in reversed(lines):
            with contextlib.suppress(ValueError):
                return json.loads(line)["received"]
        return {}

    def wait_flowing(self, n: int = 20, timeout: float = 15) -> None:
        def ok():
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            got = self.received()
            return all(got.get(t, 0) >= n for t in self.targets)

        wait_until(ok, timeout, f"replies from {self.targets}: {self.received()}")

    def stop(self) -> dict[str, dict]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._f.close()
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        with contextlib.suppress(Exception):
            self._f.close()


def tor_conf(tor: str, profile: str) -> str:
    """BIRD 2 on a ToR: its rack's nodes (eBGP, graceful restart), the other ToR, the
    rack network, the outside network (tor1) and a bogus network the nodes refuse."""
    asn = lc.TOR_ASN[tor]
    other = "tor2" if tor == "tor1" else "tor1"
    rack = "a" if tor == "tor1" else "b"
    lines = [
        f"router id {lc.tor_v4(tor)};",
        f'log "{tor}.log" all;',
        "protocol device { scan time 10; }",
        'protocol direct { ipv4; ipv6; interface "rack", "ext"; }',
        "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }",
        "protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; merge paths on; }",
    ]
    if tor == "tor1":
        lines += [
            f"protocol static bogus4 {{ ipv4; route {lc.BOGUS_NETS[0]} unreachable; }}",
            f"protocol static bogus6 {{ ipv6; route {lc.BOGUS_NETS[1]} unreachable; }}",
        ]
    # to the nodes: the outside networks and what BGP brought, not the fabric's own
    # networks (the nodes reach those through their static route to the ToR)
    to_nodes = {
        fam: f"export filter {{ if net ~ [ {outside}+ ] then accept;"
        f" if net ~ [ {fabric} ] then reject; if source = RTS_BGP then accept; reject; }};"
        for fam, outside, fabric in (
            (4, "172.31.0.0/16", "10.192.0.0/16+, 10.0.12.0/30+"),
            (6, "fd00:31::/32", "fd00:192::/32+, fd00:12::/64+"),
        )
    }
    lines.append(f"template bgp node {{ local as {asn}; graceful restart on; }}")
    for n in lc.NODES:
        if lc.RACK[n] != rack:
            continue
        if profile == "rr" and n not in ("n1", "n5"):
            continue
        node_asn = 64512 if profile == "mesh" else (65001 if rack == "a" else 65002)
        lines += [
            f"protocol bgp {n}_4 from node {{ neighbor {lc.node_v4(n)} as {node_asn};"
            f" ipv4 {{ import all; {to_nodes[4]} }}; }}",
            f"protocol bgp {n}_6 from node {{ neighbor {lc.node_v6(n)} as {node_asn};"
            f" ipv6 {{ import all; {to_nodes[6]} }}; }}",
        ]
    me4, me6 = lc.TOR_LINK[tor]
    peer4, peer6 = lc.TOR_LINK[other]
    oasn = lc.TOR_ASN[other]
    lines += [
        f"protocol bgp {other}_4 {{ local {me4} as {asn}; neighbor {peer4} as {oasn};"
        " graceful restart on; ipv4 { import all; export all; }; }",
        f"protocol bgp {other}_6 {{ local {me6} as {asn}; neighbor {peer6} as {oasn};"
        " graceful restart on; ipv6 { import all; export all; }; }",
    ]
    return "\n".join(lines) + "\n"


class Lab:
    """One run of the cluster with one daemon kind on the nodes."""

    def __init__(self, tag: str, workdir: Path, profile: str, kind: str, bird16: Path | None):
        assert kind in KINDS
        self.tag = tag
        self.dir = workdir
        self.profile = profile
        self.kind = kind
        self.bird16 = bird16
        self.cluster = lc.cluster(profile)
        self.made: list[str] = []
        self.daemons: dict[str, Daemon] = {}
        self.probes: list[Probe] = []
        self.bin = workdir / "bin"
        self.staged = 0

    # --- names -------------------------------------------------------------------------

    def ns(self, what: str) -> str:
        return f"lab{self.tag}{what}"

    def pod_ns(self, pod: lc.Pod) -> str:
        return self.ns(f"p{pod.key}")

    def node_dir(self, node: str) -> Path:
        return self.dir / node

    def sock(self, node: str, family: int) -> Path:
        return self.node_dir(node) / ("bird.ctl" if family == 4 else "bird6.ctl")

    # --- building ----------------------------------------------------------------------

    def _netns(self, what: str) -> str:
        name = self.ns(what)
        run(["ip", "netns", "add", name])
        self.made.append(name)
        run(
            ["ip", "netns", "exec", name, "sysctl", "-qw"]
            + [
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ]
        )
        self.batch(name, ["link set lo up"])
        return name

    def batch(self, ns: str, commands: list[str]) -> None:
        r = subprocess.run(
            ["ip", "-n", ns, "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            raise AssertionError(f"ip -n {ns} -batch: {r.stderr.strip()}\n{commands}")

    def build(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        # and the node's birdcl: bgpd-birdcl, as in the image; BIRD 1.6.8's birdc for
        # BIRD (Debian's package has no birdcl; both clients share one command table)
        if self.kind == "bgpd":
            targets = {"bird": BGPD_BIRD, "bird6": BGPD_BIRD6, "birdcl": BGPD_BIRDCL}
        else:
            targets = {
                "bird": str(self.bird16 / "bird"),
                "bird6": str(self.bird16 / "bird6"),
                "birdcl": str(self.bird16 / "birdc"),
            }
        for name, target in targets.items():
            link = self.bin / name
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        switches = {rack: self._netns(f"sw{rack}") for rack in ("a", "b")}
        for sw in switches.values():
            self.batch(
                sw,
                ["link add br0 type bridge mcast_snooping 0", "link set br0 up"],
            )
        tors = {t: self._netns(t) for t in ("tor1", "tor2")}
        for rack, tor in lc.TOR.items():
            sw = switches[rack]
            net = lc.RACK_NET[rack]
            self.batch(
                tors[tor],
                [
                    f"link add rack type veth peer name {tor} netns {sw}",
                    "link set rack up",
                    f"addr add {lc.tor_v4(tor)}/24 dev rack",
                    f"addr add {lc.tor_v6(tor)}/64 dev rack",
                ],
            )
            self.batch(sw, [f"link set {tor} master br0", f"link set {tor} up"])
            assert net
        self.batch(
            tors["tor1"],
            [
                f"link add tor2 type veth peer name tor1 netns {tors['tor2']}",
                "link set tor2 up",
                f"addr add {lc.TOR_LINK['tor1'][0]}/30 dev tor2",
                f"addr add {lc.TOR_LINK['tor1'][1]}/64 dev tor2",
            ],
        )
        self.batch(
            tors["tor2"],
            [
                "link set tor1 up",
                f"addr add {lc.TOR_LINK['tor2'][0]}/30 dev tor1",
                f"addr add {lc.TOR_LINK['tor2'][1]}/64 dev tor1",
            ],
        )
        ext = self._netns("ext")
        self.batch(
            tors["tor1"],
            [
                f"link add ext type veth peer name eth0 netns {ext}",
                "link set ext up",
                f"addr add {lc.EXT_GW[0]}/24 dev ext",
                f"addr add {lc.EXT_GW[1]}/64 dev ext",
            ],
        )
        self.batch(
            ext,
            [
                "link set eth0 up",
                f"addr add {lc.EXT[0]}/24 dev eth0",
                f"addr add {lc.EXT[1]}/64 dev eth0",
                f"route add default via {lc.EXT_GW[0]}",
                f"route add default via {lc.EXT_GW[1]}",
            ],
        )
        for node in lc.NODES:
            self._node(node, switches[lc.RACK[node]])
        for pod in lc.pods():
            self.add_pod(pod)
        for tor in ("tor1", "tor2"):
            (self.dir / f"{tor}.conf").write_text(tor_conf(tor, self.profile))

    def _node(self, node: str, sw: str) -> None:
        ns = self._netns(node)
        rack = lc.RACK[node]
        tor = lc.TOR[rack]
        cmds = [
            f"link add eth0 type veth peer name {node} netns {sw}",
            "link set eth0 up",
            f"addr add {lc.node_v4(node)}/24 dev eth0",
            f"addr add {lc.node_v6(node)}/64 dev eth0",
            f"route add 10.192.0.0/16 via {lc.tor_v4(tor)}",
            f"route add fd00:192::/32 via {lc.tor_v6(tor)}",
        ]
        if self.profile == "rr":
            # only the reflectors peer with the ToR, and a reflector passes on nothing but
            # pool and service routes: the nodes reach the outside through the underlay
            cmds += [
                f"route add 172.31.0.0/16 via {lc.tor_v4(tor)}",
                f"route add fd00:31::/32 via {lc.tor_v6(tor)}",
            ]
        cmds += [
            "link add kube-ipvs0 type veth peer name kube-ipvsp",
            "link set kube-ipvs0 up",
            "link set kube-ipvsp up",
        ]
        for v4, v6 in lc.SERVICE_ADDRS:
            cmds += [f"addr add {v4}/32 dev kube-ipvs0", f"addr add {v6}/128 dev kube-ipvs0"]
        self.batch(ns, cmds)
        self.batch(sw, [f"link set {node} master br0", f"link set {node} up"])
        self.node_dir(node).mkdir(exist_ok=True)

    def add_pod(self, pod: lc.Pod) -> None:
        """A pod as Felix wires it: ``caliX`` in the node (MAC ee:..:ee, proxy ARP),
        ``/32 dev caliX`` and ``/128 dev caliX`` at Felix's priority (metric 1024); in the
        pod, eth0 with the /32 and /128, 169.254.1.1 and fe80::ecee:eeff:feee:eeee as
        gateways."""
        node_ns = self.ns(pod.node)
        ns = self._netns(f"p{pod.key}")
        cali = f"cali{pod.key}{self.tag}"[:15]
        self.batch(
            node_ns,
            [
                f"link add {cali} address {CALI_MAC} type veth peer name eth0 netns {ns}",
                f"link set {cali} up",
            ],
        )
        run(["ip", "netns", "exec", node_ns, "sysctl", "-qw", f"net.ipv4.conf.{cali}.proxy_arp=1"])
        self.batch(
            ns,
            [
                "link set eth0 up",
                f"addr add {pod.v4}/32 dev eth0",
                f"addr add {pod.v6}/128 dev eth0",
                "route add 169.254.1.1 dev eth0 scope link",
                "route add default via 169.254.1.1 dev eth0",
                f"neigh add 169.254.1.1 lladdr {CALI_MAC} dev eth0 nud permanent",
                f"route add default via {CALI_LL} dev eth0",
                f"neigh add {CALI_LL} lladdr {CALI_MAC} dev eth0 nud permanent",
            ],
        )
        self.batch(
            node_ns,
            [
                f"route add {pod.v4}/32 dev {cali} scope link metric 1024",
                f"route add {pod.v6}/128 dev {cali} metric 1024",
            ],
        )

    def del_pod(self, pod: lc.Pod) -> None:
        """Felix's removal: the routes and the veth, then the pod's namespace."""
        ns = self.pod_ns(pod)
        run(["ip", "netns", "del", ns], check=False)
        if ns in self.made:
            self.made.remove(ns)
        cali = f"cali{pod.key}{self.tag}"[:15]
        run(["ip", "-n", self.ns(pod.node), "link", "del", cali], check=False)

    # --- confd -------------------------------------------------------------------------

    def write_configs(self, cluster: cg.Cluster | None = None, nodes=None) -> dict[str, set]:
        """confd: every node's files for ``cluster`` (default: the current one); a staged
        main file is checked with the node's ``bird -p -c`` first (in the destination
        directory). Returns {node: {4, 6}} of the families whose files changed."""
        if cluster is not None:
            self.cluster = cluster
        changed: dict[str, set] = {}
        names = {n.name for n in self.cluster.nodes}
        for node in nodes or lc.NODES:
            if node not in names:
                continue
            d = self.node_dir(node)
            for family in (4, 6):
                files = cg.render(self.cluster, node, family)
                main = cg.CONFIG_NAMES[family][0]
                # confd installs the included files first (no check), the main file last
                for name in sorted(files, key=lambda n: n == main):
                    text = files[name]
                    dst = d / name
                    if dst.exists() and dst.read_text() == text:
                        continue
                    self.staged += 1
                    staged = d / f".{name}{self.staged:04d}"
                    staged.write_text(text)
                    if name == main:
                        exe = str(self.bin / ("bird6" if family == 6 else "bird"))
                        r = run([exe, "-p", "-c", staged.name], cwd=d, check=False)
                        if r.returncode != 0:
                            staged.unlink()
                            raise AssertionError(f"{node}: {exe} -p: {r.stderr.strip()}")
                    os.replace(staged, dst)
                    changed.setdefault(node, set()).add(family)
        return changed

    def hup(self, changed: dict[str, set]) -> None:
        """``sv hup bird`` / ``sv hup bird6`` where confd changed something."""
        for node, families in changed.items():
            for family in families:
                d = self.daemons.get(self._dname(node, family))
                if d is not None and d.alive():
                    d.send(signal.SIGHUP)

    # --- daemons -----------------------------------------------------------------------

    @staticmethod
    def _dname(node: str, family: int) -> str:
        return f"{node}-{'bird6' if family == 6 else 'bird'}"

    def start_node(self, node: str, restart: bool = True, families=(4, 6)) -> None:
        """``bird -R -s bird.ctl -d -c bird.cfg`` (and bird6) in the node, as runit."""
        d = self.node_dir(node)
        for family in families:
            prog = "bird6" if family == 6 else "bird"
            sock = self.sock(node, family)
            argv = ["ip", "netns", "exec", self.ns(node), "env", f"PATH={self.bin}:/usr/bin:/bin"]
            argv += [prog] + (["-R"] if restart else [])
            argv += ["-s", str(sock), "-d", "-c", str(d / f"{prog}.cfg")]
            name = self._dname(node, family)
            self.daemons[name] = Daemon(name, argv, d / f"{prog}.log", d)

    def stop_node(self, node: str, sig: int = signal.SIGTERM, families=(4, 6)) -> None:
        for family in families:
            d = self.daemons.pop(self._dname(node, family), None)
            if d is not None:
                d.stop(sig)

    def birdcl(self, node: str, family: int, *cmd: str) -> str:
        """``birdcl -s bird.ctl CMD`` (bird6.ctl for 6) on a node: the client's output."""
        r = run([str(self.bin / "birdcl"), "-s", str(self.sock(node, family)), *cmd], check=False)
        return r.stdout + r.stderr

    def graceful_restart_node(self, node: str, families=(4, 6)) -> dict[int, str]:
        """``birdcl graceful restart`` on each of the node's daemons (BIRD 2.0's command,
        which bgpd-bird runs): the daemons that stop are waited for and forgotten; returns
        each family's client output."""
        out = {}
        for family in families:
            out[family] = self.birdcl(node, family, "graceful", "restart")
            d = self.daemons.get(self._dname(node, family))
            if d is not None and "Graceful restart requested" in out[family]:
                d.proc.wait(15)  # it exits once its sessions are closed
                del self.daemons[self._dname(node, family)]
        return out

    def start_tors(self) -> None:
        for tor in ("tor1", "tor2"):
            argv = ["ip", "netns", "exec", self.ns(tor), BIRD2, "-f", "-c", f"{tor}.conf"]
            argv += ["-s", f"{tor}.ctl"]
            self.daemons[tor] = Daemon(tor, argv, self.dir / f"{tor}.out", self.dir)

    def birdc(self, tor: str, *cmd: str) -> str:
        """BIRD 2's birdc on a ToR's socket: its output (it exits 1 after an error reply
        such as "Network not found", which is an answer here)."""
        r = run([BIRDC2, "-s", str(self.dir / f"{tor}.ctl"), *cmd], check=False)
        if "Unable to connect" in r.stderr + r.stdout:
            raise AssertionError(f"birdc {tor}: {r.stderr.strip()}")
        return r.stdout

    def sessions_up(self) -> bool:
        """Every BGP protocol of every running node daemon Established."""
        for name, d in self.daemons.items():
            if name.startswith("tor") or not d.alive():
                continue
            node, prog = name.split("-")
            try:
                rows = query(self.sock(node, 6 if prog == "bird6" else 4), "show protocols")
            except OSError:
                return False
            for row in rows:
                f = row[5:].split() if row[:4].isdigit() else row.split()
                if len(f) >= 2 and f[1] == "BGP" and "Established" not in row:
                    return False
        return True

    # --- the data plane -----------------------------------------------------------------

    def reach(self, src_ns: str, targets: list[str], timeout: float = 3.0) -> dict:
        r = run(
            ["ip", "netns", "exec", src_ns, sys.executable, PROBE, "once", str(timeout)] + targets,
            timeout=timeout + 20,
        )
        return json.loads(r.stdout)

    def probe(self, src_ns: str, targets: list[str], name: str) -> Probe:
        return Probe(self, src_ns, targets, name)

    def routes(self, where: str, *selector: str, family: int = 4) -> list[str]:
        r = run(["ip", "-n", self.ns(where), f"-{family}", "route", "show", *selector])
        return [ln for ln in r.stdout.splitlines() if ln.strip()]

    # --- teardown ----------------------------------------------------------------------

    def close(self) -> None:
        for p in self.probes:
            p.kill()
        for d in list(self.daemons.values()):
            with contextlib.suppress(Exception):
                d.stop(signal.SIGTERM, timeout=10)
        self.daemons.clear()
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()


def require_lab() -> None:
    if os.geteuid() != 0:
        skip_or_fail("the cluster lab needs root (network namespaces)")
    if shutil.which("ip") is None:
        skip_or_fail("the cluster lab needs iproute2's ip: apt-get install iproute2")
    if not os.access(BIRD2, os.X_OK):
        skip_or_fail("the cluster lab's ToRs run BIRD 2: apt-get install bird2")

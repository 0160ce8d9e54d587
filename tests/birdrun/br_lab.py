"""The bgpd-bird lab: the same Calico-shaped BIRD configuration run by BIRD 1.6.8 and by
``bgpd-bird``, each in network namespaces of its own with identical addressing and an
identical BIRD 2 peer, so that their control sockets can be compared reply by reply.

One side (:class:`Side`) is three namespaces:

* ``A`` (192.0.2.1 on ``brv0``): the daemon under test, started with ``-R`` on
  :data:`BIRD_CFG`; a ``cali`` veth pair holding a workload route (``/32 dev cali...``, as
  Felix makes them) and two more alien kernel routes;
* ``B`` (192.0.2.2): BIRD 2, an iBGP mesh peer with graceful restart, announcing three
  networks with AS paths, a MED, communities and a large community;
* ``C`` (192.0.2.7): nothing listens, so the protocol that peers with it is refused
  (``Active`` / ``Socket: Connection refused``).

The configuration also has a disabled protocol, a passive one whose peer never comes (it
holds BIRD's graceful-restart recovery until ``graceful restart wait``), static
blackholes and an unreachable route, Calico's kernel filter shape and its export filter.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BIRD2 = "/usr/sbin/bird"
BGPD_BIRD = str(Path(sys.executable).parent / "bgpd-bird")
BGPD_BIRD6 = str(Path(sys.executable).parent / "bgpd-bird6")
BGPD_BIRDCL = str(Path(sys.executable).parent / "bgpd-birdcl")

MESH = "Mesh_192_0_2_2"
REFUSED = "Mesh_192_0_2_7"
NODE = "Node_192_0_2_9"
PASSIVE = "Global_192_0_2_8"
PEERS = [MESH, REFUSED, NODE, PASSIVE]
GR_WAIT = 30  # graceful restart wait: the passive GR peer holds the recovery this long
# (long enough for both daemons to be up and captured on a busy machine)

BIRD_CFG = f"""\
# Calico-shaped (confd's bird.cfg, bird_aggr.cfg and bird_ipam.cfg in one file)
router id 192.0.2.1;
graceful restart wait {GR_WAIT};

protocol static {{
  route 10.65.0.0/26 blackhole;
  route 10.65.1.0/26 blackhole;
  route 10.99.0.0/24 unreachable;
}}

function calico_aggr ()
{{
  if ( net = 10.65.0.0/26 ) then {{ accept; }}
  if ( net ~ 10.65.0.0/26 ) then {{ reject; }}
  if ( net = 10.65.1.0/26 ) then {{ accept; }}
  if ( net ~ 10.65.1.0/26 ) then {{ reject; }}
}}

function reject_local_routes() {{
  if (net ~ 10.99.0.0/16) then {{ reject; }}
}}

function calico_export_to_bgp_peers(bool internal_peer) {{
  reject_local_routes();
  calico_aggr();
  if (net ~ 10.65.0.0/16) then {{ accept; }}
}}

filter calico_kernel_programming {{
  if ( net ~ 10.65.0.0/16 ) then {{ krt_metric = 512; accept; }}
  if ( net ~ 172.16.0.0/12 ) then {{ accept; }}
  reject;
}}

template kernel kernel_template {{
  learn;
  persist;
  scan time 2;
  import all;
}}

protocol kernel from kernel_template {{
  export filter calico_kernel_programming;
  graceful restart;
  merge paths on;
}}

protocol device {{
  debug {{ states }};
  scan time 2;
}}

protocol direct {{
  debug {{ states }};
  interface -"cali*", "*";
}}

template bgp bgp_template {{
  description "Connection to BGP peer";
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}

protocol bgp {MESH} from bgp_template {{
  neighbor 192.0.2.2 as 64512;
  source address 192.0.2.1;
  import filter {{
    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then
      preference = 200;
    accept;
  }};
  export filter {{
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {{
      krt_metric = 2147483647 - bgp_local_pref;
    }} else {{
      if (!defined(krt_metric)) then {{ krt_metric = 1024; }}
      bgp_local_pref = 2147483647 - krt_metric;
    }}
    calico_export_to_bgp_peers(true);
    reject;
  }};
}}

protocol bgp {REFUSED} from bgp_template {{
  neighbor 192.0.2.7 as 64512;
  source address 192.0.2.1;
  import all;
  export none;
}}

protocol bgp {NODE} from bgp_template {{
  neighbor 192.0.2.9 as 64512;
  disabled;
  import all;
  export none;
}}

protocol bgp {PASSIVE} from bgp_template {{
  description "Passive peer, never up";
  neighbor 192.0.2.8 as 65010;
  passive on;
  import all;
  export filter {{ calico_export_to_bgp_peers(false); reject; }};
}}
"""

BIRD2_CONF = """\
router id 192.0.2.2;
protocol device {}
protocol direct { ipv4; interface "brb0"; }
protocol static s4 {
  ipv4;
  route 172.16.1.0/24 unreachable;
  route 172.16.2.0/24 unreachable;
  route 172.16.3.0/24 unreachable;
}
protocol bgp up {
  local 192.0.2.2 as 64512;
  neighbor 192.0.2.1 as 64512;
  graceful restart on;
  ipv4 {
    import all;
    export filter {
      if source = RTS_DEVICE then reject;
      if net = 172.16.2.0/24 then {
        bgp_path.prepend(65002); bgp_path.prepend(65001);
        bgp_community.add((65001,42)); bgp_med = 7;
        bgp_large_community.add((64512, 1, 2));
      }
      if net = 172.16.3.0/24 then bgp_local_pref = 2147483000;
      accept;
    };
  };
}
"""

# alien kernel routes in A (Felix's workload route, a gateway route, a device route)
KERNEL_ROUTES = (
    ("10.65.0.5/32", ["dev", "cali1a2b3c"]),
    ("198.51.100.0/24", ["via", "192.0.2.2", "dev", "brv0"]),
    ("203.0.113.0/25", ["dev", "brv0"]),
)

CALICO_VERSION = "v0.3.3+birdv1.6.8"
ADDR4 = {"a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.7"}
ADDR6 = {"a": "2001:db8::1", "b": "2001:db8::2", "c": "2001:db8::7"}

# --- the bird6 lab: the same shape over IPv6 ------------------------------------------

MESH6 = "Mesh_2001_db8__2"
REFUSED6 = "Mesh_2001_db8__7"
KERNEL_ROUTES6 = (
    ("2001:db8:65::5/128", ["dev", "cali1a2b3c"]),
    ("2001:db8:100::/48", ["via", "2001:db8::2", "dev", "brv0"]),
    ("2001:db8:200::/64", ["dev", "brv0"]),
)
BIRD6_CFG = f"""\
router id 192.0.2.1;

protocol static {{
  route 2001:db8:65::/122 blackhole;
  route 2001:db8:99::/64 unreachable;
}}

function calico_aggr ()
{{
  if ( net = 2001:db8:65::/122 ) then {{ accept; }}
  if ( net ~ 2001:db8:65::/122 ) then {{ reject; }}
}}

function calico_export_to_bgp_peers(bool internal_peer) {{
  calico_aggr();
  if (net ~ 2001:db8:65::/48) then {{ accept; }}
}}

filter calico_kernel_programming {{
  if ( net ~ 2001:db8:65::/48 ) then {{ krt_metric = 512; accept; }}
  if ( net ~ 2001:db8:172::/48 ) then {{ accept; }}
  reject;
}}

protocol kernel {{
  learn;
  persist;
  scan time 2;
  import all;
  export filter calico_kernel_programming;
  graceful restart;
  merge paths on;
}}

protocol device {{
  scan time 2;
}}

protocol direct {{
  interface -"cali*", "*";
}}

template bgp bgp_template {{
  description "Connection to BGP peer";
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}

protocol bgp {MESH6} from bgp_template {{
  neighbor 2001:db8::2 as 64512;
  source address 2001:db8::1;
  import all;
  export filter {{ calico_export_to_bgp_peers(true); reject; }};
}}

protocol bgp {REFUSED6} from bgp_template {{
  neighbor 2001:db8::7 as 64512;
  source address 2001:db8::1;
  import all;
  export none;
}}
"""
BIRD2_CONF6 = """\
router id 192.0.2.2;
protocol device {}
protocol static s6 {
  ipv6;
  route 2001:db8:172:1::/64 unreachable;
  route 2001:db8:172:2::/64 unreachable;
}
protocol bgp up {
  local 2001:db8::2 as 64512;
  neighbor 2001:db8::1 as 64512;
  graceful restart on;
  ipv6 {
    import all;
    export filter {
      if net = 2001:db8:172:2::/64 then {
        bgp_path.prepend(65002); bgp_community.add((65001,42)); bgp_med = 7;
      }
      accept;
    };
  };
}
"""
READ_ONLY6 = [
    "show status",
    "show protocols",
    "show protocols all",
    f"show protocols all {MESH6}",
    "show route",
    "show route all",
    f"show route protocol {MESH6} all",
    "show route protocol kernel1 all",
    f"show route export {MESH6}",
    f"show route noexport {MESH6}",
    "show route export kernel1",
    "show route noexport kernel1",
    "show route 2001:db8:172:2::/64 all",
    "show route for 2001:db8:172:2::77",
    "show route for 2001:db8:65::5",
    "show route 2001:db8:1::/64",
    "show route where net ~ 2001:db8:65::/48",
    "show route where bgp_path ~ [= * 65002 =]",
    "show route count",
    "show route 10.0.0.0/8",
    "show memory",
    "configure check",
]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass
class Side:
    """The three namespaces of one daemon and their files."""

    tag: str
    dir: Path
    bird_cfg: str = BIRD_CFG  # what the daemon under test runs
    peer_conf: str = BIRD2_CONF  # BIRD 2's configuration in B
    b_addrs: tuple = ()  # more addresses of B (more peers), each /24 on its bridge
    v6: bool = False  # the bird6 lab: IPv6 addresses, bgpd-bird6 and bird6
    a: str = ""
    b: str = ""
    c: str = ""
    made: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    pid_files: list[Path] = field(default_factory=list)

    @property
    def sock(self) -> Path:
        return self.dir / "bird.ctl"

    @property
    def sock2(self) -> Path:
        return self.dir / "peer.ctl"

    @property
    def cfg(self) -> Path:
        return self.dir / ("bird6.cfg" if self.v6 else "bird.cfg")

    @property
    def log(self) -> Path:
        return self.dir / "daemon.log"

    def build(self) -> None:
        self.a, self.b, self.c = (f"br{self.tag}{x}" for x in "abc")
        for ns in (self.a, self.b, self.c):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.a, "link", "add", "brv0", "type", "veth", "peer", "name", "brb0")
        ip("-n", self.a, "link", "set", "brb0", "netns", self.b)
        ip("-n", self.b, "link", "add", "brb1", "type", "veth", "peer", "name", "brc0")
        ip("-n", self.b, "link", "set", "brc0", "netns", self.c)
        ip("-n", self.b, "link", "add", "brbr", "type", "bridge")
        for ifname in ("brb0", "brb1"):
            ip("-n", self.b, "link", "set", ifname, "master", "brbr")
            ip("-n", self.b, "link", "set", ifname, "up")
        v6 = self.v6
        plen = "64" if v6 else "24"
        if v6:  # no duplicate address detection: the addresses are usable at once
            for ns in (self.a, self.b, self.c):
                ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
                ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        addr = ADDR6 if v6 else ADDR4
        ip("-n", self.b, "addr", "add", f"{addr['b']}/{plen}", "dev", "brbr")
        for extra in self.b_addrs:
            ip("-n", self.b, "addr", "add", f"{extra}/{plen}", "dev", "brbr")
        ip("-n", self.b, "link", "set", "brbr", "up")
        ip("-n", self.a, "addr", "add", f"{addr['a']}/{plen}", "dev", "brv0")
        ip("-n", self.a, "link", "set", "brv0", "up")
        ip("-n", self.c, "addr", "add", f"{addr['c']}/{plen}", "dev", "brc0")
        ip("-n", self.c, "link", "set", "brc0", "up")
        ip("-n", self.a, "link", "add", "cali1a2b3c", "type", "veth", "peer", "name", "brw0")
        for ifname in ("cali1a2b3c", "brw0"):
            ip("-n", self.a, "link", "set", ifname, "up")
        for prefix, spec in KERNEL_ROUTES6 if v6 else KERNEL_ROUTES:
            ip("-n", self.a, "-6" if v6 else "-4", "route", "add", prefix, *spec)
        self.cfg.write_text(self.bird_cfg)
        (self.dir / "peer.conf").write_text(self.peer_conf.replace("brb0", "brbr"))

    def start_peer(self, name: str = "peer", conf: str | None = None) -> None:
        """BIRD 2 in B (``name.conf``, ``name.ctl``, ``name.pid``)."""
        if conf is not None:
            (self.dir / f"{name}.conf").write_text(conf)
        pid = self.dir / f"{name}.pid"
        argv = ["ip", "netns", "exec", self.b, BIRD2, "-c", f"{name}.conf"]
        argv += ["-s", f"{name}.ctl", "-P", f"{name}.pid"]
        subprocess.run(argv, cwd=self.dir, check=True, capture_output=True, timeout=20)
        self.pid_files.append(pid)

    def start_bird16(self, bird16: Path, restart: bool = True) -> None:
        pid = self.dir / "bird.pid"
        subprocess.run(
            ["ip", "netns", "exec", self.a, str(bird16 / ("bird6" if self.v6 else "bird"))]
            + (["-R"] if restart else [])
            + ["-c", self.cfg.name, "-s", "bird.ctl", "-P", "bird.pid"],
            cwd=self.dir,
            check=True,
            capture_output=True,
            timeout=20,
        )
        self.pid_files.append(pid)

    def start_bgpd(
        self, *args: str, env: dict | None = None, restart: bool = True
    ) -> subprocess.Popen:
        """``bgpd-bird [-R] -d -c bird.cfg -s bird.ctl`` in A (its pid is the daemon's:
        ``ip netns exec`` execs it)."""
        f = open(self.log, "a")  # noqa: SIM115 - closed with the process
        exe = BGPD_BIRD6 if self.v6 else BGPD_BIRD
        argv = ["ip", "netns", "exec", self.a, exe, *(["-R"] if restart else [])]
        argv += ["-d", "-c", self.cfg.name, "-s", "bird.ctl", *args]
        p = subprocess.Popen(
            argv,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env={**os.environ, **(env or {})},
        )
        f.close()
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for pid_file in self.pid_files:
            stop_pid_file(pid_file)
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()


def require_lab() -> None:
    """Skip (or fail under BGPD_REQUIRE_PEERS=1) without what the labs need."""
    from needs import skip_or_fail

    if os.geteuid() != 0:
        skip_or_fail("the bgpd-bird lab needs root (network namespaces)")
    if shutil.which("ip") is None:
        skip_or_fail("the bgpd-bird lab needs iproute2's ip: apt-get install iproute2")
    if not os.access(BIRD2, os.X_OK):
        skip_or_fail("BIRD 2 not found: apt-get install bird2")


def stop_pid_file(pid_file: Path) -> None:
    """SIGTERM a daemon by its pid file (bc_helpers.stop_pid_file: a zombie counts as gone)."""
    from bc_helpers import stop_pid_file as stop

    stop(pid_file)


def make_dir(prefix: str) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_dir(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)


# the commands both daemons answer in the differential tests
READ_ONLY = [
    "show status",
    "show protocols",
    "show protocols all",
    f"show protocols all {MESH}",
    f"show protocols {PASSIVE}",
    'show protocols "Mesh*"',
    'show protocols all "*1"',
    "show protocols nosuch",
    'show protocols "zz*"',
    "show route",
    "show route all",
    f"show route protocol {MESH}",
    f"show route protocol {MESH} all",
    "show route protocol kernel1 all",
    "show route protocol static1",
    "show route protocol direct1 all",
    f"show route export {MESH}",
    f"show route noexport {MESH}",
    f"show route preexport {MESH}",
    "show route export kernel1",
    "show route noexport kernel1",
    "show route export static1",
    f"show route export {PASSIVE}",
    f"show route export {NODE}",
    "show route 172.16.2.0/24 all",
    "show route for 172.16.2.77",
    "show route for 10.65.0.5",
    "show route 10.65.0.5/32 protocol kernel1",
    "show route 198.51.100.0/24 all",
    "show route 1.2.3.0/24",
    "show route 10.65.0.5/24",
    "show route protocol nosuch",
    "show route foo",
    "show route ex kernel1",
    "show route for bar",
    "show route where net ~ 10.0.0.0/8",
    "show route where bgp_path ~ [= * 65002 =]",
    "show route where bgp_community ~ [(65001,42)]",
    'show route where net.len = 32 || proto = "static1"',
    "show route where bgp_med > 5",
    "show route where source = RTS_STATIC && dest != RTD_BLACKHOLE",
    'show route where ifname = "brv0"',
    "show route where preference > 150",
    "show route count",
    "show route stats",
    f"show route export {MESH} count",
    "show route primary",
    "show route filtered",
    "show memory",
    "foo",
    "show",
    "configure check",
    'configure check "/nonexistent.cfg"',
    f"enable {MESH}",
    f"disable {NODE}",
    f"restart {NODE}",
    'enable "zz*"',
    "disable nosuch",
]

"""Demo: a route reflector and three node speakers.

Each node announces its pod block (a /26) to the reflector, the reflector reflects them, and
every node ends up with the other nodes' blocks. The demo prints what ``bgpd show`` says on
the reflector and on one node, then stops everything it started.

As root (with iproute2), every speaker runs in a network namespace of its own, joined by a
bridge, and the nodes install the other nodes' blocks into their kernel tables (shown with
``ip route``); the namespaces are removed at the end. Otherwise, or with ``--loopback``, the
speakers share the loopback interface and install nothing.

    make demo            # or: .venv/bin/python examples/demo.py [--loopback]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RR = "127.0.0.100"
NODES = ["127.0.0.101", "127.0.0.102", "127.0.0.103"]
ASN = 64512


def bgpd(*args: str, check: bool = True) -> str:
    cmd = [sys.executable, "-m", "bgpd.cli.main", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if check and out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


NETNS_PREFIX = f"bgpd-demo-{os.getpid()}-"
NS_ADDR = {"rr": "10.99.0.100", "node1": "10.99.0.1", "node2": "10.99.0.2", "node3": "10.99.0.3"}


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def make_namespaces() -> list[str]:
    """A bridge namespace and one namespace per speaker, each with a veth into the bridge."""
    made = []
    hub = NETNS_PREFIX + "hub"
    sh("ip", "netns", "add", hub)
    made.append(hub)
    sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", hub, "link", "set", "br0", "up")
    for i, (name, addr) in enumerate(NS_ADDR.items()):
        ns = NETNS_PREFIX + name
        sh("ip", "netns", "add", ns)
        made.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            f"bd{os.getpid() % 10000}x{i}",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            f"p{i}",
            "netns",
            hub,
        )
        sh("ip", "-n", ns, "link", "set", f"bd{os.getpid() % 10000}x{i}", "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", hub, "link", "set", f"p{i}", "master", "br0")
        sh("ip", "-n", hub, "link", "set", f"p{i}", "up")
    return made


def write_netns_configs(tmp: Path, port: int) -> dict[str, Path]:
    configs = {}
    rr_addr = NS_ADDR["rr"]
    nodes = [NS_ADDR[f"node{i}"] for i in (1, 2, 3)]
    rr = {
        "router_id": rr_addr,
        "asn": ASN,
        "cluster_id": rr_addr,
        "listen": [{"address": rr_addr, "port": port}],
        "control_socket": str(tmp / "rr.sock"),
        "neighbors": [
            {"address": n, "asn": ASN, "port": port, "rr_client": True, "passive": True}
            for n in nodes
        ],
    }
    configs["rr"] = tmp / "rr.yaml"
    configs["rr"].write_text(yaml.safe_dump(rr))
    for i, addr in enumerate(nodes, start=1):
        node = {
            "router_id": addr,
            "asn": ASN,
            "listen": [{"address": addr, "port": port}],
            "control_socket": str(tmp / f"node{i}.sock"),
            "kernel": {"persist": False},  # install learned blocks; remove them on exit
            "host_routes": {"static": [{"prefix": f"10.244.{i}.0/26", "blackhole": True}]},
            "policies": {
                "pods": {
                    "default": "reject",
                    "terms": [
                        {"match": {"source": ["static"], "prefix": ["10.244.0.0/16 ge 26 le 26"]}}
                    ],
                }
            },
            "neighbors": [
                {"address": rr_addr, "asn": ASN, "port": port, "connect_retry": 2, "export": "pods"}
            ],
        }
        configs[f"node{i}"] = tmp / f"node{i}.yaml"
        configs[f"node{i}"].write_text(yaml.safe_dump(node))
    return configs


def write_configs(tmp: Path, port: int) -> dict[str, Path]:
    configs = {}
    rr = {
        "router_id": "10.0.0.100",
        "asn": ASN,
        "cluster_id": "10.0.0.100",
        "listen": [{"address": RR, "port": port}],
        "control_socket": str(tmp / "rr.sock"),
        "neighbors": [
            {"address": n, "asn": ASN, "port": port, "rr_client": True, "passive": True}
            for n in NODES
        ],
    }
    configs["rr"] = tmp / "rr.yaml"
    configs["rr"].write_text(yaml.safe_dump(rr))
    for i, addr in enumerate(NODES, start=1):
        node = {
            "router_id": f"10.0.0.{i}",
            "asn": ASN,
            "listen": [{"address": addr, "port": port}],
            "control_socket": str(tmp / f"node{i}.sock"),
            "networks": [f"10.244.{i}.0/26", f"2001:db8:{i}::/64"],
            "neighbors": [{"address": RR, "asn": ASN, "port": port, "connect_retry": 2}],
        }
        configs[f"node{i}"] = tmp / f"node{i}.yaml"
        configs[f"node{i}"].write_text(yaml.safe_dump(node))
    return configs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=179, help="BGP port (default 179)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--loopback", action="store_true", help="no namespaces even as root")
    opts = ap.parse_args()
    netns = not opts.loopback and os.geteuid() == 0 and shutil.which("ip") is not None
    procs: list[subprocess.Popen] = []
    namespaces: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bgpd-demo-") as d:
        tmp = Path(d)
        try:
            if netns:
                namespaces = make_namespaces()
                configs = write_netns_configs(tmp, opts.port)
            else:
                configs = write_configs(tmp, opts.port)
            for name, cfg in configs.items():
                log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
                wrap = ["ip", "netns", "exec", NETNS_PREFIX + name] if netns else []
                procs.append(
                    subprocess.Popen(
                        [*wrap, sys.executable, "-m", "bgpd.cli.main", "run", "-c", str(cfg)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        start_new_session=True,
                    )
                )
            if netns:
                print("started a reflector and three nodes, each in a network namespace")
            else:
                print(f"started a reflector on {RR} and nodes on {', '.join(NODES)}")
            deadline = time.monotonic() + opts.timeout
            node1 = str(tmp / "node1.sock")
            while time.monotonic() < deadline:
                out = bgpd("show", "routes", "--family", "ipv4", "-s", node1, check=False)
                if all(f"10.244.{i}.0/26" in out for i in (2, 3)) and (
                    not netns or "10.244.2.0/26" in out
                ):
                    break
                time.sleep(0.5)
            else:
                print("did not converge in time; logs follow", file=sys.stderr)
                for name in configs:
                    print(f"--- {name}\n{(tmp / f'{name}.log').read_text()}", file=sys.stderr)
                return 1
            print("\n$ bgpd show summary            # on the reflector")
            print(bgpd("show", "summary", "-s", str(tmp / "rr.sock")))
            print("$ bgpd show neighbors          # on the reflector")
            print(bgpd("show", "neighbors", "-s", str(tmp / "rr.sock")))
            print("$ bgpd show routes             # on node 1")
            print(bgpd("show", "routes", "-s", node1))
            if netns:
                deadline = time.monotonic() + opts.timeout
                ns1 = NETNS_PREFIX + "node1"
                while time.monotonic() < deadline:
                    out = sh("ip", "-n", ns1, "route", "show", "proto", "bgp")
                    if out.count("10.244.") >= 2:
                        break
                    time.sleep(0.5)
                print("$ ip route                     # node 1's kernel table")
                print(sh("ip", "-n", ns1, "route"))
            return 0
        finally:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
            for ns in namespaces:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())

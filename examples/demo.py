"""Demo: a route reflector and three node speakers on loopback addresses.

Each node announces its pod block (a /26) to the reflector, the reflector reflects them, and
every node ends up with the other nodes' blocks. The demo prints what ``bgpd show`` says on
the reflector and on one node, then stops everything it started.

    make demo            # or: .venv/bin/python examples/demo.py
"""

import argparse
import os
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
    opts = ap.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bgpd-demo-") as d:
        tmp = Path(d)
        configs = write_configs(tmp, opts.port)
        try:
            for name, cfg in configs.items():
                log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bgpd.cli.main", "run", "-c", str(cfg)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        start_new_session=True,
                    )
                )
            print(f"started a reflector on {RR} and nodes on {', '.join(NODES)}")
            deadline = time.monotonic() + opts.timeout
            node1 = str(tmp / "node1.sock")
            while time.monotonic() < deadline:
                out = bgpd("show", "routes", "--family", "ipv4", "-s", node1, check=False)
                if all(f"10.244.{i}.0/26" in out for i in (2, 3)):
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


if __name__ == "__main__":
    sys.exit(main())

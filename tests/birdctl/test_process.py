"""``bgpd-bird`` / ``bgpd-bird6``: BIRD's option parser, the ``-p`` hook, and argv[0]."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bc_helpers import query, run_client, wait_for

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _env(**kw) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.update(kw)
    return env


def _ps_contains(proc: list[str], cmdline: list[str]) -> bool:
    """calicoctl's psContains for one process (gopsutil CmdlineSlice)."""
    return any(i < len(cmdline) and cmdline[i] == p for i, p in enumerate(proc))


@pytest.mark.parametrize(
    "script, name, sock", [("bgpd-bird", "bird", "bird.ctl"), ("bgpd-bird6", "bird6", "bird6.ctl")]
)
def test_argv0_is_bird_and_the_venv_still_works(tmp_path, script, name, sock):
    report = tmp_path / "report.json"
    path = tmp_path / sock
    cfg = tmp_path / "bird.cfg"
    cfg.write_text("router id 192.0.2.1;\n")
    p = subprocess.Popen(
        [str(BIN / script), "-R", "-s", str(path), "-d", "-c", str(cfg)],
        env=_env(BGPD_BIRD_RUNNER="bc_hooks:runner", BC_REPORT=str(report)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: path.exists() and report.exists(), 20, "the stand-in daemon's socket")
        raw = Path(f"/proc/{p.pid}/cmdline").read_bytes()
        args = raw[:-1].split(b"\0") if raw.endswith(b"\0") else raw.split(b"\0")
        assert args[0] == name.encode()
        assert [a for a in args if a][1:] == [
            b"-R",
            b"-s",
            str(path).encode(),
            b"-d",
            b"-c",
            str(cfg).encode(),
        ]
        cmd = [a.decode() for a in args]
        # calicoctl node status: psContains([]string{"bird"}) / {"bird6"}
        assert _ps_contains([name], cmd)
        assert not _ps_contains(["bird6" if name == "bird" else "bird"], cmd)
        assert Path(f"/proc/{p.pid}/comm").read_text().strip() == name
        rep = json.loads(report.read_text())
        assert rep["prefix"] == sys.prefix  # still the venv
        assert rep["options"]["graceful_restart"] and rep["options"]["debug"]
        assert rep["options"]["family"] == (6 if name == "bird6" else 4)
        # the liveness probe: birdcl -s SOCK show status exits 0 with stdout starting BIRD
        out = run_client([str(BIN / "bgpd-birdcl"), "-s", str(path), "show", "status"])
        assert out.returncode == 0 and out.stdout.startswith("BIRD")
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        assert not path.exists()  # removed at shutdown
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _compare_with_bird(bird16: Path, tmp_path: Path, args: list[str]):
    """Run BIRD 1.6.8 and bgpd-bird as ``./bird ARGS`` from two directories."""
    out = []
    for target in (bird16 / "bird", BIN / "bgpd-bird"):
        d = tmp_path / target.parent.name / target.name
        d.mkdir(parents=True)
        (d / "bird").symlink_to(target)
        r = subprocess.run(
            ["./bird", *args],
            cwd=d,
            capture_output=True,
            text=True,
            timeout=30,
            env=_env(BGPD_BIRD_CHECKER="bc_hooks:checker"),
        )
        out.append((r.returncode, r.stdout, r.stderr))
    return out


@pytest.mark.parametrize(
    "args",
    [
        ["-x"],
        ["-c"],
        ["-p", "-c", "bird.cfg", "extra"],
        ["-R", "-s"],
        ["-h"],
        ["--help"],
        ["-p", "-c", "/nonexistent.cfg"],
    ],
)
def test_option_errors_as_bird(bird16, tmp_path, args):
    theirs, mine = _compare_with_bird(bird16, tmp_path, args)
    if args == ["-p", "-c", "/nonexistent.cfg"]:
        assert theirs == mine
        return
    if args[0] in ("-h", "--help"):
        # identical but for the version-free help text's program name
        assert mine[0] == theirs[0] == 0 and mine[2] == theirs[2]
        return
    assert mine == theirs
    assert (
        theirs[0] == 1
        and "Usage: bird [--version] [--help] [-c <config-file>] [OPTIONS]" in theirs[2]
    )


def test_version():
    r = subprocess.run([str(BIN / "bgpd-bird"), "--version"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "BIRD version v0.3.3+birdv1.6.8\n")


def test_parse_only_calls_the_checker_and_starts_nothing(tmp_path):
    good = tmp_path / "good.cfg"
    good.write_text("router id 1.2.3.4;\n")
    bad = tmp_path / "bad.cfg"
    bad.write_text("router id 1.2.3.4;\nprotocol bad {}\n")
    sock = tmp_path / "never.ctl"
    env = _env(BGPD_BIRD_CHECKER="bc_hooks:checker", BGPD_BIRD_RUNNER="no.such:module")
    r = subprocess.run(
        [str(BIN / "bgpd-bird"), "-p", "-s", str(sock), "-c", str(good)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = subprocess.run(
        [str(BIN / "bgpd-bird6"), "-p", "-c", str(bad)], capture_output=True, text=True, env=env
    )
    assert (r.returncode, r.stderr) == (1, f"bird: {bad}:2:10 syntax error\n")
    assert not sock.exists()


def test_bird_parse_errors_have_the_same_form(bird16, tmp_path):
    """BIRD's own -p on a broken file: ``bird: file:line:col message`` on stderr, exit 1 —
    the form bgpd-bird prints from the parser's error."""
    bad = tmp_path / "bad.cfg"
    bad.write_text("router id 1.2.3.4;\nprotocol bad {}\n")
    r = subprocess.run([str(bird16 / "bird"), "-p", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr == f"bird: {bad}:2:10 syntax error\n"


def test_wired_daemon_reads_its_config_first(tmp_path):
    """The default runner is the daemon (bgpd.speaker.birdrun): without a configuration it
    stops as BIRD does, and touches no socket."""
    env = dict(os.environ)
    env.pop("BGPD_BIRD_RUNNER", None)
    missing = tmp_path / "none.conf"
    r = subprocess.run(
        [str(BIN / "bgpd-bird"), "-c", str(missing), "-s", str(tmp_path / "x.ctl")],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr == (
        f"bird: Unable to open configuration file {missing}: No such file or directory\n"
    )
    assert not (tmp_path / "x.ctl").exists()


def test_socket_in_use_is_refused(tmp_path):
    """BIRD's test_old_bird: a second daemon on the same socket path gives up."""
    from bgpd.birdctl.server import ControlSocketInUse

    report = tmp_path / "r.json"
    path = tmp_path / "bird.ctl"
    p = subprocess.Popen(
        [str(BIN / "bgpd-bird"), "-s", str(path)],
        env=_env(BGPD_BIRD_RUNNER="bc_hooks:runner", BC_REPORT=str(report)),
    )
    try:
        wait_for(path.exists, 20, "the socket")
        time.sleep(0.2)
        assert query(path, "show status")[1][-1] == "0013 Daemon is up and running"
        import asyncio

        from bgpd.birdctl.engine import BirdCli
        from bgpd.birdctl.server import BirdControlServer

        with pytest.raises(ControlSocketInUse, match="I found another BIRD running."):
            asyncio.run(BirdControlServer(str(path), BirdCli(lambda: None)).start())  # type: ignore[arg-type, return-value]
    finally:
        p.terminate()
        p.wait(10)

"""``bgpd-birdcl``: output and exit codes, side by side with the real light client
(Debian bird2's ``birdcl``) and BIRD 1.6.8's ``birdc`` on the same servers."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from bc_helpers import run_client
from needs import skip_or_fail

from bgpd.birdctl.snapshot import Protocol, Snapshot, Status

BGPD_BIRDCL = str(Path(sys.executable).parent / "bgpd-birdcl")
BIRDCL2 = "/usr/sbin/birdcl"
T = datetime(2026, 8, 22, 10, 0, 0)
SNAP = Snapshot(
    Status("10.192.0.2", T, T),
    (
        Protocol("static1", "Static", "up", T),
        Protocol("Mesh_10_192_0_3", "BGP", "up", T),
    ),
)


def _require(path: str) -> None:
    if not os.access(path, os.X_OK):
        skip_or_fail(f"{path} not installed (apt-get install bird2)")


def clients(bird16: Path) -> list[str]:
    _require(BIRDCL2)
    return [BIRDCL2, str(bird16 / "birdc"), BGPD_BIRDCL]


def test_cannot_connect(bird16, tmp_path):
    path = str(tmp_path / "none.ctl")
    results = [run_client([c, "-s", path, "show", "status"]) for c in clients(bird16)]
    for r in results:
        assert r.returncode == 1
        assert r.stdout == ""
        assert (
            r.stderr
            == f"Unable to connect to server control socket ({path}): No such file or directory\n"
        )


@pytest.mark.parametrize(
    "args",
    [
        ["show", "status"],
        ["-v", "show", "protocols"],
        ["sh", "pro", "all", "static1"],
        ["sh", "r"],  # ambiguous: exit 0, the expansions listed
        ["bogus", "command"],  # no such command: exit 0
        ["-r", "down"],  # restricted: 8007
        ["show", "protocols", "nosuch"],
    ],
)
def test_same_output_as_birdc_1_6_8(bird16, serve, args):
    path = serve(lambda: SNAP, clock=lambda: T)
    theirs = run_client([str(bird16 / "birdc"), "-s", path, *args])
    mine = run_client([BGPD_BIRDCL, "-s", path, *args])
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
    assert mine.returncode == 0 and "BIRD v0.3.3+birdv1.6.8 ready.\n" in mine.stdout


def test_stdin_mode_as_birdcl(serve):
    _require(BIRDCL2)
    import subprocess

    path = serve(lambda: SNAP, clock=lambda: T)
    script = "show status\nsh pro\n\nfoo\nquit\n"
    outs = [
        subprocess.run([c, "-s", path], input=script, capture_output=True, text=True, timeout=10)
        for c in (BIRDCL2, BGPD_BIRDCL)
    ]
    assert (outs[1].returncode, outs[1].stdout) == (outs[0].returncode, outs[0].stdout)
    assert "bird> show status\nBIRD v0.3.3+birdv1.6.8\nRouter ID is 10.192.0.2\n" in outs[1].stdout


class RawServer:
    """A socket that sends a fixed byte script, to show how clients treat odd lines."""

    def __init__(self, path: str, script: bytes, close: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.script = script
        self.close_after = close
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n")
                conn.recv(4096)
                conn.sendall(self.script)
                if not self.close_after:
                    conn.recv(4096)


@pytest.mark.parametrize(
    "script, close",
    [
        (b"1002-row\nnot a reply line\n0000\n0000 \n", False),  # ??? <...>, bare 0000 is not final
        (b"1002-row\n row two\n", True),  # server hangs up mid-reply
        (b"0013-zero\n 1\n0000 \n", False),
    ],
)
def test_odd_lines_and_early_close_as_birdcl(bird16, tmp_path, script, close):
    path = str(tmp_path / "raw.ctl")
    srv = RawServer(path, script, close)
    try:
        results = [run_client([c, "-s", path, "show", "status"]) for c in clients(bird16)]
    finally:
        srv.sock.close()
    ref = results[0]
    for r in results[1:]:
        assert (r.returncode, r.stdout, r.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    if close:
        assert ref.returncode == 1 and ref.stderr == "Connection closed by server\n"
    else:
        assert ref.returncode == 0
    if b"not a reply" in script:
        assert "??? <not a reply line>\n??? <0000>\n" in ref.stdout


def test_usage(bird16):
    _require(BIRDCL2)
    theirs = run_client([BIRDCL2, "-x"])
    mine = run_client([BGPD_BIRDCL, "-x"])
    assert mine.returncode == theirs.returncode == 1
    assert mine.stderr == theirs.stderr.replace(BIRDCL2, BGPD_BIRDCL)


class _GracefulHandler:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def configure(self, request):  # pragma: no cover - not called here
        raise AssertionError(request)

    def protocol_command(self, action, name, message):  # pragma: no cover
        raise AssertionError(action)

    def shutdown(self):
        self.calls.append("down")

    def graceful_restart(self):
        self.calls.append("graceful restart")


@pytest.mark.parametrize("args", [["graceful", "restart"], ["gr", "r"]])
def test_graceful_restart_passes_as_with_birdcl_2(bird16, serve, args):
    """``graceful restart`` (BIRD 2.0's command, which bgpd-bird runs): bgpd-birdcl expands
    and sends it as BIRD 2's birdcl does and prints the reply the same way; BIRD 1.6.8's
    birdc refuses it before sending anything ("No such command")."""
    _require(BIRDCL2)
    outputs = []
    for client in (BIRDCL2, BGPD_BIRDCL):
        h = _GracefulHandler()
        path = serve(lambda: SNAP, h, clock=lambda: T, name=f"gr{len(outputs)}.ctl")
        r = run_client([client, "-s", path, *args])
        outputs.append((r.returncode, r.stdout))
        deadline = time.monotonic() + 5  # called by the server once the reply has left
        while not h.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert h.calls == ["graceful restart"], client
    assert outputs[0] == outputs[1]
    assert outputs[1] == (0, "BIRD v0.3.3+birdv1.6.8 ready.\nGraceful restart requested\n")
    h = _GracefulHandler()
    path = serve(lambda: SNAP, h, clock=lambda: T, name="gr16.ctl")
    old = run_client([str(bird16 / "birdc"), "-s", path, *args])
    assert "No such command" in old.stdout and h.calls == []

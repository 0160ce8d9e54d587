"""``bgpd-birdcl``: a ``birdcl``-compatible client (client/client.c, client/birdcl.c).

Usage: ``birdcl [-s <control-socket>] [-v] [-r] [-l] [command...]``. The arguments after
the options are joined with spaces, expanded against BIRD's command table
(:mod:`.cmdtable`, abbreviations allowed) and sent once the server's greeting has arrived;
the client exits 0 after the reply's final line (error replies included). Without a
command it reads commands from stdin (``bird> `` prompts; a non-terminal stdin is echoed).

Each reply line is printed as birdcl prints it: code-0 lines are hidden, other ``DDDD``
lines lose their 5-character prefix, continuation lines their leading space (``-v`` prints
the codes instead), anything else is printed as ``??? <line>``. Exit 1 with ``Unable to
connect to server control socket (PATH): reason`` when the connection fails, ``Connection
closed by server`` when the server hangs up mid-reply, and the usage line on a bad option.

The default socket is Calico's: ``/var/run/calico/bird.ctl``, ``bird6.ctl`` for
``bgpd-birdcl6``.
"""

from __future__ import annotations

import getopt
import os
import socket
import sys

from .cmdtable import ExpandError, expand

DEFAULT_SOCKET = "/var/run/calico/bird.ctl"
DEFAULT_SOCKET6 = "/var/run/calico/bird6.ctl"
SERVER_READ_BUF_LEN = 4096


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class BirdClient:
    def __init__(self, path: str, verbose: int, restricted: bool, out, err, stdin) -> None:
        self.path = path
        self.verbose = verbose
        self.restricted = restricted
        self.out = out
        self.err = err
        self.stdin = stdin
        self.interactive = False
        self.busy = True  # executing a command (the greeting counts as one)
        self.init = True
        self.sock: socket.socket | None = None
        self.buf = b""

    # ------------------------------------------------------------------ output
    def _print(self, text: bytes) -> None:
        self.out.write(text + b"\n")
        self.out.flush()

    def got_reply(self, x: bytes) -> None:
        """server_got_reply."""
        if x[:1] == b"+":
            self._print(b">>> " + x[1:])
        elif x[:1] == b" ":
            self._print((b"     " if self.verbose else b"") + x[1:])
        elif len(x) > 4 and x[:4].isdigit() and x[4:5] in (b" ", b"-"):
            code = int(x[:4])
            if code:
                self._print(x if self.verbose else x[5:])
            if x[4:5] == b" ":
                self.busy = False
        else:
            self._print(b"??? <" + x + b">")

    # ------------------------------------------------------------------ I/O
    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            self.die(f"Unable to connect to server control socket ({self.path}): {e.strerror}")
        self.sock = s

    def die(self, msg: str) -> None:
        self.err.write(msg + "\n")
        self.err.flush()
        raise _Exit(1)

    def send(self, cmd: str) -> None:
        assert self.sock is not None
        self.busy = True
        self.sock.sendall(cmd.encode() + b"\n")

    def read_server(self) -> None:
        """server_read: one read, every complete line handled."""
        assert self.sock is not None
        try:
            data = self.sock.recv(SERVER_READ_BUF_LEN - len(self.buf))
        except OSError as e:
            self.die(f"Server read error: {e.strerror}")
        if not data:
            self.die("Connection closed by server")
        self.buf += data
        while (nl := self.buf.find(b"\n")) >= 0:
            line, self.buf = self.buf[:nl], self.buf[nl + 1 :]
            self.got_reply(line)
        if len(self.buf) >= SERVER_READ_BUF_LEN:
            self.buf = b"?<too-long>"

    def wait_reply(self) -> None:
        while self.busy:
            self.read_server()

    # ------------------------------------------------------------------ commands
    def submit(self, raw: str, once: bool) -> None:
        try:
            cmd = expand(raw)
        except ExpandError as e:
            self.out.write(str(e).encode() + b"\n")
            self.out.flush()
            if once:
                raise _Exit(0)
            return
        if not once and cmd.startswith(("exit", "quit")):
            raise _Exit(0)
        if not once and cmd.startswith("help"):
            self._print(b"Press `?' for context sensitive help.")
            return
        self.send(cmd)
        self.wait_reply()

    def run(self, command: str | None) -> int:
        try:
            self.connect()
            self.wait_reply()  # the greeting
            if self.restricted:
                self.send("restrict")
                self.wait_reply()
            if command is not None:
                self.submit(command, once=True)
                return 0
            self.interactive = self.stdin.isatty()
            while True:
                self.out.write(b"bird> ")
                self.out.flush()
                line = self.stdin.readline()
                if not line:
                    self.out.write(b"\n")
                    self.out.flush()
                    return 0
                line = line.rstrip("\n")
                if not self.interactive:
                    self._print(line.encode())
                if not line:
                    continue
                self.submit(line, once=False)
        except _Exit as e:
            return e.code
        finally:
            if self.sock is not None:
                self.sock.close()


def main(argv: list[str] | None = None, default_socket: str = DEFAULT_SOCKET) -> int:
    argv = sys.argv if argv is None else argv
    try:
        opts, args = getopt.gnu_getopt(argv[1:], "s:vrl")  # glibc getopt permutes
    except getopt.GetoptError as e:
        if "requires argument" in e.msg:
            sys.stderr.write(f"{argv[0]}: option requires an argument -- '{e.opt}'\n")
        else:
            sys.stderr.write(f"{argv[0]}: invalid option -- '{e.opt}'\n")
        sys.stderr.write(f"Usage: {argv[0]} [-s <control-socket>] [-v] [-r] [-l]\n")
        return 1
    path = default_socket
    verbose = 0
    restricted = False
    changed = False
    for o, v in opts:
        if o == "-s":
            path, changed = v, True
        elif o == "-v":
            verbose += 1
        elif o == "-r":
            restricted = True
        elif o == "-l" and not changed:
            path = os.path.basename(path)
    command = " ".join(args) if args else None
    client = BirdClient(path, verbose, restricted, sys.stdout.buffer, sys.stderr, sys.stdin)
    return client.run(command)


def main6(argv: list[str] | None = None) -> int:
    return main(argv, DEFAULT_SOCKET6)


def entry() -> None:
    sys.exit(main())


def entry6() -> None:
    sys.exit(main6())

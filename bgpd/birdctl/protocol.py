"""BIRD's CLI line protocol, server side, sans-I/O (nest/cli.c, sysdep/unix/main.c).

A connection is a Unix stream; both directions carry ``\\n``-terminated lines. The server
speaks first (the greeting ``0001 BIRD <version> ready.``), then answers one command line at
a time, in order. A reply is a run of lines ``DDDD-text`` (more follow), ending with one
``DDDD text`` line. A ``-`` line whose code equals the code of the line sent just before it
on this connection (even in the previous reply) is sent as `` text`` instead: BIRD keeps
that "last code" per connection. Table replies end with ``0000 `` (a trailing space).

:class:`CliConnection` holds one connection's state: feed it the bytes read
(:meth:`~CliConnection.receive_data`), take the commands out
(:meth:`~CliConnection.next_command`), hand it each reply (:meth:`~CliConnection.send_reply`)
and write :meth:`~CliConnection.data_to_send`. It does no I/O and runs no command.

Reply items are ``(code, text)`` pairs with BIRD's sign convention (``cli_msg``): a negative
code is a line that more lines follow, a non-negative one ends the reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from .snapshot import BIRD_VERSION

# nest/cli.h
CLI_LINE_SIZE = 512  # a reply line, prefix included, is at most 510 characters + "\n"
CLI_RX_BUF_SIZE = 4096  # a command line is at most 4093 characters (cli_get_command)
MAX_COMMAND = CLI_RX_BUF_SIZE - 3
OVERFLOW_CODE = 8000  # "<line overflow>" replaces a reply line that does not fit

Line = tuple[int, str]


@dataclass(frozen=True, slots=True)
class TooLong:
    """A command line longer than :data:`MAX_COMMAND`: answer ``9000 Command too long``."""


def greeting(version: str = BIRD_VERSION) -> Line:
    return (1, f"BIRD {version} ready.")


class CliConnection:
    """One control-socket connection: framing in, framing out, the last-code rule."""

    def __init__(self, version: str = BIRD_VERSION) -> None:
        self._rx = bytearray()  # bytes of the command line being received
        self._rx_overflow = False  # the line being received is already too long
        self._commands: list[str | TooLong] = []
        self._tx = bytearray()
        self.last_code = 0  # cli.last_reply
        self.send_reply([greeting(version)])

    # ---------------------------------------------------------------- input
    def receive_data(self, data: bytes) -> None:
        """Bytes read from the socket; complete lines become commands.

        As cli_get_command does, ``\\r`` is dropped anywhere, a line is cut at ``\\n``, and
        a line longer than :data:`MAX_COMMAND` becomes :class:`TooLong` (its bytes are
        dropped as they arrive, so a long line costs no memory).
        """
        start = 0
        while True:
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start:nl]
            if not self._rx_overflow:
                self._rx += chunk.replace(b"\r", b"")
                if len(self._rx) > MAX_COMMAND:
                    self._rx_overflow = True
                    self._rx.clear()
            if nl < 0:
                return
            if self._rx_overflow:
                self._commands.append(TooLong())
            else:
                self._commands.append(self._rx.decode("utf-8", "replace"))
            self._rx.clear()
            self._rx_overflow = False
            start = nl + 1

    def next_command(self) -> str | TooLong | None:
        """The next complete command line (without its newline), or None."""
        if self._commands:
            return self._commands.pop(0)
        return None

    @property
    def pending(self) -> int:
        return len(self._commands)

    # ---------------------------------------------------------------- output
    def send_reply(self, lines: list[Line]) -> None:
        """Queue a reply (see the module doc for the sign convention)."""
        for code, text in lines:
            self._tx += self.encode_line(code, text)

    def encode_line(self, code: int, text: str) -> bytes:
        """One line with BIRD's prefix (cli_printf), updating the last code."""
        if code < 0:
            cd = -code
            prefix = " " if cd == self.last_code else f"{cd:04d}-"
        else:
            cd = code
            prefix = f"{cd:04d} "
        self.last_code = cd
        raw = (prefix + text).encode("utf-8", "replace")
        if len(raw) > CLI_LINE_SIZE - 2:
            # bvsnprintf ran out of the 512-byte buffer: BIRD sends this instead
            return self.encode_line(
                -OVERFLOW_CODE if code < 0 else OVERFLOW_CODE, "<line overflow>"
            )
        return raw + b"\n"

    def data_to_send(self) -> bytes:
        out = bytes(self._tx)
        self._tx.clear()
        return out

"""One listening socket per configured address.

Connections from addresses that are not configured neighbors are closed at once, before any
per-peer state exists. TCP MD5 keys are installed on the listening socket per neighbor, so the
kernel checks signatures from the SYN on.
"""

import asyncio
import contextlib
import socket
from collections.abc import Callable

import structlog

from . import tcp

log = structlog.get_logger("bgpd.session")


class Listener:
    """Accepts BGP connections on ``address:port`` and hands them to ``lookup(addr)``.

    ``lookup(remote_address)`` returns an object with ``accept(sock) -> bool`` or None.
    """

    def __init__(
        self,
        address: str,
        port: int,
        lookup: Callable[[str], object],
        loop: asyncio.AbstractEventLoop | None = None,
        backlog: int = 1024,
    ) -> None:
        self.address = address
        self.port = port
        self.lookup = lookup
        self.loop = loop or asyncio.get_event_loop()
        self.backlog = backlog
        self.sock: socket.socket | None = None
        self.md5: dict[str, str] = {}
        self.md5_ranges: dict[str, str] = {}  # "prefix/len" -> key (TCP_MD5SIG_EXT)
        self.refused = 0
        self.accepted = 0

    def start(self) -> None:
        fam = tcp.family_of(self.address)
        sock = socket.socket(fam, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((self.address, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        for addr, key in self.md5.items():
            tcp.set_md5(sock, addr, key)
        for prefix, key in self.md5_ranges.items():
            net, plen = prefix.split("/")
            tcp.set_md5(sock, net, key, int(plen))
        self.loop.add_reader(sock.fileno(), self._on_readable)
        log.info("listening", address=self.address, port=self.port)

    def set_ttl(self, ttl: int) -> None:
        """TTL for SYN-ACKs (GTSM peers need 255 from the first segment)."""
        if self.sock is not None:
            tcp.set_ttl(self.sock, ttl)

    def set_md5(self, address: str, key: str | None) -> None:
        if key:
            self.md5[address] = key
        else:
            self.md5.pop(address, None)
        if self.sock is not None:
            tcp.set_md5(self.sock, address, key or "")

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(64):  # bounded per wake-up so one busy listener cannot starve the loop
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("accept failed", address=self.address, error=str(e))
                return
            remote = addr[0]
            if remote.startswith("::ffff:") and "." in remote:
                remote = remote[7:]
            peer = self.lookup(remote)
            ok = False
            if peer is not None:
                try:
                    ok = peer.accept(conn)
                except Exception:
                    log.exception("accept handler failed", peer=remote)
                    ok = False
            if ok:
                self.accepted += 1
            else:
                self.refused += 1
                with contextlib.suppress(OSError):
                    conn.close()
                if peer is None:
                    log.debug("refused connection", peer=remote, reason="not a configured neighbor")

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

"""Idle sessions: CPU and memory of a route reflector holding N idle iBGP sessions.

One reflector R (bgpd, or BIRD 2 for comparison, one after the other in the same run) on its
own ``127.78.K.1:179`` (K picked per run so that sockets left in TIME_WAIT never matter),
passive, every neighbor an iBGP route-reflection client in AS 64512, hold time 30 s,
keepalive 10 s, IPv4 unicast. The N clients (default 1,000) are minimal BGP speakers, all in
ONE extra process (fork, ``selectors``/epoll, non-blocking plain sockets): client i binds
``127.79.B.H`` (B = 1 + i // 250, H = 1 + i % 250), connects to R, sends its OPEN (hold 30),
and once Established announces one prefix, ``10.0.0.0/26`` + i × 64 (next hop its own
address, LOCAL_PREF 100), then only sends a KEEPALIVE every 10 s and answers nothing else. It
reads everything R sends and keeps the set of prefixes it holds. ``bgpd.wire`` only encodes
the clients' OPEN, KEEPALIVE and UPDATE: nothing of bgpd's session or RIB code runs on the
client side. At most ``--concurrency`` (8) handshakes are in flight at once: BIRD listens
with a backlog of 8, and more connections at once overflow its accept queue (the kernel drops
the SYNs, or the handshake's last ACK, and the clients wait out TCP's back-off: with 50, BIRD
settled in ~30 s instead of ~8 s, five handshakes hanging for 30 s). The settle figures depend
on this arrival pattern, and the idle figures a little (when sessions come up together their
keepalives fall due together; see bench/README.md).

bgpd runs twice: ``bgpd`` with N explicit neighbors (``passive``, ``rr_client``) and
``bgpd-dynamic`` with one ``dynamic_neighbors`` range (127.79.0.0/16, limit N) and a
template (``asn: internal``, ``rr_client``), plus an explicit ``cluster_id``: bgpd derives
its default cluster ID from the explicit neighbors only, and without one it would reflect
nothing between dynamic neighbors. BIRD gets N ``protocol bgp`` blocks from a
template (``passive on``, ``rr client``, ``hold time 30``, ``keepalive time 10``, ``strict
bind``, next hops resolved through an ``igp table`` holding a blackhole default, as in
rr.py).

Phases of a run:
1. R starts; the benchmark waits until it listens (a LISTEN socket on R:179 in
   /proc/net/tcp), then one second more, and notes its RSS.
2. Settle: the clients connect. Each Established client's prefix is reflected to the others,
   so the initial load is N × (N - 1) routes (999,000 for 1,000 sessions, one UPDATE each as
   every prefix has its own next hop). Settled = all N sessions Established and every client
   holding exactly the N - 1 other prefixes. Reported: the time from the clients' start to
   that moment, when the last session came up, R's CPU seconds in between, and R's peak RSS.
3. ``--quiet`` (5) seconds of nothing, then the idle window of ``--window`` (60) seconds:
   R's CPU percent = (utime + stime delta) / wall from /proc/PID/stat (every thread), also
   per second; VmRSS at the end and VmHWM (peak since start) from /proc/PID/status; the client
   process's CPU the same way (to show it was not the bottleneck); and from the clients'
   side: KEEPALIVEs received and sent, UPDATEs received (none expected), session drops
   (NOTIFICATION, EOF, reset), and the longest silence of R on any session (a hold timer
   expiry on the clients' side would be > 30 s; R's keepalive interval is 10 s).
4. Optionally (``--profile DIR``) bgpd is then sampled by ``py-spy record`` (raw collapsed
   stacks, ``--idle``) for ``--profile-duration`` seconds, outside the measured window;
   with ``--profile-settle`` also during the settle phase (whose figures are then marked
   ``profiled``).
5. Checks: what R itself says (bgpd: ``show_summary``; BIRD: ``birdc show protocols``), and
   from the clients: every client holds exactly the N - 1 prefixes of the others (its own is
   never reflected back to it), and on sample UPDATEs ORIGINATOR_ID is the originating
   client, CLUSTER_LIST is R's cluster ID and NEXT_HOP is unchanged.

Run (root, ``bird`` on the PATH)::

    .venv/bin/python bench/sessions.py      # 1,000 sessions, 60 s: bgpd, bgpd-dynamic, bird
    .venv/bin/python bench/sessions.py --sessions 1000 --window 60 --impl bgpd,bird
    .venv/bin/python bench/sessions.py --impl bgpd --profile /tmp/sessprof

The machine has 2 cores: R, the clients and this process share them, which is why
implementations run one at a time. Every process is stopped by the PID started here
(SIGTERM, then SIGKILL), also on error, timeout, Ctrl-C or SIGTERM. Results go to
``bench/results/sessions-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import farm  # noqa: E402  (the clients' selector loop: sockets, framing, keepalives)
import rr  # noqa: E402  (Daemon base classes, /proc readers, py-spy wrapper, profile summary)
from farm import (  # noqa: E402
    CONNECTING,
    ESTABLISHED,
    KEEPALIVE_MSG,
    OPENCONFIRM,
    OPENSENT,
    STATE_NAMES,
)

from bgpd.wire import AttrSet, Context, Open, pack_announce  # noqa: E402
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST  # noqa: E402

ASN = 64512
HOLD_TIME = 30
KEEPALIVE_EVERY = 10
IMPLS = ("bgpd", "bgpd-dynamic", "bird")
BASELINE = "bird"
PER_BLOCK = 250  # client addresses per /24: 127.79.B.1 .. 127.79.B.250
MAX_SESSIONS = PER_BLOCK * 254
CLIENT_RANGE = "127.79.0.0/16"
PREFIX_BASE = 10 << 24  # client i announces 10.0.0.0/26 + i * 64
PREFIX_LEN = 26
RECONNECT_AFTER = 2.0  # seconds between a session's drop and the client's next attempt
RSS_TARGET = 100 * 2**20
SAMPLE_UPDATES = 4  # UPDATEs kept by a few clients for the attribute checks


def client_address(i: int) -> str:
    return f"127.79.{1 + i // PER_BLOCK}.{1 + i % PER_BLOCK}"


def client_prefix(i: int) -> bytes:
    """Client i's NLRI, as on the wire: the length octet and four address octets."""
    return bytes((PREFIX_LEN,)) + (PREFIX_BASE + (i << 6)).to_bytes(4, "big")


def prefix_str(key: bytes) -> str:
    return f"{'.'.join(str(x) for x in key[1:])}/{key[0]}"


def prefix_index(key: bytes) -> int | None:
    """The client whose prefix ``key`` is (None: no client's)."""
    if len(key) != 5 or key[0] != PREFIX_LEN:
        return None
    v = int.from_bytes(key[1:], "big") - PREFIX_BASE
    if v < 0 or v & 63:
        return None
    return v >> 6


# --- the client process -----------------------------------------------------------------------


class Held:
    """The prefixes a client holds: one bit per client's prefix (n bits, so that 5,000
    clients holding 4,999 prefixes each cost 3 MB, not gigabytes of sets) and any other
    prefix (there should be none) in a set."""

    __slots__ = ("bits", "count", "other")

    def __init__(self, n: int) -> None:
        self.bits = bytearray((n + 7) // 8)
        self.count = 0
        self.other: set = set()

    def __len__(self) -> int:
        return self.count + len(self.other)

    def add(self, idx: int | None, key: bytes) -> None:
        if idx is None or not 0 <= idx < len(self.bits) * 8:
            self.other.add(key)
            return
        byte, bit = idx >> 3, 1 << (idx & 7)
        if not self.bits[byte] & bit:
            self.bits[byte] |= bit
            self.count += 1

    def discard(self, idx: int | None, key: bytes) -> None:
        if idx is None or not 0 <= idx < len(self.bits) * 8:
            self.other.discard(key)
            return
        byte, bit = idx >> 3, 1 << (idx & 7)
        if self.bits[byte] & bit:
            self.bits[byte] &= ~bit & 0xFF
            self.count -= 1

    def has(self, idx: int) -> bool:
        return bool(self.bits[idx >> 3] & (1 << (idx & 7)))


class Client(farm.Speaker):
    """One minimal BGP speaker: its socket, buffers and what it holds."""

    __slots__ = (
        "addr",
        "own",
        "open_msg",
        "update_msg",
        "held",
        "announced",
        "withdrawn",
        "updates",
        "own_seen",
        "eor",
        "hs_deadline",
        "samples",
        "r_hold",
    )

    def __init__(self, i: int, keep_samples: bool, n: int) -> None:
        super().__init__(i, KEEPALIVE_EVERY)
        self.addr = client_address(i)
        self.own = client_prefix(i)
        caps = (Multiprotocol(1, 1), FourOctetAS(ASN))
        self.open_msg = Open(
            asn=ASN, hold_time=HOLD_TIME, router_id=self.addr, capabilities=caps
        ).encode()
        attrs = AttrSet(
            origin=0,
            as_path=(),
            next_hop=socket.inet_aton(self.addr),
            local_pref=100,
        )
        (self.update_msg,) = pack_announce(
            IPV4_UNICAST, attrs, [self.own], Context(as4=True, ibgp=True)
        )
        self.held = Held(n)
        self.announced = 0  # prefixes announced to us, duplicates included
        self.withdrawn = 0
        self.updates = 0
        self.own_seen = 0  # our own prefix reflected back to us (must stay 0)
        self.eor = 0
        self.hs_deadline = 0.0
        self.samples: list[tuple[bytes, bytes]] | None = [] if keep_samples else None
        self.r_hold = None


class Fleet(farm.Farm):
    """Every client, served by one selector loop; talks to the parent over ``conn``."""

    def __init__(
        self, conn, remote: str, n: int, concurrency: int, hs_timeout: float, announce=True
    ) -> None:
        super().__init__()
        self.conn = conn
        self.announce = announce  # each client announces its prefix once Established
        self.expect = n - 1 if announce else 0  # prefixes each client must end up holding
        self.remote = remote
        self.n = n
        self.concurrency = concurrency
        self.hs_timeout = hs_timeout
        sample_every = max(1, n // 4)
        self.clients = [Client(i, i % sample_every == 0, n) for i in range(n)]
        self.speakers = self.clients
        self.todo: deque[int] = deque(range(n))
        self.retry: list[tuple[float, int]] = []
        self.in_handshake = 0
        self.drops: list[dict] = []  # every session that went down, or failed to come up
        self.attempts = 0
        self.t_start = time.monotonic()
        self.t_first_established: float | None = None
        self.t_all_established: float | None = None
        self.t_settled: float | None = None
        self.r_router_id: str | None = None

    # --- sockets

    def connect(self, c: Client, now: float) -> None:
        self.attempts += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.bind((c.addr, 0))
            err = s.connect_ex((self.remote, 179))
        except OSError as e:
            s.close()
            self._failed(c, now, f"connect: {e}")
            return
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self._failed(c, now, f"connect: {os.strerror(err)}")
            return
        c.sock = s
        c.state = CONNECTING
        c.hs_deadline = now + self.hs_timeout
        self.in_handshake += 1
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def _failed(self, c: Client, now: float, reason: str) -> None:
        self.drops.append({"client": c.i, "t": now - self.t_start, "state": "idle", "why": reason})
        heapq.heappush(self.retry, (now + RECONNECT_AFTER, c.i))

    def writable(self, c: Client, now: float) -> None:
        s = c.sock
        if c.state == CONNECTING:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.drop(c, now, f"connect: {os.strerror(err)}")
                return
            c.state = OPENSENT
            c.last_rx = now
            self.sel.modify(s, selectors.EVENT_READ, c)
            self.send(c, c.open_msg, now)
            return
        self.flush(c, now)

    def drop(self, c: Client, now: float, reason: str) -> None:
        """The session (or the attempt) is over: close, forget what it held, retry later."""
        was = c.state
        if was in (CONNECTING, OPENSENT, OPENCONFIRM):
            self.in_handshake -= 1
        self.drops.append(
            {"client": c.i, "t": now - self.t_start, "state": STATE_NAMES[was], "why": reason}
        )
        if self.window is not None:
            self.window["drops"] += 1
        self.release(c)
        c.held = Held(self.n)
        heapq.heappush(self.retry, (now + RECONNECT_AFTER, c.i))

    def on_open(self, c: Client, body: bytes, now: float) -> None:
        c.state = OPENCONFIRM
        c.r_hold = (body[3] << 8) | body[4]
        if self.r_router_id is None:
            self.r_router_id = ".".join(str(x) for x in body[5:9])
        self.send(c, KEEPALIVE_MSG, now)

    def on_established(self, c: Client, now: float) -> None:
        c.state = ESTABLISHED
        c.sessions += 1
        self.in_handshake -= 1
        self.established += 1
        if self.t_first_established is None:
            self.t_first_established = now
        if self.established == self.n and self.t_all_established is None:
            self.t_all_established = now
        if self.announce:
            self.send(c, c.update_msg, now)
        else:
            c.full = True  # nothing to receive
            self.full += 1
        self.schedule_keepalives(c, now)

    def on_update(self, c: Client, buf: bytearray, s: int, e: int) -> None:
        c.updates += 1
        if self.window is not None:
            self.window["updates"] += 1
        wl = (buf[s] << 8) | buf[s + 1]
        p = s + 2
        held = c.held
        if wl:
            stop = p + wl
            while p < stop:
                size = 1 + (buf[p] + 7) // 8
                key = bytes(buf[p : p + size])
                held.discard(prefix_index(key), key)
                c.withdrawn += 1
                p += size
        al = (buf[p] << 8) | buf[p + 1]
        a0 = p + 2
        p = a0 + al
        if not wl and not al and p == e:
            c.eor += 1
            return
        if c.samples is not None and len(c.samples) < SAMPLE_UPDATES and p < e:
            c.samples.append((bytes(buf[a0:p]), bytes(buf[p:e])))
        own = c.own
        while p < e:
            size = 1 + (buf[p] + 7) // 8
            key = bytes(buf[p : p + size])
            if key == own:
                c.own_seen += 1
            else:
                held.add(prefix_index(key), key)
            c.announced += 1
            p += size
        full = len(held) >= self.expect
        if full != c.full:
            c.full = full
            self.full += 1 if full else -1

    # --- timers

    def handshake_timeouts(self, now: float) -> None:
        if not self.in_handshake:
            return
        for c in self.clients:
            if c.state in (CONNECTING, OPENSENT, OPENCONFIRM) and now > c.hs_deadline:
                self.drop(c, now, f"handshake timeout in {STATE_NAMES[c.state]}")

    # --- reports

    def progress(self, now: float) -> dict:
        return {
            "t": now - self.t_start,
            "established": self.established,
            "full": self.full,
            "in_handshake": self.in_handshake,
            "waiting": len(self.todo) + len(self.retry),
            "drops": len(self.drops),
            "attempts": self.attempts,
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
        }

    def settle_report(self) -> dict:
        t0 = self.t_start
        return {
            "t_start": t0,
            "t_settled": self.t_settled,
            "settle_s": self.t_settled - t0,
            "first_established_s": self.t_first_established - t0,
            "all_established_s": self.t_all_established - t0,
            "attempts": self.attempts,
            "drops": list(self.drops),
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "cpu_s": time.process_time(),
            "r_router_id": self.r_router_id,
            "r_hold_time": sorted({c.r_hold for c in self.clients}),
        }

    def window_start(self, now: float) -> None:
        self.open_window(now, drops_before=len(self.drops))

    def window_end(self, now: float) -> dict:
        w = self.window or {}
        self.window = None
        gaps = self.silences(now)
        return {
            "wall_s": now - w.get("t0", now),
            "keepalives_received": w.get("ka_rx", 0),
            "keepalives_sent": w.get("ka_tx", 0),
            "updates_received": w.get("updates", 0),
            "drops": w.get("drops", 0),
            "drop_events": self.drops[w.get("drops_before", 0) :][:50],
            "established_at_end": self.established,
            "full_at_end": self.full,
            "max_silence_s": gaps[-1] if gaps else None,
            "median_max_silence_s": statistics.median(gaps) if gaps else None,
        }

    def final_check(self) -> dict:
        """Every client holds exactly the others' prefixes; sample attributes are reflected."""
        n = self.n
        wrong = []
        own_back = 0
        announced = withdrawn = 0
        for c in self.clients:
            announced += c.announced
            withdrawn += c.withdrawn
            own_back += c.own_seen
            extra = c.held.other
            if len(c.held) != self.expect or extra or c.held.has(c.i):
                wrong.append(
                    {
                        "client": c.i,
                        "held": len(c.held),
                        "extra": [prefix_str(k) for k in list(extra)[:3]],
                        "state": STATE_NAMES[c.state],
                    }
                )
        problems = []
        checked = 0
        for c in self.clients:
            for attrs, nlri in c.samples or ():
                checked += 1
                d = rr.describe_attrs(attrs)
                idx = prefix_index(nlri[:5])
                if idx is None or not 0 <= idx < n:
                    problems.append(f"client {c.i}: unexpected NLRI {nlri.hex()}")
                    continue
                origin = client_address(idx)
                if d.get("originator_id") != origin:
                    problems.append(f"client {c.i}: ORIGINATOR_ID {d.get('originator_id')}")
                if d.get("cluster_list") != [self.r_router_id]:
                    problems.append(f"client {c.i}: CLUSTER_LIST {d.get('cluster_list')}")
                if d.get("next_hop") != origin:
                    problems.append(f"client {c.i}: NEXT_HOP {d.get('next_hop')} != {origin}")
                if d.get("local_pref") != 100:
                    problems.append(f"client {c.i}: LOCAL_PREF {d.get('local_pref')}")
        ok = not wrong and not own_back and not problems
        return {
            "ok": ok,
            "clients_wrong": len(wrong),
            "wrong_sample": wrong[:5],
            "own_prefix_reflected": own_back,
            "announced_total": announced,
            # Announcements of a prefix the client already held (re-sent, same or new path).
            "duplicates": announced - own_back - withdrawn - sum(len(c.held) for c in self.clients),
            "withdrawn_total": withdrawn,
            "expected_total": n * self.expect,
            "samples_checked": checked,
            "sample_problems": problems[:10],
            "sessions_per_client_max": max(c.sessions for c in self.clients),
            "established": self.established,
        }

    # --- the loop

    def command(self, now: float) -> bool:
        """A command from the parent; False when it is time to go."""
        try:
            cmd = self.conn.recv()
        except EOFError:
            return False
        if cmd == "window_start":
            self.window_start(now)
            self.conn.send(("window_started", now))
        elif cmd == "window_end":
            self.conn.send(("window", self.window_end(now)))
        elif cmd == "finish":
            self.conn.send(("result", self.final_check()))
            return False
        return True

    def run(self) -> None:
        self.sel.register(self.conn, selectors.EVENT_READ, None)
        next_tick = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            while self.todo and self.in_handshake < self.concurrency:
                self.connect(self.clients[self.todo.popleft()], now)
            timeout = next_tick - now
            if self.ka:
                timeout = min(timeout, self.ka[0][0] - now)
            if self.retry:
                timeout = min(timeout, self.retry[0][0] - now)
            for key, events in self.sel.select(max(0.0, timeout)):
                c = key.data
                now = time.monotonic()
                if c is None:
                    if not self.command(now):
                        return
                    continue
                if key.fileobj is not c.sock:
                    continue  # dropped earlier in this batch
                if events & selectors.EVENT_WRITE:
                    self.writable(c, now)
                if events & selectors.EVENT_READ and c.sock is key.fileobj:
                    self.readable(c, now)
            now = time.monotonic()
            self.keepalives(now)
            while self.retry and self.retry[0][0] <= now:
                self.todo.append(heapq.heappop(self.retry)[1])
            if self.t_settled is None and self.established == self.n and self.full == self.n:
                self.t_settled = now
                self.conn.send(("settled", self.settle_report()))
            if now >= next_tick:
                next_tick = now + 1.0
                self.handshake_timeouts(now)
                if self.window is None:
                    self.conn.send(("progress", self.progress(now)))

    def close(self) -> None:
        for c in self.clients:
            if c.sock is not None:
                c.sock.close()
                c.sock = None


def clients_main(
    conn, remote: str, n: int, concurrency: int, hs_timeout: float, announce: bool = True
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    fleet = None
    try:
        fleet = Fleet(conn, remote, n, concurrency, hs_timeout, announce)
        fleet.run()
    except Exception as e:  # noqa: BLE001 - reported to the parent
        import traceback

        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        if fleet is not None:
            fleet.close()


# --- the reflectors -------------------------------------------------------------------------


class Setup:
    """R's address and the clients' for one run."""

    def __init__(self, k: int, n: int) -> None:
        self.r = f"127.78.{k}.1"
        self.clients = [client_address(i) for i in range(n)]
        self.range = CLIENT_RANGE


_next_block = [int(time.time()) % 200 + 1]


def free_reflector(n: int) -> Setup:
    """A ``127.78.K.1`` with nothing on port 179, not even a TIME_WAIT socket."""
    for _ in range(250):
        k = _next_block[0]
        _next_block[0] = k % 250 + 1
        with socket.socket() as s:
            try:
                s.bind((f"127.78.{k}.1", 179))
            except OSError:
                continue
        return Setup(k, n)
    raise RuntimeError("no free 127.78.K.1:179")


class BgpdReflector(rr.BgpdDaemon):
    kind = "bgpd"
    dynamic = False

    def write_config(self) -> None:
        a = self.addrs
        lines = [
            f"router_id: {a.r}",
            f"asn: {ASN}",
            f"listen: [{{address: {a.r}, port: 179}}]",
            f"control_socket: {self.socket_path}",
            f"hold_time: {HOLD_TIME}",
            f"keepalive: {KEEPALIVE_EVERY}",
        ]
        if self.dynamic:
            lines += [
                # bgpd derives the default cluster ID (its router ID) from the explicit
                # neighbors only: with every client dynamic it would not reflect at all.
                f"cluster_id: {a.r}",
                "templates:",
                "  rr-clients:",
                "    asn: internal",
                "    rr_client: true",
                "    families: [ipv4]",
                "dynamic_neighbors:",
                f"  - {{range: {a.range}, template: rr-clients, limit: {len(a.clients)}}}",
            ]
        else:
            lines.append("neighbors:")
            lines += [
                f"  - {{address: {nb}, asn: {ASN}, passive: true, rr_client: true, "
                "families: [ipv4]}"
                for nb in a.clients
            ]
        (self.workdir / "bgpd.yaml").write_text("\n".join(lines) + "\n")

    def established(self) -> dict:
        from bgpd.api.client import request

        try:
            s = request(str(self.socket_path), "show_summary", timeout=30)
        except Exception as e:  # noqa: BLE001 - a report only
            return {"error": f"{type(e).__name__}: {e}"}
        return {"summary": s}


class BgpdDynamicReflector(BgpdReflector):
    kind = "bgpd-dynamic"
    dynamic = True


class BirdReflector(rr.BirdDaemon):
    kind = "bird"

    def write_config(self) -> None:
        a = self.addrs
        lines = [
            f'log "{self.workdir / "bird.log"}" {{ warning, error, fatal, bug }};',
            f"router id {a.r};",
            "protocol device {}",
            "ipv4 table igp4;",
            "protocol static resolve4 { ipv4 { table igp4; }; route 0.0.0.0/0 blackhole; }",
            "template bgp rrc {",
            f"  local {a.r} port 179 as {ASN};",
            "  strict bind yes;",
            "  passive on;",
            f"  hold time {HOLD_TIME};",
            f"  keepalive time {KEEPALIVE_EVERY};",
            "  rr client;",
            f"  rr cluster id {a.r};",
            "  ipv4 { import all; export all; igp table igp4; gateway recursive; };",
            "}",
        ]
        for nb in a.clients:
            name = "n_" + nb.replace(".", "_")
            lines.append(f"protocol bgp {name} from rrc {{ neighbor {nb} port 179 as {ASN}; }}")
        (self.workdir / "bird.conf").write_text("\n".join(lines) + "\n")

    def established(self) -> dict:
        try:
            r = subprocess.run(
                ["birdc", "-s", str(self.workdir / "bird.ctl"), "show", "protocols"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return {"error": str(e)}
        lines = [x for x in r.stdout.splitlines() if x.startswith("n_")]
        return {
            "bgp_protocols": len(lines),
            "established": sum(1 for x in lines if "Established" in x),
        }


DAEMONS = {"bgpd": BgpdReflector, "bgpd-dynamic": BgpdDynamicReflector, "bird": BirdReflector}


# --- /proc ----------------------------------------------------------------------------------


def listening(address: str, port: int = 179) -> bool:
    """Whether a TCP socket listens on ``address:port`` (from /proc/net/tcp)."""
    # /proc/net/tcp prints the big-endian address as a host-order integer.
    want = f"{struct.unpack('=I', socket.inet_aton(address))[0]:08X}:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return True
    return False


def listen_overflows() -> int | None:
    """The host's TcpExt ListenOverflows counter (connections dropped by full accept queues;
    system-wide, so other programs' drops count too)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            table = dict(zip(head.split()[1:], values.split()[1:], strict=False))
            v = table.get("ListenOverflows")
            return int(v) if v is not None else None
    return None


class Sampler:
    """CPU seconds of R and of the client process, sampled once per second."""

    def __init__(self, r_pid: int, c_pid: int) -> None:
        self.r_pid = r_pid
        self.c_pid = c_pid

    def read(self) -> tuple[float, float, float]:
        return time.monotonic(), rr.proc_cpu(self.r_pid), rr.proc_cpu(self.c_pid)


# --- one run --------------------------------------------------------------------------------


class RunError(Exception):
    pass


def _recv(conn, want: str, timeout: float, on_progress=None):
    """The next message of kind ``want`` from the clients (progress messages are passed on)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not conn.poll(left):
            raise RunError(f"the clients did not send {want!r} within {timeout:.0f} s")
        msg = conn.recv()
        if msg[0] == want:
            return msg[1]
        if msg[0] == "error":
            raise RunError(f"clients: {msg[1]}")
        if msg[0] == "progress" and on_progress is not None:
            on_progress(msg[1])


def _profile_summary(path: Path) -> dict:
    """rr.summarize_profile with the phases of an idle reflector."""
    saved = rr.PHASES
    rr.PHASES = PHASES
    try:
        return rr.summarize_profile(path, top=20)
    finally:
        rr.PHASES = saved


#: Phases of an idle reflector's work, by a frame on the stack (first match from the top).
PHASES = (
    ("timers: PeerSession._on_timer (keepalive send, hold check)", "PeerSession._on_timer ("),
    ("reads: a KEEPALIVE in (Protocol.receive_data)", "Protocol.receive_data ("),
    ("reads: the transport (_read_ready)", "_SelectorSocketTransport._read_ready"),
    ("writes: the transport", "_SelectorSocketTransport.write"),
    ("export: Speaker._drain", "Speaker._drain ("),
    ("garbage collection", "gc_collect"),
    ("event loop: _run_once itself", "BaseEventLoop._run_once ("),
)


def run_once(impl: str, args) -> dict:
    n = args.sessions
    setup = free_reflector(n)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-sessions-{impl}-"))
    daemon = DAEMONS[impl](setup, workdir)
    result: dict = {
        "impl": impl,
        "sessions": n,
        "reflector": setup.r,
        "workdir": str(workdir),
        "ok": False,
    }
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    clients = None
    spy = None
    last = {"p": None, "next": 0.0}

    def show(p: dict) -> None:
        last["p"] = p
        if time.monotonic() >= last["next"]:
            last["next"] = time.monotonic() + 10
            print(
                f"    {impl}: {p['t']:.0f} s, established {p['established']:,}/{n:,}, "
                f"complete {p['full']:,}, handshakes {p['in_handshake']}, waiting "
                f"{p['waiting']}, drops {p['drops']}, {p['messages_in']:,} messages in",
                file=sys.stderr,
                flush=True,
            )

    try:
        t_launch = time.monotonic()
        daemon.start()
        pid = daemon.pid
        while not listening(setup.r):
            if not daemon.alive():
                raise RunError(f"{impl} exited at start: {daemon.log_tail()}")
            if time.monotonic() - t_launch > args.startup_timeout:
                raise RunError(f"{impl} does not listen on {setup.r}:179")
            time.sleep(0.05)
        result["startup_s"] = time.monotonic() - t_launch
        time.sleep(1.0)
        result["rss_before_sessions_bytes"] = rr.proc_status(pid, "VmRSS")
        cpu_before = rr.proc_cpu(pid)
        result["cpu_startup_s"] = cpu_before

        clients = ctx.Process(
            target=clients_main,
            args=(
                child_conn,
                setup.r,
                n,
                args.concurrency,
                args.handshake_timeout,
                not args.no_announce,
            ),
            daemon=True,
        )
        overflows0 = listen_overflows()
        settle_out = None
        if args.profile and args.profile_settle and impl.startswith("bgpd"):
            d = Path(args.profile)
            d.mkdir(parents=True, exist_ok=True)
            settle_out = d / f"sessions-settle-{impl}-{n}.txt"
            spy = rr.PySpy(pid, settle_out, args.profile_rate)
            cpu_before = rr.proc_cpu(pid)
        clients.start()
        t_clients = time.monotonic()
        # Settle: wait for every session up and every client holding the N - 1 others.
        deadline = t_clients + args.settle_timeout
        settled = None
        while settled is None:
            if not daemon.alive():
                raise RunError(f"{impl} exited: {daemon.log_tail()}")
            if not clients.is_alive():
                raise RunError("the client process exited")
            if time.monotonic() > deadline:
                result["diagnosis"] = daemon.diagnose()
                raise RunError(
                    f"not settled within {args.settle_timeout:.0f} s (last progress {last['p']})"
                )
            with contextlib.suppress(RunError):
                settled = _recv(parent_conn, "settled", 1.0, show)
        cpu_settled = rr.proc_cpu(pid)
        if spy is not None:
            spy.stop()
            spy = None
            if settle_out.exists():
                sp = rr.summarize_profile(settle_out, top=20)  # rr's phases: export, import
                result["profile_settle"] = {"file": str(settle_out), **sp}
                result["profile_settle"]["text"] = rr.print_profile(
                    sp, f"{impl}, settling {n:,} sessions (py-spy {args.profile_rate} Hz)"
                )
        result["settle"] = {
            "profiled": settle_out is not None,
            **{k: v for k, v in settled.items() if k not in ("t_start", "t_settled")},
            "r_cpu_s": cpu_settled - cpu_before,
            "r_peak_rss_bytes": rr.proc_status(pid, "VmHWM"),
            "r_rss_bytes": rr.proc_status(pid, "VmRSS"),
            "listen_overflows": (
                listen_overflows() - overflows0 if overflows0 is not None else None
            ),
        }
        print(
            f"    {impl}: settled in {settled['settle_s']:.1f} s (all Established at "
            f"{settled['all_established_s']:.1f} s; {len(settled['drops'])} failed attempts "
            f"or drops; {result['settle']['listen_overflows']} SYNs dropped by a full accept "
            f"queue), R CPU {cpu_settled - cpu_before:.1f} s",
            file=sys.stderr,
            flush=True,
        )

        # Quiet, then the idle window.
        time.sleep(args.quiet)
        if not daemon.alive():
            raise RunError(f"{impl} exited: {daemon.log_tail()}")
        parent_conn.send("window_start")
        _recv(parent_conn, "window_started", 10)
        sampler = Sampler(pid, clients.pid)
        t0, r0, c0 = sampler.read()
        rss0 = rr.proc_status(pid, "VmRSS")
        per_second: list[float] = []
        client_per_second: list[float] = []
        rss_samples: list[int] = []
        prev = (t0, r0, c0)
        t_end = t0 + args.window
        k = 1
        while True:
            wake = min(t0 + k, t_end)
            time.sleep(max(0.0, wake - time.monotonic()))
            if not daemon.alive():
                raise RunError(f"{impl} exited during the window: {daemon.log_tail()}")
            cur = sampler.read()
            dt = cur[0] - prev[0]
            if dt > 0:
                per_second.append((cur[1] - prev[1]) / dt * 100)
                client_per_second.append((cur[2] - prev[2]) / dt * 100)
            rss_samples.append(rr.proc_status(pid, "VmRSS"))
            prev = cur
            k += 1
            if cur[0] >= t_end:
                break
        t1, r1, c1 = prev
        parent_conn.send("window_end")
        window = _recv(parent_conn, "window", 30)
        wall = t1 - t0
        result["window"] = {
            **window,
            "wall_s": wall,
            "r_cpu_s": r1 - r0,
            "r_cpu_percent": (r1 - r0) / wall * 100,
            "r_cpu_percent_per_second": per_second,
            "r_rss_start_bytes": rss0,
            "r_rss_bytes": rr.proc_status(pid, "VmRSS"),
            "r_rss_max_in_window_bytes": max(rss_samples) if rss_samples else None,
            "r_peak_rss_bytes": rr.proc_status(pid, "VmHWM"),
            "r_threads": rr.proc_status(pid, "Threads") // 1024,
            "clients_cpu_s": c1 - c0,
            "clients_cpu_percent": (c1 - c0) / wall * 100,
            "clients_cpu_percent_per_second_max": max(client_per_second or [0.0]),
            "clients_rss_bytes": rr.proc_status(clients.pid, "VmRSS"),
        }
        w = result["window"]
        print(
            f"    {impl}: window {wall:.1f} s: R CPU {w['r_cpu_percent']:.2f} % "
            f"({w['r_cpu_s']:.2f} s), RSS {w['r_rss_bytes'] / 2**20:.1f} MiB (peak "
            f"{w['r_peak_rss_bytes'] / 2**20:.1f} MiB), clients CPU "
            f"{w['clients_cpu_percent']:.2f} %, {w['keepalives_received']:,} KEEPALIVEs in, "
            f"{w['drops']} drops, longest silence {w['max_silence_s']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

        if args.profile and impl.startswith("bgpd"):
            d = Path(args.profile)
            d.mkdir(parents=True, exist_ok=True)
            out = d / f"sessions-{impl}-{n}.txt"
            p0 = rr.proc_cpu(pid)
            t = time.monotonic()
            spy = rr.PySpy(pid, out, args.profile_rate)
            time.sleep(args.profile_duration)
            spy.stop()
            spy = None
            wall_p = time.monotonic() - t
            if out.exists():
                s = _profile_summary(out)
                result["profile"] = {
                    "file": str(out),
                    "duration_s": wall_p,
                    "r_cpu_percent_while_profiled": (rr.proc_cpu(pid) - p0) / wall_p * 100,
                    **s,
                }
                result["profile"]["text"] = rr.print_profile(
                    s, f"{impl}, {n:,} idle sessions (py-spy {args.profile_rate} Hz, {out})"
                )

        result["r_view"] = daemon.established()
        result["r_log_tail"] = daemon.log_tail(20)
        parent_conn.send("finish")
        result["check"] = _recv(parent_conn, "result", 120)
        result["ok"] = (
            result["check"]["ok"]
            and w["drops"] == 0
            and w["established_at_end"] == n
            and w["updates_received"] == 0
        )
    except RunError as e:
        result["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - reported in the results
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if spy is not None:
            spy.stop()
        if clients is not None:
            clients.join(10)
            if clients.is_alive():
                clients.terminate()  # SIGTERM to its PID
                clients.join(5)
            if clients.is_alive():
                clients.kill()
                clients.join(5)
        daemon.stop()
        parent_conn.close()
        child_conn.close()
        if result.get("error"):
            result["log_tail"] = daemon.log_tail(30)
        if not args.keep_dirs and result["ok"]:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# --- the report -----------------------------------------------------------------------------

HEADERS = [
    "implementation",
    "sessions",
    "up at end",
    "settle",
    "R CPU to settle",
    "idle CPU",
    "× BIRD CPU",
    "RSS",
    "peak RSS",
    "× BIRD RSS",
    "clients CPU",
    "drops",
    "max silence",
]


def _mib(b: float | None) -> str:
    return f"{b / 2**20:.1f} MiB" if b else ""


def table_rows(runs: list[dict]) -> list[list[str]]:
    base = next((r for r in runs if r["impl"] == BASELINE and "window" in r), None)
    rows = []
    for r in runs:
        w = r.get("window")
        s = r.get("settle")
        if w is None:
            rows.append([r["impl"], common.fmt_int(r["sessions"]), "ERROR"] + [""] * 10)
            continue
        cpu_ratio = rss_ratio = None
        if base is not None:
            b = base["window"]
            if b["r_cpu_percent"] > 0:
                cpu_ratio = w["r_cpu_percent"] / b["r_cpu_percent"]
            rss_ratio = w["r_rss_bytes"] / b["r_rss_bytes"]
        rows.append(
            [
                r["impl"],
                common.fmt_int(r["sessions"]),
                common.fmt_int(w["established_at_end"]),
                common.fmt_seconds(s["settle_s"]),
                common.fmt_seconds(s["r_cpu_s"]),
                f"{w['r_cpu_percent']:.2f} %",
                common.fmt_ratio(cpu_ratio),
                _mib(w["r_rss_bytes"]),
                _mib(w["r_peak_rss_bytes"]),
                common.fmt_ratio(rss_ratio),
                f"{w['clients_cpu_percent']:.2f} %",
                str(w["drops"]),
                f"{w['max_silence_s']:.1f} s",
            ]
        )
    return rows


def medians(runs: list[dict]) -> list[dict]:
    """One pseudo-run per implementation with the median of each figure over its runs (the
    peak RSS: the largest), in the shape of a run, for the table and the verdicts."""
    out = []
    for impl in dict.fromkeys(r["impl"] for r in runs):
        ok = [r for r in runs if r["impl"] == impl and r.get("window") and r.get("settle")]
        if not ok:
            continue
        med = statistics.median
        w = {
            k: med([r["window"][k] for r in ok])
            for k in (
                "established_at_end",
                "r_cpu_percent",
                "r_rss_bytes",
                "clients_cpu_percent",
                "drops",
                "max_silence_s",
            )
        }
        w["r_peak_rss_bytes"] = max(r["window"]["r_peak_rss_bytes"] for r in ok)
        st = {k: med([r["settle"][k] for r in ok]) for k in ("settle_s", "r_cpu_s")}
        out.append(
            {
                "impl": impl,
                "sessions": ok[0]["sessions"],
                "window": w,
                "settle": st,
                "runs": len(ok),
            }
        )
    return out


def verdicts(runs: list[dict], rss_target: int = RSS_TARGET, cpu_target=None) -> list[str]:
    """bgpd against its targets: idle CPU under BIRD's (and under ``cpu_target`` percent
    when given), RSS under ``rss_target`` bytes; settle CPU beside BIRD's."""
    base = next((r for r in runs if r["impl"] == BASELINE and "window" in r), None)
    out = []
    for r in runs:
        if not r["impl"].startswith("bgpd") or "window" not in r:
            continue
        w = r["window"]
        parts = []
        c = w["r_cpu_percent"]
        if base is not None:
            b = base["window"]["r_cpu_percent"]
            verdict = "met" if c < b else "NOT met" if c > b else "equal"
            parts.append(f"CPU {c:.2f} % vs BIRD {b:.2f} %: {verdict}")
        if cpu_target is not None:
            verdict = "met" if c < cpu_target else "NOT met"
            parts.append(f"CPU {c:.2f} % < {cpu_target:g} %: {verdict}")
        peak = w["r_peak_rss_bytes"]
        if peak < rss_target:
            verdict = "met"
        elif w["r_rss_bytes"] < rss_target:
            verdict = "met at the end, not at the peak"
        else:
            verdict = "NOT met"
        parts.append(
            f"RSS {_mib(w['r_rss_bytes'])} (peak {_mib(peak)}) < {_mib(rss_target)}: {verdict}"
        )
        s, bs = r.get("settle") or {}, (base or {}).get("settle") or {}
        if s.get("r_cpu_s") is not None and bs.get("r_cpu_s"):
            ratio = s["r_cpu_s"] / bs["r_cpu_s"]
            verdict = "met" if ratio <= 1 else "NOT met"
            parts.append(
                f"CPU to settle {s['r_cpu_s']:.2f} s vs BIRD {bs['r_cpu_s']:.2f} s "
                f"({ratio:.2f}x): {verdict}"
            )
        out.append(f"{r['impl']}: " + "; ".join(parts))
    return out


def _short(r: dict) -> str:
    if r.get("error"):
        return f"ERROR {r['error']}"
    c = r.get("check", {})
    s = r["settle"]
    w = r["window"]
    ps = sorted(w["r_cpu_percent_per_second"])
    return (
        f"settled {s['settle_s']:.1f} s (all up {s['all_established_s']:.1f} s, "
        f"{len(s['drops'])} failed attempts/drops), R CPU to settle {s['r_cpu_s']:.1f} s, "
        f"peak RSS at settle {_mib(s['r_peak_rss_bytes'])}; idle {w['r_cpu_percent']:.2f} % "
        f"(per second: median {statistics.median(ps):.0f} %, max {ps[-1]:.0f} %), RSS "
        f"{_mib(w['r_rss_bytes'])}; {w['keepalives_received']:,} KEEPALIVEs received, "
        f"{w['keepalives_sent']:,} sent, {w['updates_received']} UPDATEs; check "
        f"{'ok' if c.get('ok') else 'FAILED'}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000, help="idle iBGP sessions (1000)")
    ap.add_argument("--window", type=float, default=60, help="seconds measured when idle (60)")
    ap.add_argument(
        "--impl", default="bgpd,bgpd-dynamic,bird", help=f"reflectors ({', '.join(IMPLS)})"
    )
    ap.add_argument("--quiet", type=float, default=5, help="seconds between settled and window")
    ap.add_argument("--concurrency", type=int, default=8, help="handshakes in flight at most (8)")
    ap.add_argument("--settle-timeout", type=float, default=900)
    ap.add_argument("--startup-timeout", type=float, default=60)
    ap.add_argument("--handshake-timeout", type=float, default=30)
    ap.add_argument("--profile", metavar="DIR", help="py-spy bgpd after the window, raw in DIR")
    ap.add_argument("--profile-duration", type=float, default=20)
    ap.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument(
        "--profile-settle",
        action="store_true",
        help="with --profile: also py-spy the settle phase (its figures are then marked)",
    )
    ap.add_argument("--keep-dirs", action="store_true", help="keep the daemons' directories")
    ap.add_argument("--no-json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print the table in Markdown")
    ap.add_argument(
        "--rss-target", type=float, default=RSS_TARGET / 2**20, help="MiB bgpd must stay under"
    )
    ap.add_argument("--cpu-target", type=float, help="idle CPU %% bgpd must stay under")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each implementation, interleaved (1)"
    )
    ap.add_argument(
        "--no-announce",
        action="store_true",
        help="clients announce nothing (sessions only: the idle cost without the settle)",
    )
    args = ap.parse_args(argv)
    impls = [x.strip() for x in args.impl.split(",") if x.strip()]
    for impl in impls:
        if impl not in IMPLS:
            ap.error(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
    if not 2 <= args.sessions <= MAX_SESSIONS:
        ap.error(f"--sessions: 2..{MAX_SESSIONS}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.warn_if_busy()
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    loads = [os.getloadavg()]
    runs = []
    for k in range(args.repeat):
        for impl in impls:
            print(
                f"{impl}: {args.sessions:,} sessions, run {k + 1}/{args.repeat}",
                file=sys.stderr,
                flush=True,
            )
            r = run_once(impl, args)
            r["run"] = k + 1
            loads.append(os.getloadavg())
            runs.append(r)
            print(f"  {impl}: {_short(r)}", file=sys.stderr, flush=True)

    print()
    print(
        f"Idle sessions: {args.sessions:,} iBGP route-reflection clients (hold {HOLD_TIME} s, "
        f"keepalive {KEEPALIVE_EVERY} s), {args.window:.0f} s window, {date}"
    )
    print("command: " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))
    summary = medians(runs) if args.repeat > 1 else runs
    if args.repeat > 1:
        print("every run:")
        common.print_table(HEADERS, table_rows(runs))
        print(f"medians of {args.repeat} runs (peak RSS: the largest):")
    text = common.print_table(HEADERS, table_rows(summary))
    md = common.markdown_table(HEADERS, table_rows(summary))
    if args.markdown:
        print()
        print(md)
    targets = (int(args.rss_target * 2**20), args.cpu_target)
    for line in verdicts(summary, *targets):
        print("target: " + line)
    for r in runs:
        if r.get("error") or not r["ok"]:
            print(f"{r['impl']}: {_short(r)}")
    print("load average before/after each run: " + ", ".join(f"{la[0]:.2f}" for la in loads))
    if not args.no_json:
        path = common.write_results(
            "sessions",
            {
                "params": {
                    "sessions": args.sessions,
                    "window_s": args.window,
                    "impl": impls,
                    "quiet_s": args.quiet,
                    "concurrency": args.concurrency,
                    "hold_time": HOLD_TIME,
                    "keepalive": KEEPALIVE_EVERY,
                    "repeat": args.repeat,
                    "announce": not args.no_announce,
                },
                "table": text,
                "markdown": md,
                "verdicts": verdicts(summary, *targets),
                "medians": summary if args.repeat > 1 else None,
                "loadavg": loads,
                "runs": runs,
                "git_paths": ["bgpd"],
            },
        )
        print(f"results: {os.path.relpath(path)}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

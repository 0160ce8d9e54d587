"""Churn soak: a route reflector under steady churn for 30 minutes, bgpd and BIRD side by side.

Topology, one per implementation, all in the same run and at the same time::

    C1 .. C4  ◄──►  R (reflector under test)

R binds its own ``127.80.K.1:179`` (K picked per implementation so that sockets left in
TIME_WAIT by an earlier run never get in the way), its clients ``127.80.K.2..5``. Everything
is iBGP in AS 64512, the four neighbors are route-reflection clients of R, R is passive, hold
time 240 s (the clients send a KEEPALIVE every 30 s). R is started exactly as ``rr.py`` starts
it (``rr.BgpdDaemon`` / ``rr.BirdDaemon``: same command line and configuration, logs at
warning level) and stopped by its PID.

The clients of both reflectors (eight sessions) are minimal BGP speakers in ONE extra process
(fork, ``selectors`` over epoll, non-blocking plain sockets; ``bgpd.wire`` only encodes their
OPEN, KEEPALIVE and UPDATEs — nothing of bgpd's session or RIB code runs on the client side).
Client j owns N/4 IPv4 /24s (16.0.0.0/24 upward, disjoint ranges: N = 100k by default) with
ORIGIN IGP, an empty AS_PATH, NEXT_HOP 192.0.2.(j+1), LOCAL_PREF 100, and a *version* V: MED V
and the communities 64512:(j+1) and 65000:(V mod 65536). Every group of prefixes sent together
gets a new version (one counter per reflector), so a prefix's MED says which announcement of
it a client holds, and an UPDATE's MED says which batch it reflects.

Phases:
1. Both reflectors start; the clients connect (``rr.handshake``); R's RSS is noted.
2. Initial load: every client announces its N/4 prefixes in groups of the churn batch size
   (~83), each group its own version, so the number of attribute sets alive in R stays
   the same from the start to the end of the churn (~1,200 per reflector at the defaults).
   Loaded = every client holds the 3N/4 prefixes of the other three.
3. Churn, ``--duration`` (1800) seconds: ``--churn-percent`` (10) % of N per minute is
   re-announced with a new version — 10,000 prefixes a minute, 2,500 per client, in one batch
   per client every ``--batch-every`` (2) seconds (~83 prefixes, one UPDATE). The clients are
   staggered by a quarter of the interval, and BIRD's by another eighth, so R sees a steady
   trickle (a batch every 0.5 s, ~170 prefixes/s), not bursts. Each client cycles through its
   range, so every prefix is re-announced every 10 minutes (3 times in 30). With each batch
   a client also withdraws ``--withdraw-percent`` (1) % of the churn — the first prefixes of
   its *next* batch, which re-announces them 2 s later — so R reflects withdrawals too.
4. Every ``--sample-every`` (10) seconds, per reflector: RSS (``VmRSS`` of /proc/PID/status),
   CPU seconds (utime + stime of /proc/PID/stat), and from the clients the UPDATEs,
   announced and withdrawn prefixes received in the interval, and the reflection lag of the
   batches completed in it (median and max): from the moment a batch was written to the
   socket to the moment the last of the three other clients held all its prefixes with the
   batch's version (CLOCK_MONOTONIC, same process). Batches still unreflected are counted,
   with the age of the oldest.
5. Settle and check: after the churn, wait until every batch is reflected and every client
   holds exactly the 3N/4 prefixes of the others with their latest version (every prefix's
   MED is compared), then compare. Also checked on every UPDATE received: ORIGINATOR_ID is
   the owner client, CLUSTER_LIST is R's cluster ID, NEXT_HOP, LOCAL_PREF and the
   communities are the owner's and the version's, and a client is never sent its own
   prefixes. No NOTIFICATION and no session loss may happen.

The memory verdict: the RSS samples after ``--warmup`` (120 s into the churn) give a
least-squares slope (MiB per hour), and the median of the first 5 minutes after the warm-up is
compared with the median of the last 5 minutes (a third of the measured period each when the
run is shorter than 25 minutes). Memory is *flat* when the last median exceeds the first by at
most max(FLAT_TOLERANCE × first, FLAT_MIN_BYTES) = max(5 %, 4 MiB) and the slope is at most
FLAT_MAX_SLOPE (2 MiB/h). Also reported: the average
CPU % over the churn, VmHWM (peak RSS since start, initial load included), the RSS at
every 5-minute mark, and everything reflected.

Run (root: port 179; ``bird`` from Debian's bird2 on the PATH unless ``--impl bgpd``)::

    .venv/bin/python bench/soak.py --markdown               # 30 min, 100k prefixes, bgpd + BIRD
    .venv/bin/python bench/soak.py --duration 120 --warmup 30 --prefixes 20000   # a quick one

Every process is stopped by the PID this script started (SIGTERM, then SIGKILL), and the
daemons' directories (/tmp/bench-soak-*) are removed, whatever happens (error, Ctrl-C,
SIGTERM; ``--keep-dirs`` keeps them). Results go to ``bench/results/soak-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import traceback
from array import array
from itertools import repeat
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import rr  # noqa: E402  (daemons, handshake, /proc readers)

from bgpd.wire import AttrSet, Context, pack_announce, pack_withdraw  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST  # noqa: E402

ASN = rr.ASN
CLIENTS = 4
IMPLS = ("bgpd", "bird")
BASELINE = "bird"
FIRST_PREFIX = rr.FIRST_PREFIX  # 16.0.0.0/24 as a 24-bit network number
HEADER = rr.HEADER
KEEPALIVE_MSG = rr.KEEPALIVE_MSG
KEEPALIVE_EVERY = rr.KEEPALIVE_EVERY
VERSION_ASN = 65000  # community 65000:(version mod 65536)
#: Memory is flat when the median RSS of the last window after the warm-up exceeds the median
#: of the first window by at most max(FLAT_TOLERANCE × first, FLAT_MIN_BYTES).
FLAT_TOLERANCE = 0.05
FLAT_MIN_BYTES = 4 * 2**20
#: ... and the least-squares slope after the warm-up is at most this (MiB per hour): a steady
#: climb that stays under the window tolerance in half an hour is still a leak over a week.
FLAT_MAX_SLOPE = 2.0
#: The windows compared (seconds), shortened to a third of the measured period if need be.
WINDOW = 300.0
MIB = 2**20

assert array("I").itemsize == 4


# --- addresses and attributes ---------------------------------------------------------------


class Addresses:
    """R and its clients: 127.80.K.1 and 127.80.K.2..5 (what rr.Daemon needs: r, neighbors)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.r = f"127.80.{k}.1"
        self.clients = [f"127.80.{k}.{2 + i}" for i in range(CLIENTS)]

    @property
    def neighbors(self) -> list[str]:
        return list(self.clients)


_next_block = [int(time.time()) % 200 + 1]


def free_addresses() -> Addresses:
    """A block whose R address has nothing bound on port 179, not even a TIME_WAIT socket."""
    for _ in range(250):
        k = _next_block[0]
        _next_block[0] = k % 250 + 1
        with socket.socket() as s:
            try:
                s.bind((f"127.80.{k}.1", 179))
            except OSError:
                continue
        return Addresses(k)
    raise RuntimeError("no free 127.80.K.1:179")


def attrs_for(owner: int, version: int) -> AttrSet:
    return AttrSet(
        origin=0,
        as_path=(),
        next_hop=bytes((192, 0, 2, 1 + owner)),
        med=version,
        local_pref=100,
        communities=((ASN << 16) | (owner + 1), (VERSION_ASN << 16) | (version & 0xFFFF)),
    )


def _ip4(addr: str) -> bytes:
    return socket.inet_aton(addr)


def _attr_values(block: bytes) -> dict[int, bytes]:
    """Type code -> value of every attribute in a path-attribute block."""
    out = {}
    i, n = 0, len(block)
    while i + 3 <= n:
        flags, code = block[i], block[i + 1]
        if flags & 0x10:
            length = (block[i + 2] << 8) | block[i + 3]
            i += 4
        else:
            length = block[i + 2]
            i += 3
        out[code] = block[i : i + length]
        i += length
    return out


# --- the clients (one process for every session) --------------------------------------------


class Batch:
    """One churn batch in flight: the prefixes each other client still lacks."""

    __slots__ = ("sent_at", "missing")

    def __init__(self, sent_at: float, missing: dict) -> None:
        self.sent_at = sent_at
        self.missing = missing  # client index -> set of uint32 keys not yet received


class Client:
    """One session to R: sends its own prefixes, reads and keeps everything R reflects."""

    def __init__(self, world: Impl, idx: int, addr: str) -> None:
        self.world = world
        self.idx = idx
        self.addr = addr
        self.name = f"{world.name}/C{idx + 1}"
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.out = bytearray()
        self.writing = False
        self.held: dict[int, int] = {}  # uint32 key (NLRI octets, native order) -> version (MED)
        self.notification: tuple | None = None
        self.closed: str | None = None
        self.last_keepalive = time.monotonic()
        per = world.per_client
        self.lo, self.hi = idx * per, (idx + 1) * per
        self.cursor = 0  # next prefix (offset in the range) to re-announce
        self.k = 0  # next batch
        self.offset = 0.0  # its batches' phase in the churn interval

    # -- writing --

    def send(self, data: bytes) -> None:
        if self.closed is not None or self.sock is None:
            return
        if not self.out:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                self.close(str(e))
                return
            data = data[sent:]
        if data:
            self.out += data
            if not self.writing:
                self.writing = True
                self.world.sel.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

    def flush(self) -> None:
        if not self.out or self.closed is not None:
            return
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError as e:
            self.close(str(e))
            return
        del self.out[:sent]
        if not self.out and self.writing:
            self.writing = False
            self.world.sel.modify(self.sock, selectors.EVENT_READ, self)

    def close(self, why: str) -> None:
        if self.closed is None:
            self.closed = why
            with contextlib.suppress(Exception):
                self.world.sel.unregister(self.sock)

    # -- reading --

    def read(self, now: float) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as e:
            self.close(str(e))
            return
        if not data:
            self.close("EOF")
            return
        self.feed(data, now)

    def feed(self, data: bytes, now: float) -> None:
        buf = self.buf
        buf += data
        i, end = 0, len(buf)
        while end - i >= HEADER:
            length = (buf[i + 16] << 8) | buf[i + 17]
            if length < HEADER:
                self.close(f"bad message length {length}")
                return
            if end - i < length:
                break
            t = buf[i + 18]
            if t == 2:
                self.update(bytes(buf[i + HEADER : i + length]), now)
            elif t == 3:
                self.notification = (buf[i + HEADER], buf[i + HEADER + 1])
                self.close(f"NOTIFICATION {self.notification[0]}/{self.notification[1]}")
                return
            i += length
        if i:
            del buf[:i]

    def update(self, body: bytes, now: float) -> None:
        w = self.world
        w.c_updates += 1
        wl = (body[0] << 8) | body[1]
        if wl:
            keys = self._keys(body[2 : 2 + wl])
            held = self.held
            gone = 0
            for k in keys:
                if held.pop(k, None) is not None:
                    gone += 1
            w.c_withdrawn += len(keys)
            w.c_withdrawn_absent += len(keys) - gone
        a = 2 + wl
        al = (body[a] << 8) | body[a + 1]
        nlri = body[a + 2 + al :]
        if not nlri:
            if al:
                w.problem(f"{self.name}: UPDATE with attributes and no IPv4 NLRI")
            return
        values = _attr_values(body[a + 2 : a + 2 + al])
        med_raw = values.get(4)
        if med_raw is None:
            w.problem(f"{self.name}: no MED")
            return
        med = int.from_bytes(med_raw, "big")
        keys = self._keys(nlri)
        self._check(values, med, nlri, body[a + 2 : a + 2 + al])
        held = self.held
        w.c_unchanged += sum(map(med.__eq__, map(held.get, keys, repeat(-1))))
        held.update(dict.fromkeys(keys, med))
        w.c_announced += len(keys)
        batch = w.pending.get(med)
        if batch is not None:
            miss = batch.missing.get(self.idx)
            if miss is not None:
                miss.difference_update(keys)
                if not miss:
                    del batch.missing[self.idx]
                    if not batch.missing:
                        w.reflected(med, batch, now)

    def _keys(self, nlri: bytes):
        size = len(nlri)
        if not size & 3 and nlri[::4] == rr._all24(size >> 2):
            return array("I", nlri)
        self.world.problem(f"{self.name}: NLRI not all /24: {nlri[:16].hex()}")
        return array("I")

    def _check(self, values: dict, med: int, nlri: bytes, block: bytes) -> None:
        """RFC 4456 reflection and the owner's attributes, on every UPDATE received."""
        w = self.world
        first = int.from_bytes(nlri[1:4], "big") - FIRST_PREFIX
        last = int.from_bytes(nlri[-3:], "big") - FIRST_PREFIX
        owner = first // w.per_client
        problems = []
        if not (0 <= first < w.n and 0 <= last < w.n) or last // w.per_client != owner:
            problems.append(f"prefixes of several owners or out of range ({first}, {last})")
        elif owner == self.idx:
            problems.append("own prefixes reflected back")
        else:
            if values.get(9) != w.client_ids[owner]:
                problems.append(f"ORIGINATOR_ID {values.get(9)!r}")
            if values.get(10) != w.cluster:
                problems.append(f"CLUSTER_LIST {values.get(10)!r}")
            if values.get(3) != bytes((192, 0, 2, 1 + owner)):
                problems.append(f"NEXT_HOP {values.get(3)!r}")
            if values.get(5) != b"\x00\x00\x00\x64":
                problems.append(f"LOCAL_PREF {values.get(5)!r}")
            want = ((ASN << 16) | (owner + 1)).to_bytes(4, "big") + (
                (VERSION_ASN << 16) | (med & 0xFFFF)
            ).to_bytes(4, "big")
            if values.get(8) != want:
                problems.append(f"COMMUNITIES {values.get(8)!r}")
        for p in problems:
            w.problem(f"{self.name}: {p}")
        if w.sample is None and not problems:
            w.sample = rr.describe_attrs(block)


class Impl:
    """The clients of one reflector, its churn schedule, and what they have seen."""

    def __init__(self, name, r_addr, client_addrs, n, prefixes, keys, params, phase) -> None:
        self.name = name
        self.r_addr = r_addr
        self.cluster = _ip4(r_addr)
        self.client_ids = [_ip4(a) for a in client_addrs]
        self.n = n
        self.per_client = n // CLIENTS
        self.prefixes = prefixes
        self.keys = keys
        self.params = params
        self.phase = phase  # fraction of the batch interval this reflector's batches are shifted by
        self.sel: selectors.BaseSelector | None = None
        self.ctx = Context(as4=True, ibgp=True)
        self.clients = [Client(self, i, a) for i, a in enumerate(client_addrs)]
        self.latest = array("I", bytes(4 * n))  # version of every prefix, by index
        self.next_version = 1
        self.pending: dict[int, Batch] = {}
        self.latencies: list[tuple[float, float]] = []  # (sent at, lag) of every churn batch
        self.problems = 0
        self.problem_samples: list[str] = []
        self.sample: dict | None = None
        self.loaded_at: float | None = None
        # cumulative counters (the interval figures are differences of these)
        self.c_updates = self.c_announced = self.c_withdrawn = self.c_unchanged = 0
        self.c_withdrawn_absent = 0
        self.s_batches = self.s_prefixes = self.s_withdrawals = 0
        self._last: dict = {}
        self._lat_mark = 0

    def problem(self, text: str) -> None:
        self.problems += 1
        if len(self.problem_samples) < 10:
            self.problem_samples.append(text)

    def reflected(self, version: int, batch: Batch, now: float) -> None:
        del self.pending[version]
        self.latencies.append((batch.sent_at, now - batch.sent_at))

    # -- sending --

    def batch_size(self, k: int) -> int:
        r = self.params["per_batch"]
        return math.floor((k + 1) * r) - math.floor(k * r)

    def withdraw_size(self, k: int) -> int:
        r = self.params["per_batch"] * self.params["withdraw_fraction"]
        return math.floor((k + 1) * r) - math.floor(k * r)

    def initial_load(self) -> None:
        group = max(1, round(self.params["per_batch"]))
        for c in self.clients:
            msgs = []
            for start in range(c.lo, c.hi, group):
                stop = min(c.hi, start + group)
                v = self.next_version
                self.next_version += 1
                self.latest[start:stop] = array("I", [v]) * (stop - start)
                msgs += pack_announce(
                    IPV4_UNICAST, attrs_for(c.idx, v), self.prefixes[start:stop], self.ctx
                )
            c.send(b"".join(msgs))

    def start_churn(self, t0: float, t_end: float) -> None:
        every = self.params["batch_every"]
        for c in self.clients:
            c.offset = every * (c.idx / CLIENTS + self.phase)
            c.k = 0
        self.t0, self.t_end = t0, t_end

    def due(self, c: Client) -> float:
        return self.t0 + c.offset + c.k * self.params["batch_every"]

    def churn(self, now: float) -> float | None:
        """Send the batches that are due; return when the next one is (None: churn over)."""
        nxt = None
        every = self.params["batch_every"]
        for c in self.clients:
            while True:
                t = self.due(c)
                if t >= self.t_end:
                    break
                if t > now:
                    nxt = t if nxt is None else min(nxt, t)
                    break
                self.send_batch(c, now, has_next=t + every < self.t_end)
                c.k += 1
        return nxt

    def send_batch(self, c: Client, now: float, has_next: bool) -> None:
        per = self.per_client
        size = self.batch_size(c.k)
        if not size or c.closed is not None:
            return
        idx = [c.lo + (c.cursor + i) % per for i in range(size)]
        c.cursor = (c.cursor + size) % per
        v = self.next_version
        self.next_version += 1
        prefixes = [self.prefixes[i] for i in idx]
        for i in idx:
            self.latest[i] = v
        msgs = pack_announce(IPV4_UNICAST, attrs_for(c.idx, v), prefixes, self.ctx)
        keys = set(array("I", b"".join(prefixes)))
        others = {o.idx: set(keys) for o in self.clients if o is not c and o.closed is None}
        self.s_batches += 1
        self.s_prefixes += size
        if has_next:
            # Withdraw the first prefixes of this client's next batch, which re-announces them.
            w = min(self.withdraw_size(c.k), self.batch_size(c.k + 1))
            if w:
                gone = [self.prefixes[c.lo + (c.cursor + i) % per] for i in range(w)]
                msgs += pack_withdraw(IPV4_UNICAST, gone, self.ctx)
                self.s_withdrawals += w
        self.pending[v] = Batch(time.monotonic(), others)
        c.send(b"".join(msgs))

    # -- figures --

    def counters(self) -> dict:
        return {
            "updates": self.c_updates,
            "announced": self.c_announced,
            "withdrawn": self.c_withdrawn,
            "withdrawn_absent": self.c_withdrawn_absent,
            "unchanged": self.c_unchanged,
            "sent_batches": self.s_batches,
            "sent_prefixes": self.s_prefixes,
            "sent_withdrawals": self.s_withdrawals,
        }

    def interval(self, now: float) -> dict:
        """The counters since the last call, this interval's lags, the backlog."""
        cur = self.counters()
        out = {k: v - self._last.get(k, 0) for k, v in cur.items()}
        self._last = cur
        lags = [lag for _, lag in self.latencies[self._lat_mark :]]
        self._lat_mark = len(self.latencies)
        out["lag_n"] = len(lags)
        out["lag_median_s"] = statistics.median(lags) if lags else None
        out["lag_max_s"] = max(lags) if lags else None
        out["outstanding"] = len(self.pending)
        out["oldest_s"] = (
            now - min(b.sent_at for b in self.pending.values()) if self.pending else 0.0
        )
        out["held"] = [len(c.held) for c in self.clients]
        out["problems"] = self.problems
        out["down"] = [c.name for c in self.clients if c.closed is not None]
        return out

    def loaded(self) -> bool:
        want = self.n - self.per_client
        return all(len(c.held) == want for c in self.clients)

    def expected(self, c: Client) -> dict:
        keys, latest = self.keys, self.latest
        exp = dict(zip(keys[: c.lo], latest[: c.lo], strict=True))
        exp.update(zip(keys[c.hi :], latest[c.hi :], strict=True))
        return exp

    def settled(self) -> bool:
        if any(c.closed for c in self.clients):
            return True  # nothing more will come: check what there is
        if self.pending:
            return False
        want = self.n - self.per_client
        if any(len(c.held) != want for c in self.clients):
            return False
        return all(c.held == self.expected(c) for c in self.clients)

    def check(self) -> dict:
        out: dict = {"clients": [], "ok": True}
        for c in self.clients:
            exp = self.expected(c)
            held = c.held
            missing = sum(1 for k in exp if k not in held)
            extra = sum(1 for k in held if k not in exp)
            stale = sum(1 for k, v in exp.items() if k in held and held[k] != v)
            ok = not missing and not extra and not stale and c.closed is None
            out["ok"] = out["ok"] and ok
            out["clients"].append(
                {
                    "name": c.name,
                    "held": len(held),
                    "expected": len(exp),
                    "missing": missing,
                    "extra": extra,
                    "stale_version": stale,
                    "notification": c.notification,
                    "closed": c.closed,
                    "exact": ok,
                }
            )
        out["unreflected_batches"] = len(self.pending)
        out["problems"] = self.problems
        out["problem_samples"] = self.problem_samples
        out["ok"] = out["ok"] and not self.pending and not self.problems
        return out


def clients_main(conn, plans: list[tuple], n: int, params: dict) -> None:
    """The client process: connect every session, then obey the parent's commands.

    Commands: ``load`` (send the initial tables; "loaded" is sent per reflector when its
    clients hold everything), ``churn`` (t0, t_end), ``sample`` (the interval's figures),
    ``finish`` (settle timeout: wait until everything is reflected, then send the check)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        _clients_run(conn, plans, n, params)
    except Exception:  # noqa: BLE001 - reported to the parent
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))


def _clients_run(conn, plans: list[tuple], n: int, params: dict) -> None:
    prefixes = [b"\x18" + (FIRST_PREFIX + i).to_bytes(3, "big") for i in range(n)]
    keys = array("I", b"".join(prefixes))
    sel = selectors.DefaultSelector()
    worlds = [Impl(name, r, cl, n, prefixes, keys, params, phase) for name, r, cl, phase in plans]
    for w in worlds:
        w.sel = sel
        for c in w.clients:
            try:
                sock, buf, _ = rr.handshake(c.addr, w.r_addr, params["startup_timeout"])
            except Exception as e:  # noqa: BLE001
                conn.send(("error", f"{c.name}: {type(e).__name__}: {e}"))
                return
            c.sock = sock
            sel.register(sock, selectors.EVENT_READ, c)
            c.feed(bytes(buf), time.monotonic())
    sel.register(conn, selectors.EVENT_READ, None)
    conn.send(("ready", None))
    loading = False
    churning = False
    finish_deadline = None
    finish_started = 0.0
    next_batch: float | None = None
    next_check = 0.0
    while True:
        now = time.monotonic()
        timeout = 0.5
        if next_batch is not None:
            timeout = max(0.0, min(timeout, next_batch - now))
        for key, events in sel.select(timeout):
            c = key.data
            if c is None:
                cmd = conn.recv()
                if cmd[0] == "load":
                    loading = True
                    for w in worlds:
                        w.initial_load()
                elif cmd[0] == "churn":
                    for w in worlds:
                        w.start_churn(cmd[1], cmd[2])
                    churning = True
                elif cmd[0] == "sample":
                    t = time.monotonic()
                    conn.send(("sample", {w.name: w.interval(t) for w in worlds}))
                elif cmd[0] == "finish":
                    finish_started = time.monotonic()
                    finish_deadline = finish_started + cmd[1]
                elif cmd[0] == "stop":
                    return
                continue
            t = time.monotonic()
            if events & selectors.EVENT_WRITE:
                c.flush()
            if events & selectors.EVENT_READ and c.closed is None:
                c.read(t)
        now = time.monotonic()
        if churning:
            nxt = [t for t in (w.churn(now) for w in worlds) if t is not None]
            next_batch = min(nxt) if nxt else None
            if not nxt:
                churning = False
        for w in worlds:
            for c in w.clients:
                if c.closed is None and now - c.last_keepalive >= KEEPALIVE_EVERY:
                    c.last_keepalive = now
                    c.send(KEEPALIVE_MSG)
        if loading:
            for w in worlds:
                if w.loaded_at is None and w.loaded():
                    w.loaded_at = now
                    conn.send(("loaded", w.name, now))
            if all(w.loaded_at is not None for w in worlds):
                loading = False
        if finish_deadline is not None and not churning and now >= next_check:
            next_check = now + 0.5
            if now >= finish_deadline or all(w.settled() for w in worlds):
                t = time.monotonic()
                conn.send(
                    (
                        "result",
                        {
                            w.name: {
                                "settled": w.settled(),
                                "settle_s": t - finish_started,
                                "check": w.check(),
                                "lags": [lag for _, lag in w.latencies],
                                "totals": w.counters(),
                                "sample_update": w.sample,
                            }
                            for w in worlds
                        },
                    )
                )
                finish_deadline = None


# --- the parent: daemons, sampling, the report ----------------------------------------------


def _recv(conn, timeout: float, want: str):
    """The next message of type ``want`` (an "error" from the clients raises)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not conn.poll(left):
            raise TimeoutError(f"no {want!r} from the client process within {timeout:.0f} s")
        msg = conn.recv()
        if msg[0] == "error":
            raise RuntimeError(f"client process: {msg[1]}")
        if msg[0] == want:
            return msg


def _proc(daemon) -> dict | None:
    if not daemon.alive():
        return None
    try:
        return {
            "rss": rr.proc_status(daemon.pid, "VmRSS"),
            "hwm": rr.proc_status(daemon.pid, "VmHWM"),
            "cpu": rr.proc_cpu(daemon.pid),
        }
    except OSError:
        return None


def run(args, impls: list[str]) -> dict:
    n = args.prefixes
    per_batch = n * args.churn_percent / 100 / 60 / CLIENTS * args.batch_every
    params = {
        "per_batch": per_batch,
        "batch_every": args.batch_every,
        "withdraw_fraction": args.withdraw_percent / 100,
        "startup_timeout": args.startup_timeout,
    }
    daemons: dict[str, rr.Daemon] = {}
    workdirs: list[Path] = []
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    proc = None
    out: dict = {"impls": {}, "params": params}
    try:
        plans = []
        for m, impl in enumerate(impls):
            addrs = free_addresses()
            workdir = Path(tempfile.mkdtemp(prefix=f"bench-soak-{impl}-"))
            workdirs.append(workdir)
            cls = rr.BgpdDaemon if impl == "bgpd" else rr.BirdDaemon
            d = daemons[impl] = cls(addrs, workdir)
            d.start()
            plans.append((impl, addrs.r, addrs.clients, m / 8))
            out["impls"][impl] = {"reflector": addrs.r, "workdir": str(workdir)}
        proc = ctx.Process(target=clients_main, args=(child_conn, plans, n, params), daemon=True)
        proc.start()
        _recv(parent_conn, args.startup_timeout * 2 * len(impls) + 10, "ready")
        for impl, d in daemons.items():
            if not d.alive():
                raise RuntimeError(f"{impl} exited: {d.log_tail()}")
            p = _proc(d)
            out["impls"][impl]["idle"] = p
            out["impls"][impl]["rss_sessions_up"] = p["rss"]
        # The initial load, both reflectors at once.
        cpu0 = {impl: _proc(d)["cpu"] for impl, d in daemons.items()}
        t_load = time.monotonic()
        parent_conn.send(("load",))
        print(f"initial load: {n:,} prefixes per reflector", file=sys.stderr, flush=True)
        for _ in impls:
            _, impl, t = _recv(parent_conn, args.load_timeout, "loaded")
            p = _proc(daemons[impl])
            out["impls"][impl]["load_s"] = t - t_load
            out["impls"][impl]["load_cpu_s"] = p["cpu"] - cpu0[impl] if p else None
            out["impls"][impl]["rss_loaded"] = p["rss"] if p else None
            print(f"  {impl}: loaded in {t - t_load:.2f} s", file=sys.stderr, flush=True)
        time.sleep(args.settle)
        # The churn.
        t0 = time.monotonic() + 0.5
        t_end = t0 + args.duration
        parent_conn.send(("churn", t0, t_end))
        samples: dict[str, list] = {impl: [] for impl in impls}
        clients_samples: list = []
        prev = {impl: None for impl in impls}
        prev_clients = None
        k = 0
        next_report = t0 + 60
        while True:
            at = t0 + k * args.sample_every
            if at > t_end + 1e-6:
                break
            with contextlib.suppress(ValueError):
                time.sleep(max(0.0, at - time.monotonic()))
            now = time.monotonic()
            procs = {impl: _proc(d) for impl, d in daemons.items()}
            ccpu = rr.proc_cpu(proc.pid) if proc.is_alive() else None
            parent_conn.send(("sample",))
            _, stats = _recv(parent_conn, 60, "sample")
            t = now - t0
            for impl in impls:
                p = procs[impl]
                s = {"t": t, **stats[impl]}
                if p is None:
                    s.update(rss=None, cpu_s=None, cpu_pct=None)
                else:
                    q = prev[impl]
                    s.update(rss=p["rss"], hwm=p["hwm"], cpu_s=p["cpu"])
                    s["cpu_pct"] = (
                        (p["cpu"] - q[1]) / (now - q[0]) * 100 if q and now > q[0] else None
                    )
                    prev[impl] = (now, p["cpu"])
                samples[impl].append(s)
            if ccpu is not None:
                if prev_clients and now > prev_clients[0]:
                    clients_samples.append(
                        (t, (ccpu - prev_clients[1]) / (now - prev_clients[0]) * 100)
                    )
                prev_clients = (now, ccpu)
            if now >= next_report or at + args.sample_every > t_end + 1e-6:
                next_report += 60
                print(
                    f"  [{t:5.0f} s] " + " | ".join(_progress(samples[i]) for i in impls),
                    file=sys.stderr,
                    flush=True,
                )
            k += 1
        # Settle and check.
        parent_conn.send(("finish", args.settle_timeout))
        _, result = _recv(parent_conn, args.settle_timeout + 120, "result")
        for impl, d in daemons.items():
            r = out["impls"][impl]
            r.update(result[impl])
            r["samples"] = samples[impl]
            p = _proc(d)
            r["final"] = p
            r["alive"] = p is not None
            r["log_tail"] = d.log_tail(20)
        out["clients_cpu_pct"] = clients_samples
        out["t0_duration"] = args.duration
        return out
    finally:
        if proc is not None:
            with contextlib.suppress(Exception):
                parent_conn.send(("stop",))
            proc.join(5)
            if proc.is_alive():
                proc.terminate()  # SIGTERM to its PID
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for d in daemons.values():
            d.stop()
        parent_conn.close()
        child_conn.close()
        if not args.keep_dirs:
            for w in workdirs:
                shutil.rmtree(w, ignore_errors=True)


def _progress(ss: list) -> str:
    s = ss[-1]
    if s["rss"] is None:
        return "DEAD"
    recent = [x for x in ss[-6:] if x.get("lag_max_s") is not None]
    lag = max((x["lag_max_s"] for x in recent), default=None)
    cpu = [x["cpu_pct"] for x in ss[-6:] if x.get("cpu_pct") is not None]
    return (
        f"RSS {s['rss'] / MIB:.1f} MiB, CPU {statistics.mean(cpu) if cpu else 0:.1f} %, "
        f"lag max {_ms(lag)}, backlog {s['outstanding']}"
        + (f", DOWN {s['down']}" if s["down"] else "")
        + (f", problems {s['problems']}" if s["problems"] else "")
    )


def _ms(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


# --- the summary ----------------------------------------------------------------------------


def _median(xs):
    return statistics.median(xs) if xs else None


def flatness(samples: list, warmup: float, duration: float) -> dict:
    post = [(s["t"], s["rss"]) for s in samples if s["t"] >= warmup - 1e-6 and s["rss"]]
    w = min(WINDOW, (duration - warmup) / 3)
    first = [r for t, r in post if t <= warmup + w + 1e-6]
    last = [r for t, r in post if t >= duration - w - 1e-6]
    out: dict = {"window_s": w, "samples": len(post)}
    if len(post) >= 2:
        lr = statistics.linear_regression([t / 3600 for t, _ in post], [r / MIB for _, r in post])
        out["slope_mib_per_h"] = lr.slope
    if first and last:
        a, b = statistics.median(first), statistics.median(last)
        tol = max(FLAT_TOLERANCE * a, FLAT_MIN_BYTES)
        out.update(first_bytes=a, last_bytes=b, growth_bytes=b - a, tolerance_bytes=tol)
        slope = out.get("slope_mib_per_h")
        out["flat"] = b - a <= tol and (slope is None or slope <= FLAT_MAX_SLOPE)
    return out


def summarize(out: dict, impls: list[str], args) -> list[dict]:
    rows = []
    dur = args.duration
    for impl in impls:
        r = out["impls"][impl]
        ss = r.get("samples", [])
        live = [s for s in ss if s["cpu_s"] is not None]
        row: dict = {"impl": impl, "n": args.prefixes}
        row["load_s"] = r.get("load_s")
        row["load_cpu_s"] = r.get("load_cpu_s")
        if len(live) >= 2:
            row["cpu_pct"] = (
                (live[-1]["cpu_s"] - live[0]["cpu_s"]) / (live[-1]["t"] - live[0]["t"]) * 100
            )
        # The first sample (t = 0) counts what came before the churn: the initial load.
        churn = ss[1:]
        row["sent"] = sum(s["sent_prefixes"] for s in churn)
        row["sent_withdrawals"] = sum(s["sent_withdrawals"] for s in churn)
        row["reflected"] = sum(s["announced"] for s in churn)
        row["reflected_withdrawals"] = sum(s["withdrawn"] for s in churn)
        row["unchanged"] = sum(s["unchanged"] for s in churn)
        row["updates"] = sum(s["updates"] for s in churn)
        row.update(flatness(ss, args.warmup, dur))
        row["peak_rss_bytes"] = max((s.get("hwm") or 0 for s in ss), default=0) or None
        if r.get("final"):
            row["peak_rss_bytes"] = r["final"]["hwm"]
            row["final_rss_bytes"] = r["final"]["rss"]
        row["rss_loaded"] = r.get("rss_loaded")
        row["rss_sessions_up"] = r.get("rss_sessions_up")
        lags = sorted(r.get("lags", []))
        if lags:
            row["lag_median_s"] = statistics.median(lags)
            row["lag_p99_s"] = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            row["lag_max_s"] = lags[-1]
            row["lag_n"] = len(lags)
        row["ok"] = bool(r.get("check", {}).get("ok")) and r.get("alive", False)
        row["settle_s"] = r.get("settle_s")
        rows.append(row)
    base = next((x for x in rows if x["impl"] == BASELINE), None)
    for row in rows:
        if base is None:
            break
        if row.get("cpu_pct") and base.get("cpu_pct"):
            row["ratio_cpu"] = row["cpu_pct"] / base["cpu_pct"]
        if row.get("last_bytes") and base.get("last_bytes"):
            row["ratio_rss"] = row["last_bytes"] / base["last_bytes"]
        if row.get("lag_median_s") and base.get("lag_median_s"):
            row["ratio_lag"] = row["lag_median_s"] / base["lag_median_s"]
    return rows


HEADERS = [
    "implementation",
    "prefixes",
    "initial load",
    "churn sent",
    "reflected",
    "CPU %",
    "× BIRD CPU",
    "RSS after warm-up",
    "RSS at end",
    "growth",
    "slope",
    "peak RSS",
    "× BIRD RSS",
    "lag median",
    "lag p99",
    "lag max",
    "× BIRD lag",
    "memory",
    "check",
]


def _mib(b) -> str:
    return "" if b is None else f"{b / MIB:.1f} MiB"


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        growth = r.get("growth_bytes")
        out.append(
            [
                r["impl"],
                common.fmt_int(r["n"]),
                common.fmt_seconds(r["load_s"]) if r.get("load_s") is not None else "",
                common.fmt_int(r["sent"]),
                common.fmt_int(r["reflected"]),
                f"{r['cpu_pct']:.2f} %" if r.get("cpu_pct") is not None else "",
                common.fmt_ratio(r.get("ratio_cpu")),
                _mib(r.get("first_bytes")),
                _mib(r.get("last_bytes")),
                "" if growth is None else f"{growth / MIB:+.1f} MiB",
                f"{r['slope_mib_per_h']:+.2f} MiB/h"
                if r.get("slope_mib_per_h") is not None
                else "",
                _mib(r.get("peak_rss_bytes")),
                common.fmt_ratio(r.get("ratio_rss")),
                _ms(r.get("lag_median_s")),
                _ms(r.get("lag_p99_s")),
                _ms(r.get("lag_max_s")),
                common.fmt_ratio(r.get("ratio_lag")),
                {True: "flat", False: "GROWS", None: "?"}[r.get("flat")],
                "ok" if r["ok"] else "FAILED",
            ]
        )
    return out


def series(out: dict, impls: list[str], args) -> tuple[list[str], list[list[str]]]:
    """RSS at every mark (5 minutes, or a sixth of a shorter run) and CPU % in between."""
    step = WINDOW if args.duration >= 3 * WINDOW else max(args.sample_every, args.duration / 6)
    marks = [m * step for m in range(int(args.duration / step + 1e-6) + 1)]
    headers = ["series"] + [f"{m / 60:g} min" if m % 60 == 0 else f"{m:.0f} s" for m in marks]
    rows = []
    for impl in impls:
        ss = [s for s in out["impls"][impl].get("samples", []) if s["rss"] is not None]
        if not ss:
            continue
        at = [min(ss, key=lambda s, m=m: abs(s["t"] - m)) for m in marks]
        rows.append([f"{impl} RSS (MiB)"] + [f"{s['rss'] / MIB:.1f}" for s in at])
        cpu = [""]
        for a, b in zip(at, at[1:], strict=False):
            dt = b["t"] - a["t"]
            cpu.append(f"{(b['cpu_s'] - a['cpu_s']) / dt * 100:.2f}" if dt > 0 else "")
        rows.append([f"{impl} CPU % (since previous)"] + cpu)
        lag = [""]
        for a, b in zip(at, at[1:], strict=False):
            xs = [
                s["lag_max_s"]
                for s in ss
                if a["t"] < s["t"] <= b["t"] and s["lag_max_s"] is not None
            ]
            lag.append(_ms(max(xs)) if xs else "-")
        rows.append([f"{impl} max lag (since previous)"] + lag)
    return headers, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", default="bgpd,bird", help="reflectors, comma separated")
    ap.add_argument("--duration", type=float, default=1800, help="seconds of churn")
    ap.add_argument("--prefixes", type=int, default=100000, help="prefixes in all (4 clients)")
    ap.add_argument("--churn-percent", type=float, default=10, help="%% of prefixes per minute")
    ap.add_argument("--withdraw-percent", type=float, default=1, help="%% of the churn withdrawn")
    ap.add_argument(
        "--batch-every", type=float, default=2.0, help="seconds between a client's batches"
    )
    ap.add_argument("--sample-every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=120, help="seconds left out of the verdict")
    ap.add_argument("--settle", type=float, default=5, help="seconds between load and churn")
    ap.add_argument("--load-timeout", type=float, default=600)
    ap.add_argument("--settle-timeout", type=float, default=120)
    ap.add_argument("--startup-timeout", type=float, default=30)
    ap.add_argument("--keep-dirs", action="store_true", help="keep the daemons' directories")
    ap.add_argument("--no-json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    ap.add_argument("--summarize", metavar="JSON", help="only report an earlier run's results file")
    args = ap.parse_args(argv)
    if args.summarize:
        return summarize_file(args.summarize, args.markdown)
    impls = [x.strip() for x in args.impl.split(",") if x.strip()]
    for impl in impls:
        if impl not in IMPLS:
            ap.error(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
    if args.prefixes % CLIENTS or args.prefixes <= 0 or args.prefixes > (1 << 24) - FIRST_PREFIX:
        ap.error(f"--prefixes must be a positive multiple of {CLIENTS}")
    if args.duration <= args.warmup:
        ap.error("--duration must be longer than --warmup")
    if "bird" in impls and not shutil.which("bird"):
        ap.error("bird (BIRD 2) is not on the PATH: apt-get install bird2, or run --impl bgpd")
    if os.geteuid() != 0:
        print("warning: not root — binding port 179 will probably fail", file=sys.stderr)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every daemon is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.warn_if_busy()
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = common.load_average()
    out = run(args, impls)
    load_after = common.load_average()
    command = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    rows, texts = report(out, impls, args, date, command, (load_before, load_after))
    if not args.no_json:
        path = common.write_results(
            "soak",
            {
                "params": {**vars(args), "impls": impls, **out.pop("params")},
                "date_started": date,
                "summary": rows,
                **texts,
                "load_average": [load_before, load_after],
                **out,
                "git_paths": ["bgpd"],
            },
        )
        print(f"results: {os.path.relpath(path)}")
    return 0 if all(r["ok"] and r.get("flat") for r in rows) else 1


def report(out: dict, impls: list[str], args, date: str, command: str, loads) -> tuple:
    """Print the tables and notes; return the summary rows and the tables' texts."""
    rows = summarize(out, impls, args)
    per_min = args.prefixes * args.churn_percent / 100
    print()
    print(
        f"Churn soak, {date}: {args.prefixes:,} prefixes (4 clients), {per_min:,.0f} re-announced "
        f"per minute for {args.duration:.0f} s, warm-up {args.warmup:.0f} s"
    )
    print("command: " + command)
    text = common.print_table(HEADERS, table_rows(rows))
    sh, sr = series(out, impls, args)
    print()
    stext = common.print_table(sh, sr) if sr else ""
    for row in rows:
        r = out["impls"][row["impl"]]
        print(
            f"{row['impl']}: initial load {row['load_s'] or 0:.2f} s ({row['load_cpu_s'] or 0:.2f} s "
            f"CPU), RSS {_mib(row['rss_sessions_up'])} with sessions up, {_mib(row['rss_loaded'])} "
            f"loaded, {_mib(row.get('final_rss_bytes'))} at the end; growth "
            f"{_mib(row.get('growth_bytes'))} (tolerance {_mib(row.get('tolerance_bytes'))}, "
            f"windows {row.get('window_s', 0):.0f} s); {row['updates']:,} UPDATEs, "
            f"{row['reflected_withdrawals']:,} withdrawals reflected of "
            f"{row['sent_withdrawals']:,} sent (×3 clients), {row['unchanged']:,} prefixes "
            f"re-sent unchanged; lag over {row.get('lag_n', 0):,} batches; settled in "
            f"{row['settle_s'] or 0:.1f} s after the churn"
        )
        check = r.get("check", {})
        if not row["ok"]:
            print(f"  CHECK FAILED: {check}")
            print(f"  log: {r.get('log_tail')}")
    if out.get("clients_cpu_pct"):
        cc = [c for _, c in out["clients_cpu_pct"]]
        print(f"client process CPU: mean {statistics.mean(cc):.1f} %, max {max(cc):.1f} %")
    print("load average before {}, after {}".format(*(_load(x) for x in loads)))
    md = common.markdown_table(HEADERS, table_rows(rows))
    smd = common.markdown_table(sh, sr) if sr else ""
    if args.markdown:
        print()
        print(md)
        print()
        print(smd)
    texts = {"table": text, "series_table": stext, "markdown": md, "series_markdown": smd}
    return rows, texts


def _load(x) -> str:
    return "?" if not x else " ".join(f"{v:.2f}" for v in x)


def summarize_file(path: str, markdown: bool) -> int:
    """Print the report of an earlier run from its results file (``--summarize``)."""
    with open(path) as f:
        doc = json.load(f)
    p = doc["params"]
    args = argparse.Namespace(**{k: p[k] for k in p if k != "impls"})
    args.markdown = markdown
    loads = doc.get("load_average") or (None, None)
    date = doc.get("date_started", doc.get("date", "?"))
    report(doc, p["impls"], args, date, doc.get("command", "?"), loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())

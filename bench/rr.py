"""Route-reflector convergence: bgpd, BIRD and GoBGP as the reflector, side by side in one run.

Topology, one per implementation under test and per run (fresh daemon every run)::

    F (feeder) ──► R (reflector under test) ──► C1 .. C4 (receiving clients)

R binds its own ``127.77.K.1:179`` (K picked per run so that sockets left in TIME_WAIT by the
previous run never get in the way); F is ``127.77.K.2``, the clients ``127.77.K.3..``. Everything
is iBGP in AS 64512, every neighbor is a route-reflection client of R, R is passive (the
benchmark connects), hold time 240 s; the benchmark's speakers still send a KEEPALIVE every
30 s and read everything R sends.

F and C1..C4 are minimal BGP speakers written here on plain sockets (``bgpd.wire`` only builds
the OPEN and KEEPALIVE and pre-encodes the feed — it is a codec, nothing of bgpd's session or
RIB code runs on this side). F's feed is N IPv4 /24 prefixes (16.0.0.0/24 upward), one
attribute set per ``--per-set`` (200) prefixes: ORIGIN IGP, empty AS_PATH, NEXT_HOP
192.0.2.1-8, LOCAL_PREF 100, a MED and a community that differ per set. It is packed into
UPDATEs of at most 4096 octets (one per set, ~850 octets) before the clock starts, then written
as fast as the socket takes it.

The four receivers run in one extra process (``multiprocessing``, fork) that serves all of them
with ``selectors`` — on a 2-core machine that leaves one core to R and keeps the measuring code
off it as much as possible. A receiver walks the UPDATE headers (withdrawn length, attribute
length, MP_REACH_NLRI if any) and, when the NLRI are all /24 (checked at C speed with a slice),
adds them to a set through ``array('I', nlri)`` — no per-prefix Python code — so it always
knows exactly how many distinct prefixes it holds (withdrawals are subtracted the same way).
When R trickles small messages (GoBGP sends one prefix per UPDATE) the receiver process sleeps
2 ms between reads to batch them instead of waking up per message; that can make the
convergence it sees at most 2 ms late, and it never applies to bulk writers.

Measured per run:
- convergence: from the first UPDATE byte F sends to the moment the last receiver holds all N
  prefixes (the receive time of the read that completed it; CLOCK_MONOTONIC in both processes);
- the slowest receiver's timeline: when it held 10, 25, 50, 75 and 90 % of N;
- feed accepted: when F's last byte was taken by its socket (not R's ingest rate: the
  loopback socket buffers hold several MiB, most of a 1M feed);
- R's CPU seconds (utime+stime of the whole process, from /proc/PID/stat, before/after) and
  its peak RSS (VmHWM from /proc/PID/status, read after convergence);
- correctness: every receiver holds exactly the N prefixes sent (as a set, no extra), no
  withdrawals, no NOTIFICATION; on a sample UPDATE per receiver, ORIGINATOR_ID is F's router
  ID and CLUSTER_LIST is R's cluster ID (RFC 4456), NEXT_HOP is unchanged.

Monitoring cost (issue 18): ``--impl bgpd,bgpd-mon,bird`` adds bgpd with the MRT update log
(``mrt.updates`` in the run's directory, every message of every session) and BMP to a
collector (every station default: pre-policy Adj-RIB-In and Loc-RIB monitoring, statistics)
switched on. The collector (``--bmp-collector``) is ``sink``, a process of the benchmark that
accepts the connection and reads and counts every BMP message, or ``pmbmpd`` (pmacct's
collector, parsing everything, no log file); it binds ``127.77.K.250``. For every
implementation R's CPU is also read once it is idle again after convergence (its CPU over
1 s under 30 ms: ``cpu_settled_s``), so that what monitoring does after the last prefix
reached the clients (the Loc-RIB drain, the log's last flush) is counted; a table compares
bgpd-mon with bgpd (medians). ``bgpd-mrt`` (the update log only) and ``bgpd-bmp`` (BMP only)
split the cost. ``--dump`` times ``bgpd dump table`` of the converged table on every bgpd
run while the control socket is pinged every 10 ms (the slowest answer: how long the event
loop kept a request waiting).

Run: ``.venv/bin/python bench/rr.py [--n 100000 --repeat 3 --impl bgpd,bird,gobgp]``. With no
``--n`` it runs 100k and 1M; GoBGP only up to ``--gobgp-max-n`` (it needed ~287 s for 1M
here). ``--profile DIR`` runs bgpd under ``py-spy record`` (raw collapsed stacks) and prints
the top functions by phase, own and total time (``--summarize RAW`` re-reads such a file).
Profiled runs are reported apart and not in the table. Results go to
``bench/results/rr-<timestamp>.json``.

Every daemon is stopped by the PID this script started (SIGTERM, then SIGKILL), as is the
receiver process and py-spy, whatever happens (timeout, error, Ctrl-C, SIGTERM). The
directories of failed runs are kept in /tmp (bench-rr-*) for their logs.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from bgpd.wire import AttrSet, Context, Keepalive, Open, pack_announce  # noqa: E402
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the interpreter bgpd runs under (BGPD_PYTHON: another CPython, e.g. a 3.13 venv)
VENV_PYTHON = Path(os.environ.get("BGPD_PYTHON") or ROOT / ".venv" / "bin" / "python")
ASN = 64512
HOLD_TIME = 240
KEEPALIVE_EVERY = 30.0
FIRST_PREFIX = 16 << 16  # 16.0.0.0/24, as the 24-bit network number
HEADER = 19
KEEPALIVE_MSG = Keepalive().encode()
IMPLS = ("bgpd", "bgpd-mon", "bgpd-mrt", "bgpd-bmp", "bird", "gobgp")
MONITORED = ("bgpd-mon", "bgpd-mrt", "bgpd-bmp")  # bgpd with both, the update log, BMP
TRICKLE = 16384  # octets per receiver-process wake-up below which R is "trickling"
TRICKLE_SLEEP = 0.002
MARKS = (10, 25, 50, 75, 90)  # percent of N: the receivers' timeline
BASELINE = "bird"

assert array("I").itemsize == 4


# --- the feed -------------------------------------------------------------------------------


def build_feed(n: int, per_set: int) -> tuple[bytes, int]:
    """N /24 prefixes, one attribute set per ``per_set``, packed into UPDATEs (<= 4096 octets).

    Returns (the byte stream, the number of UPDATEs)."""
    ctx = Context(as4=True, ibgp=True)
    msgs: list[bytes] = []
    for s, start in enumerate(range(0, n, per_set)):
        stop = min(n, start + per_set)
        prefixes = [b"\x18" + (FIRST_PREFIX + i).to_bytes(3, "big") for i in range(start, stop)]
        attrs = AttrSet(
            origin=0,
            as_path=(),
            next_hop=bytes((192, 0, 2, 1 + s % 8)),
            med=s,
            local_pref=100,
            communities=((ASN << 16) | (s & 0xFFFF),),
        )
        msgs += pack_announce(IPV4_UNICAST, attrs, prefixes, ctx)
    return b"".join(msgs), len(msgs)


def expected_keys(n: int) -> array:
    """The feed's prefixes the way a receiver stores them: each 4-octet NLRI as a native uint32."""
    raw = b"".join(b"\x18" + (FIRST_PREFIX + i).to_bytes(3, "big") for i in range(n))
    return array("I", raw)


def key_to_str(key: int) -> str:
    raw = key.to_bytes(4, sys.byteorder)
    return f"{raw[1]}.{raw[2]}.{raw[3]}.0/{raw[0]}"


# --- a minimal BGP speaker on a plain socket --------------------------------------------------


def _open_msg(router_id: str) -> bytes:
    caps = (Multiprotocol(1, 1), FourOctetAS(ASN))
    return Open(asn=ASN, hold_time=HOLD_TIME, router_id=router_id, capabilities=caps).encode()


def _read_exact(sock: socket.socket, buf: bytearray, want: int) -> None:
    while len(buf) < want:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed during the handshake")
        buf += data


def _read_message(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    _read_exact(sock, buf, HEADER)
    length = (buf[16] << 8) | buf[17]
    _read_exact(sock, buf, length)
    msg_type, body = buf[18], bytes(buf[HEADER:length])
    del buf[:length]
    return msg_type, body


def handshake(local: str, remote: str, timeout: float) -> tuple[socket.socket, bytearray, str]:
    """Connect from ``local`` to ``remote``:179 and reach Established (retrying until
    ``timeout``: the daemon may not listen, or know its neighbors, yet).

    Returns (the socket, bytes already read past the handshake, R's router ID)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((local, 0))
            sock.settimeout(max(0.5, min(5.0, deadline - time.monotonic())))
            sock.connect((remote, 179))
            sock.sendall(_open_msg(local))
            buf = bytearray()
            seen_open = None
            while True:
                t, body = _read_message(sock, buf)
                if t == 1:
                    seen_open = f"{body[5]}.{body[6]}.{body[7]}.{body[8]}"
                    sock.sendall(KEEPALIVE_MSG)
                elif t == 4 and seen_open:
                    sock.setblocking(False)
                    return sock, buf, seen_open
                elif t == 3:
                    raise ConnectionError(f"NOTIFICATION {body[0]}/{body[1]} during handshake")
        except (OSError, ConnectionError) as e:
            last = e
            sock.close()
            time.sleep(0.2)
    raise TimeoutError(f"{local} -> {remote}: no session within {timeout:.0f} s ({last})")


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def describe_attrs(block: bytes) -> dict:
    """The attributes the checks look at, from a raw path-attribute block."""
    out: dict = {"codes": []}
    i, n = 0, len(block)
    while i + 3 <= n:
        flags, code = block[i], block[i + 1]
        if flags & 0x10:
            length = (block[i + 2] << 8) | block[i + 3]
            i += 4
        else:
            length = block[i + 2]
            i += 3
        v = block[i : i + length]
        i += length
        out["codes"].append(code)
        if code == 1:
            out["origin"] = v[0]
        elif code == 2:
            out["as_path_len"] = len(v)
        elif code == 3:
            out["next_hop"] = _ip(v)
        elif code == 4:
            out["med"] = int.from_bytes(v, "big")
        elif code == 5:
            out["local_pref"] = int.from_bytes(v, "big")
        elif code == 8:
            out["communities"] = [
                f"{int.from_bytes(v[k : k + 2], 'big')}:{int.from_bytes(v[k + 2 : k + 4], 'big')}"
                for k in range(0, len(v), 4)
            ]
        elif code == 9:
            out["originator_id"] = _ip(v)
        elif code == 10:
            out["cluster_list"] = [_ip(v[k : k + 4]) for k in range(0, len(v), 4)]
    return out


_ALL24: dict[int, bytes] = {}


def _all24(count: int) -> bytes:
    b = _ALL24.get(count)
    if b is None:
        b = _ALL24[count] = b"\x18" * count
    return b


def _walk(nlri: bytes) -> list[bytes]:
    """Prefixes of an NLRI field of any lengths (the slow path; not expected here)."""
    out, i, n = [], 0, len(nlri)
    while i < n:
        size = 1 + (nlri[i] + 7) // 8
        out.append(bytes(nlri[i : i + size]))
        i += size
    return out


class Receiver:
    """Counts the distinct prefixes one client holds, from R's byte stream."""

    def __init__(self, name: str, sock: socket.socket, buf: bytearray, n: int) -> None:
        self.name = name
        self.sock = sock
        self.buf = buf
        self.n = n
        self.held: set = set()  # uint32 keys (see expected_keys); other lengths as bytes
        self.updates = 0
        self.nlri_seen = 0  # prefixes announced to us, duplicates included
        self.withdrawn = 0  # prefixes withdrawn
        self.eor = 0
        self.samples: list[bytes] = []
        self.first_at: float | None = None
        self.done_at: float | None = None
        self.notification: tuple | None = None
        self.closed: str | None = None
        self.bytes_in = 0
        self.last_keepalive = time.monotonic()
        # When the receiver first held 10%, 25%, 50%, 75% and 90% of N (the timeline).
        self.marks: list[float] = []
        self._mark_at = [n * q // 100 for q in MARKS]

    def _add(self, nlri: bytes, withdraw: bool) -> int:
        size = len(nlri)
        count = size >> 2
        if not size & 3 and nlri[::4] == _all24(count):
            keys = array("I", nlri)
        else:
            keys = _walk(nlri)
            count = len(keys)
        if withdraw:
            self.held.difference_update(keys)
        else:
            self.held.update(keys)
        return count

    def feed(self, data: bytes, now: float) -> None:
        self.bytes_in += len(data)
        buf = self.buf
        buf += data
        i, end = 0, len(buf)
        while end - i >= HEADER:
            length = (buf[i + 16] << 8) | buf[i + 17]
            if length < HEADER:
                self.closed = f"bad message length {length}"
                return
            if end - i < length:
                break
            t = buf[i + 18]
            if t == 2:
                self._update(bytes(buf[i + HEADER : i + length]), now)
            elif t == 3:
                self.notification = (buf[i + HEADER], buf[i + HEADER + 1])
            i += length
        if i:
            del buf[:i]
        held = len(self.held)
        while len(self.marks) < len(MARKS) and held >= self._mark_at[len(self.marks)]:
            self.marks.append(now)
        if self.done_at is None and held >= self.n:
            self.done_at = now

    def _update(self, body: bytes, now: float) -> None:
        self.updates += 1
        wl = (body[0] << 8) | body[1]
        if wl:
            self.withdrawn += self._add(body[2 : 2 + wl], True)
        a = 2 + wl
        al = (body[a] << 8) | body[a + 1]
        attrs = body[a + 2 : a + 2 + al]
        nlri = body[a + 2 + al :]
        if not wl and not al and not nlri:
            self.eor += 1
            return
        got = self._add(nlri, False) if nlri else 0
        if al:
            got += self._mp_reach(attrs)
        if got:
            self.nlri_seen += got
            if self.first_at is None:
                self.first_at = now
            if len(self.samples) < 2:
                self.samples.append(attrs)

    def _mp_reach(self, attrs: bytes) -> int:
        """Prefixes in an MP_REACH_NLRI (IPv4 unicast only is negotiated, so none expected)."""
        i, n, got = 0, len(attrs), 0
        while i + 3 <= n:
            flags, code = attrs[i], attrs[i + 1]
            if flags & 0x10:
                length = (attrs[i + 2] << 8) | attrs[i + 3]
                i += 4
            else:
                length = attrs[i + 2]
                i += 3
            if code == 14:
                v = attrs[i : i + length]
                nh_len = v[3]
                got += self._add(v[5 + nh_len :], False)
            i += length
        return got

    def progress(self) -> dict:
        return {
            "name": self.name,
            "held": len(self.held),
            "updates": self.updates,
            "announced": self.nlri_seen,
            "withdrawn": self.withdrawn,
            "eor": self.eor,
            "bytes": self.bytes_in,
            "notification": self.notification,
            "closed": self.closed,
            "first_at": self.first_at,
            "marks": self.marks,
            "done_at": self.done_at,
        }


def receivers_main(conn, remote: str, locals_: list[str], n: int, startup: float) -> None:
    """The receiver process: reach Established with R from every address in ``locals_``, say
    "ready", then read everything, send progress every second and "done" once every receiver
    holds N prefixes; on "finish", check the sets and send "result"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    receivers: list[Receiver] = []
    try:
        for k, local in enumerate(locals_):
            sock, buf, rid = handshake(local, remote, startup)
            r = Receiver(f"C{k + 1}", sock, bytearray(), n)
            r.feed(bytes(buf), time.monotonic())  # what came with the handshake (EoR...)
            receivers.append(r)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    cpu_ready = _own_cpu()
    conn.send(("ready", rid))
    sel = selectors.DefaultSelector()
    for r in receivers:
        sel.register(r.sock, selectors.EVENT_READ, r)
    sel.register(conn, selectors.EVENT_READ, None)
    done_sent = False
    next_progress = time.monotonic() + 1.0
    while True:
        got = 0
        for key, _ in sel.select(0.25):
            r = key.data
            if r is None:
                cmd = conn.recv()
                if cmd == "finish":
                    conn.send(("result", _finish(receivers, n)))
                    for x in receivers:
                        x.sock.close()
                    return
                continue
            try:
                data = r.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError as e:
                data, r.closed = b"", str(e)
            now = time.monotonic()
            if not data:
                r.closed = r.closed or "EOF"
                sel.unregister(r.sock)
                continue
            r.feed(data, now)
            got += len(data)
        if 0 < got < TRICKLE and not done_sent:
            # R writes small messages one by one (GoBGP: one prefix per UPDATE): read them in
            # batches rather than waking up per message. Completion is then seen at most
            # TRICKLE_SLEEP late; R writing in bulk (large reads) is never delayed.
            time.sleep(TRICKLE_SLEEP)
        now = time.monotonic()
        for r in receivers:
            if r.closed is None and now - r.last_keepalive >= KEEPALIVE_EVERY:
                r.last_keepalive = now
                with contextlib.suppress(OSError):
                    r.sock.send(KEEPALIVE_MSG)
        if not done_sent and all(r.done_at is not None for r in receivers):
            done_sent = True
            conn.send(("done", [r.progress() for r in receivers], _own_cpu() - cpu_ready))
        if now >= next_progress:
            next_progress = now + 1.0
            conn.send(("progress", [r.progress() for r in receivers]))


def _own_cpu() -> float:
    return time.process_time()


def _finish(receivers: list[Receiver], n: int) -> dict:
    want = set(expected_keys(n))
    out = {"receivers": [], "ok": True}
    for r in receivers:
        missing = want - r.held
        extra = r.held - want
        samples = [describe_attrs(s) for s in r.samples]
        duplicates = r.nlri_seen - len(r.held) - r.withdrawn
        ok = not missing and not extra and not r.withdrawn and not duplicates
        ok = ok and r.notification is None
        out["ok"] = out["ok"] and ok
        out["receivers"].append(
            {
                **r.progress(),
                "exact": ok,
                "missing": len(missing),
                "missing_sample": [
                    key_to_str(k) if isinstance(k, int) else k.hex() for k in sorted(missing)[:5]
                ],
                "extra": len(extra),
                "duplicates": duplicates,
                "samples": samples,
            }
        )
    return out


# --- the reflectors -------------------------------------------------------------------------


class Addresses:
    """R, F and the clients for one run: 127.77.K.1, .2, .3.."""

    def __init__(self, k: int, clients: int) -> None:
        self.k = k
        self.r = f"127.77.{k}.1"
        self.f = f"127.77.{k}.2"
        self.clients = [f"127.77.{k}.{3 + i}" for i in range(clients)]

    @property
    def neighbors(self) -> list[str]:
        return [self.f, *self.clients]


_next_block = [int(time.time()) % 200 + 1]


def free_addresses(clients: int) -> Addresses:
    """A block whose R address has nothing bound on port 179, not even a TIME_WAIT socket."""
    for _ in range(250):
        k = _next_block[0]
        _next_block[0] = k % 250 + 1
        with socket.socket() as s:
            try:
                s.bind((f"127.77.{k}.1", 179))
            except OSError:
                continue
        return Addresses(k, clients)
    raise RuntimeError("no free 127.77.K.1:179")


class Daemon:
    """One reflector process in its own directory; stopped only by the PID started here."""

    kind = ""

    def __init__(self, addrs: Addresses, workdir: Path) -> None:
        self.addrs = addrs
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self._out = None

    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.write_config()
        self._out = open(self.workdir / "stdout.log", "wb")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        if self._out is not None:
            self._out.close()
            self._out = None

    def log_tail(self, lines: int = 15) -> str:
        text = []
        for p in sorted(self.workdir.glob("*.log")):
            with contextlib.suppress(OSError):
                text += p.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text[-lines:])

    def diagnose(self) -> dict:
        """What the daemon says about itself (on a timeout)."""
        return {}


class BgpdDaemon(Daemon):
    kind = "bgpd"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "bgpd.sock"

    def write_config(self) -> None:
        a = self.addrs
        lines = [
            f"router_id: {a.r}",
            f"asn: {ASN}",
            f"listen: [{{address: {a.r}, port: 179}}]",
            f"control_socket: {self.socket_path}",
            f"hold_time: {HOLD_TIME}",
            "neighbors:",
        ]
        for nb in a.neighbors:
            lines += [
                f"  - address: {nb}",
                f"    asn: {ASN}",
                "    passive: true",
                "    rr_client: true",
                "    families: [ipv4]",
            ]
        (self.workdir / "bgpd.yaml").write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        py = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
        cfg = str(self.workdir / "bgpd.yaml")
        return [py, "-m", "bgpd.cli.main", "run", "-c", cfg, "--log-level", "warning"]

    def diagnose(self) -> dict:
        from bgpd.api.client import request

        out: dict = {}
        try:
            out["summary"] = request(str(self.socket_path), "show_summary", timeout=20)
            ns = request(str(self.socket_path), "show_neighbors", timeout=60)["neighbors"]
            out["neighbors"] = [
                {k: x.get(k) for k in ("address", "state", "last_error", "prefixes", "messages")}
                for x in ns
            ]
        except Exception as e:  # noqa: BLE001 - diagnosis only
            out["error"] = f"{type(e).__name__}: {e}"
        return out


class BgpdMonDaemon(BgpdDaemon):
    """bgpd with the MRT update log and a BMP station switched on (``collector`` is set to
    ``(address, port)`` before :meth:`start`)."""

    kind = "bgpd-mon"
    mrt = True
    bmp = True
    collector: tuple[str, int] | None = None

    def write_config(self) -> None:
        super().write_config()
        lines = []
        if self.mrt:
            lines += [
                "mrt:",
                f"  updates: {self.workdir / 'mrt' / 'updates.%Y%m%d.%H%M.mrt'}",
                "  rotate: 15m",
            ]
        if self.bmp:
            assert self.collector is not None
            address, port = self.collector
            lines += [
                "bmp:",
                f"  - {{address: {address}, port: {port}, local_address: {self.addrs.r}}}",
            ]
        with open(self.workdir / "bgpd.yaml", "a") as f:
            f.write("\n".join(lines) + "\n")


class BgpdMrtDaemon(BgpdMonDaemon):
    kind = "bgpd-mrt"
    bmp = False


class BgpdBmpDaemon(BgpdMonDaemon):
    kind = "bgpd-bmp"
    mrt = False


class BirdDaemon(Daemon):
    kind = "bird"

    def write_config(self) -> None:
        a = self.addrs
        lines = [
            f'log "{self.workdir / "bird.log"}" {{ warning, error, fatal, bug }};',
            f"router id {a.r};",
            "protocol device {}",
            "ipv4 table igp4;",
            # Next hops (192.0.2.x) resolve through this table only (see tests/interop/peers.py).
            "protocol static resolve4 { ipv4 { table igp4; }; route 0.0.0.0/0 blackhole; }",
            "template bgp rrc {",
            f"  local {a.r} port 179 as {ASN};",
            "  strict bind yes;",
            "  passive on;",
            f"  hold time {HOLD_TIME};",
            "  rr client;",
            f"  rr cluster id {a.r};",
            "  ipv4 { import all; export all; igp table igp4; gateway recursive; };",
            "}",
        ]
        for nb in a.neighbors:
            name = "n_" + nb.replace(".", "_")
            lines.append(f"protocol bgp {name} from rrc {{ neighbor {nb} port 179 as {ASN}; }}")
        (self.workdir / "bird.conf").write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        w = self.workdir
        return [
            shutil.which("bird") or "/usr/sbin/bird",
            "-f",
            "-c",
            str(w / "bird.conf"),
            "-s",
            str(w / "bird.ctl"),
            "-P",
            str(w / "bird.pid"),
        ]

    def diagnose(self) -> dict:
        try:
            r = subprocess.run(
                ["birdc", "-s", str(self.workdir / "bird.ctl"), "show", "protocols"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return {"protocols": r.stdout}
        except (OSError, subprocess.SubprocessError) as e:
            return {"error": str(e)}


class GobgpDaemon(Daemon):
    kind = "gobgp"

    def write_config(self) -> None:
        a = self.addrs
        g = [
            "[global.config]",
            f"  as = {ASN}",
            f'  router-id = "{a.r}"',
            "  port = 179",
            f'  local-address-list = ["{a.r}"]',
        ]
        for nb in a.neighbors:
            g += [
                "",
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{nb}"',
                f"    peer-as = {ASN}",
                "  [neighbors.transport.config]",
                f'    local-address = "{a.r}"',
                "    passive-mode = true",
                "  [neighbors.timers.config]",
                f"    hold-time = {HOLD_TIME}",
                f"    keepalive-interval = {HOLD_TIME // 3}",
                "  [neighbors.route-reflector.config]",
                "    route-reflector-client = true",
                f'    route-reflector-cluster-id = "{a.r}"',
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
            ]
        (self.workdir / "gobgpd.toml").write_text("\n".join(g) + "\n")

    def command(self) -> list[str]:
        w = self.workdir
        return [
            shutil.which("gobgpd") or "gobgpd",
            "-f",
            str(w / "gobgpd.toml"),
            "-t",
            "toml",
            "-p",
            "-l",
            "warn",
            "--api-hosts",
            f"unix://{w / 'api.sock'}",
            "--pprof-disable",
        ]

    def diagnose(self) -> dict:
        try:
            r = subprocess.run(
                ["gobgp", "--target", f"unix://{self.workdir / 'api.sock'}", "neighbor"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return {"neighbors": r.stdout}
        except (OSError, subprocess.SubprocessError) as e:
            return {"error": str(e)}


DAEMONS = {
    "bgpd": BgpdDaemon,
    "bgpd-mon": BgpdMonDaemon,
    "bgpd-mrt": BgpdMrtDaemon,
    "bgpd-bmp": BgpdBmpDaemon,
    "bird": BirdDaemon,
    "gobgp": GobgpDaemon,
}


# --- the BMP collector of bgpd-mon ----------------------------------------------------------


def sink_main(conn, lsock: socket.socket) -> None:
    """The sink collector's process: accept BMP connections, read everything, count the
    messages by type; on "finish", send the counts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    sel.register(conn, selectors.EVENT_READ, "control")
    stats: dict = {"connections": 0, "bytes": 0, "messages": Counter()}
    bufs: dict = {}
    while True:
        for key, _ in sel.select(1.0):
            if key.data is None:
                s, _addr = lsock.accept()
                s.setblocking(False)
                stats["connections"] += 1
                bufs[s] = bytearray()
                sel.register(s, selectors.EVENT_READ, "peer")
            elif key.data == "control":
                conn.recv()
                stats["messages"] = dict(stats["messages"])
                conn.send(stats)
                return
            else:
                s = key.fileobj
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    continue
                stats["bytes"] += len(data)
                buf = bufs[s]
                buf += data
                i, n = 0, len(buf)
                while n - i >= 6:
                    length = int.from_bytes(buf[i + 1 : i + 5], "big")
                    if length < 6 or n - i < length:
                        break
                    stats["messages"][buf[i + 5]] += 1
                    i += length
                del buf[:i]


class SinkCollector:
    """A BMP collector that reads and counts (a forked process of the benchmark)."""

    def __init__(self, address: str, workdir: Path) -> None:
        self.address = address
        self.port = 0
        self.proc = None
        self.conn = None

    def start(self) -> None:
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self.address, 0))
        lsock.listen(8)
        self.port = lsock.getsockname()[1]
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=sink_main, args=(child, lsock), daemon=True)
        self.proc.start()
        lsock.close()
        child.close()

    def stop(self) -> dict:
        out: dict = {}
        if self.proc is None:
            return out
        try:
            self.conn.send("finish")
            if self.conn.poll(30):
                out = self.conn.recv()
        except (OSError, EOFError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()  # SIGTERM to its PID
            self.proc.join(5)
        self.conn.close()
        self.proc = None
        return out


class PmbmpdCollector:
    """pmacct's pmbmpd on our address, parsing everything, logging nothing per message."""

    def __init__(self, address: str, workdir: Path) -> None:
        self.address = address
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with socket.socket() as s:
            s.bind((self.address, 0))
            self.port = s.getsockname()[1]
        conf = self.workdir / "pmbmpd.conf"
        conf.write_text(
            f"bmp_daemon_ip: {self.address}\nbmp_daemon_port: {self.port}\n"
            f"bmp_daemon_max_peers: 4\nlogfile: {self.workdir / 'pmbmpd.log'}\n"
        )
        exe = shutil.which("pmbmpd")
        if exe is None:
            raise RuntimeError("pmbmpd not found: apt-get install pmacct")
        self.proc = subprocess.Popen(
            [exe, "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((self.address, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("pmbmpd does not listen")

    def stop(self) -> dict:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()  # pmbmpd takes ~10 s to act on SIGTERM
            proc.wait(10)
        self.proc = None
        return {"cpu_s": None}


COLLECTORS = {"sink": SinkCollector, "pmbmpd": PmbmpdCollector}
SETTLE_QUIET = 0.03  # R is idle again when its CPU grew less than this over a second
SETTLE_MAX = 120.0


def wait_idle(pid: int, alive) -> float | None:
    """Wait until the process used less than SETTLE_QUIET s of CPU over the last second;
    returns its total CPU then (None when it died or never settled)."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + SETTLE_MAX
    while time.monotonic() < deadline and alive():
        now, cpu = time.monotonic(), proc_cpu(pid)
        samples.append((now, cpu))
        old = [c for t, c in samples if now - t >= 1.0]
        if old and cpu - old[-1] < SETTLE_QUIET:
            return cpu
        time.sleep(0.25)
    return None


def measure_dump(daemon: BgpdDaemon, workdir: Path) -> dict:
    """``dump_table`` of the converged table, with the control socket pinged every 10 ms
    meanwhile: how long the dump takes, its CPU, and how long the event loop kept anyone
    waiting (the slowest ping)."""
    import threading

    from bgpd.api.client import request

    sock = str(daemon.socket_path)
    waits: list[float] = []
    stop = threading.Event()

    def pinger() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                request(sock, "ping", timeout=60)
            except Exception:  # noqa: BLE001 - counted as a very long wait
                waits.append(60.0)
            waits.append(time.monotonic() - t)
            time.sleep(0.01)

    th = threading.Thread(target=pinger, daemon=True)
    path = workdir / "rib.mrt"
    cpu0 = proc_cpu(daemon.pid)
    t0 = time.monotonic()
    th.start()
    try:
        out = request(sock, "dump_table", {"file": str(path)}, timeout=600)
    except Exception as e:  # noqa: BLE001 - reported
        out = {"error": f"{type(e).__name__}: {e}"}
    wall = time.monotonic() - t0
    stop.set()
    th.join(5)
    out.update(
        wall_s=wall,
        cpu_s=proc_cpu(daemon.pid) - cpu0,
        pings=len(waits),
        ping_max_s=max(waits) if waits else None,
        ping_median_s=statistics.median(waits) if waits else None,
    )
    with contextlib.suppress(OSError):
        path.unlink()
    return out


def monitoring_summary(socket_path: Path) -> dict:
    """What bgpd-mon says about its update log and its station at the end of a run."""
    from bgpd.api.client import request

    try:
        m = request(str(socket_path), "show_monitoring", timeout=30)
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"}
    mrt = m.get("mrt") or {}
    bmp = m.get("bmp") or {}
    st = (bmp.get("stations") or [{}])[0]
    return {
        "mrt_records": mrt.get("records"),
        "mrt_bytes": mrt.get("bytes"),
        "mrt_dropped": mrt.get("dropped_records"),
        "mrt_errors": mrt.get("errors"),
        "bmp_sent_bytes": st.get("sent_bytes"),
        "bmp_drops": st.get("drops"),
        "bmp_connects": st.get("connects"),
        "bmp_loc_rib_drained": bmp.get("loc_rib_drained"),
        "bmp_errors": bmp.get("internal_errors"),
    }


# --- /proc ----------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_status(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status, in bytes (0 if absent)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


# --- one run --------------------------------------------------------------------------------


class PySpy:
    """``py-spy record`` attached to a PID, raw collapsed stacks, stopped with SIGINT."""

    def __init__(self, pid: int, out: Path, rate: int, lines: bool = False) -> None:
        exe = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        self.out = out
        self.log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop
        cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        cmd += ["--rate", str(rate), "--idle", "--nonblocking"]
        if not lines:
            cmd.append("--function")  # aggregate by function, not by line
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # attach before the clock starts

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def run_once(
    impl: str,
    n: int,
    feed: bytes,
    args,
    run_index: int,
    profile_out: Path | None = None,
) -> dict:
    """Start R, bring up F and the clients, feed, wait for convergence, check, stop R."""
    addrs = free_addresses(args.clients)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-rr-{impl}-"))
    daemon = DAEMONS[impl](addrs, workdir)
    result: dict = {
        "impl": impl,
        "n": n,
        "run": run_index,
        "reflector": addrs.r,
        "workdir": str(workdir),
        "converged": False,
        "profiled": profile_out is not None,
    }
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    receivers = None
    feeder = None
    spy = None
    collector = None
    try:
        if isinstance(daemon, BgpdMonDaemon) and daemon.bmp:
            collector = COLLECTORS[args.bmp_collector](f"127.77.{addrs.k}.250", workdir)
            collector.start()
            daemon.collector = (collector.address, collector.port)
        daemon.start()
        receivers = ctx.Process(
            target=receivers_main,
            args=(child_conn, addrs.r, addrs.clients, n, args.startup_timeout),
            daemon=True,
        )
        receivers.start()
        if not parent_conn.poll(args.startup_timeout + 5):
            raise RuntimeError("the receivers did not report")
        msg = parent_conn.recv()
        if msg[0] != "ready":
            raise RuntimeError(f"receivers: {msg[1]}\n{daemon.log_tail()}")
        feeder, fbuf, _ = handshake(addrs.f, addrs.r, args.startup_timeout)
        time.sleep(args.settle)  # let R finish its side of the handshakes (initial syncs, EoR)
        if not daemon.alive():
            raise RuntimeError(f"{impl} exited: {daemon.log_tail()}")
        if profile_out is not None:
            spy = PySpy(daemon.pid, profile_out, args.profile_rate, args.profile_lines)
        result.update(_measure(daemon, feeder, parent_conn, feed, n, args))
        if result["converged"]:
            # What R still does once the clients hold everything (monitoring output).
            total = wait_idle(daemon.pid, daemon.alive)
            if total is not None:
                result["cpu_settled_s"] = total - result["cpu_start_total_s"]
                result["peak_rss_settled_bytes"] = proc_status(daemon.pid, "VmHWM")
        if isinstance(daemon, BgpdMonDaemon) and daemon.alive():
            result["monitoring"] = monitoring_summary(daemon.socket_path)
        if args.dump and isinstance(daemon, BgpdDaemon) and daemon.alive():
            result["dump"] = measure_dump(daemon, workdir)
        if spy is not None:
            spy.stop()
            spy = None
            result["profile"] = str(profile_out)
        result["daemon_log"] = daemon.log_tail(20)  # warnings and errors only (log levels)
        if result.get("timeout") or not result["converged"]:
            result["diagnosis"] = daemon.diagnose() if daemon.alive() else {"exited": True}
            result["log_tail"] = daemon.log_tail(30)
        if receivers.is_alive() and not result.get("receivers_lost"):
            parent_conn.send("finish")
            if parent_conn.poll(120):
                msg = parent_conn.recv()
                while msg[0] != "result" and parent_conn.poll(120):
                    msg = parent_conn.recv()
                if msg[0] == "result":
                    result["check"] = msg[1]
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if spy is not None:
            spy.stop()
        if feeder is not None:
            feeder.close()
        if collector is not None:
            result["collector"] = collector.stop()
        if receivers is not None:
            receivers.join(5)
            if receivers.is_alive():
                receivers.terminate()  # SIGTERM to its PID
                receivers.join(5)
            if receivers.is_alive():
                receivers.kill()
                receivers.join(5)
        daemon.stop()
        parent_conn.close()
        child_conn.close()
        if not args.keep_dirs and not result.get("error") and result["converged"]:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _measure(daemon: Daemon, feeder: socket.socket, conn, feed: bytes, n: int, args) -> dict:
    """Write the feed, keep F alive, follow the receivers; returns the figures."""
    pid = daemon.pid
    view = memoryview(feed)
    off = 0
    total = len(feed)
    sel = selectors.DefaultSelector()
    sel.register(feeder, selectors.EVENT_READ | selectors.EVENT_WRITE, "feeder")
    sel.register(conn, selectors.EVENT_READ, "receivers")
    progress: list = []
    feeder_notification = None
    feeder_closed = None
    receivers_lost = False
    fin = bytearray()
    feed_done_at = None
    done = None
    cpu0 = proc_cpu(pid)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    last_keepalive = t0
    next_report = t0 + 10
    while True:
        for key, events in sel.select(0.2):
            if key.data == "feeder":
                if events & selectors.EVENT_WRITE and off < total:
                    try:
                        off += feeder.send(view[off : off + (1 << 20)])
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        feeder_closed = str(e)
                        sel.unregister(feeder)
                        continue
                    if off >= total:
                        feed_done_at = time.monotonic()
                        sel.modify(feeder, selectors.EVENT_READ, "feeder")
                if events & selectors.EVENT_READ:
                    try:
                        data = feeder.recv(1 << 16)
                    except BlockingIOError:
                        data = None
                    except OSError as e:
                        data, feeder_closed = b"", str(e)
                    if data == b"":
                        feeder_closed = feeder_closed or "EOF"
                        sel.unregister(feeder)
                    elif data:
                        fin += data
                        while len(fin) >= HEADER and len(fin) >= (fin[16] << 8 | fin[17]):
                            length = fin[16] << 8 | fin[17]
                            if fin[18] == 3:
                                feeder_notification = f"{fin[19]}/{fin[20]}"
                            del fin[: max(length, HEADER)]
            else:
                try:
                    msg = conn.recv()
                except EOFError:
                    receivers_lost = True
                    sel.unregister(conn)
                    continue
                if msg[0] == "progress":
                    progress = msg[1]
                elif msg[0] == "done":
                    done, receivers_cpu = msg[1], msg[2]
        now = time.monotonic()
        if done is not None:
            break
        if off >= total and now - last_keepalive >= KEEPALIVE_EVERY:
            last_keepalive = now
            with contextlib.suppress(OSError):
                feeder.send(KEEPALIVE_MSG)
        if not daemon.alive() or now >= deadline or receivers_lost or feeder_closed:
            break
        if any(p["closed"] or p["notification"] for p in progress):
            break  # a session went down: it will not converge
        if now >= next_report:
            next_report = now + 10
            held = [p["held"] for p in progress]
            print(
                f"    {daemon.kind} N={n:,}: {now - t0:.0f} s, fed {off / total:.0%}, "
                f"receivers hold {held}",
                file=sys.stderr,
                flush=True,
            )
    cpu1 = proc_cpu(pid) if daemon.alive() else None
    out: dict = {
        "feed_bytes": total,
        "feed_written_s": (feed_done_at - t0) if feed_done_at else None,
        "fed_bytes": off,
        "feeder_notification": feeder_notification,
        "feeder_closed": feeder_closed,
    }
    if daemon.alive():
        out["cpu_s"] = cpu1 - cpu0
        out["cpu_total_s"] = cpu1
        out["cpu_start_total_s"] = cpu0
        out["peak_rss_bytes"] = proc_status(pid, "VmHWM")
        out["rss_bytes"] = proc_status(pid, "VmRSS")
    else:
        out["exited"] = daemon.proc.returncode if daemon.proc else None
    if done is not None:
        out["converged"] = True
        out["receivers_cpu_s"] = receivers_cpu  # the measuring process, same interval
        out["convergence_s"] = max(r["done_at"] for r in done) - t0
        out["first_prefix_s"] = min(r["first_at"] for r in done) - t0
        out["per_receiver_s"] = [r["done_at"] - t0 for r in done]
        # The slowest receiver's timeline: seconds until it held 10/25/50/75/90/100 % of N.
        out["timeline_s"] = {
            f"{q}%": max(r["marks"][k] for r in done) - t0 for k, q in enumerate(MARKS)
        }
        out["timeline_s"]["100%"] = out["convergence_s"]
    else:
        out["converged"] = False
        out["timeout"] = now >= deadline
        out["receivers_lost"] = receivers_lost
        out["elapsed_s"] = now - t0
        out["progress"] = progress
    return out


# --- profile summary ------------------------------------------------------------------------

#: Frames that mark the event loop waiting (py-spy ``--idle`` samples).
_IDLE = ("EpollSelector.select (selectors.py", "select (selectors.py", "poll (selectors.py")
#: The dispatch frame: what is below it is one callback of the event loop.
_DISPATCH = ("BaseEventLoop._run_once (asyncio/base_events.py", "Handle._run (asyncio/events.py")
#: Phases of the reflector's work, by a frame that marks them (first match from the leaf up).
PHASES = (
    ("monitoring: tap, messages read", "Monitor.received (bgpd/speaker/monitoring.py"),
    ("monitoring: tap, messages written", "Monitor.sent (bgpd/speaker/monitoring.py"),
    ("monitoring: BMP Loc-RIB drain", "BmpService._drain (bgpd/bmp/service.py"),
    ("monitoring: BMP Loc-RIB listener", "LocRibListener.rib_changed (bgpd/bmp/rib.py"),
    ("monitoring: MRT timer", "UpdateLogWriter._on_timer (bgpd/mrt/writer.py"),
    ("monitoring: MRT writer thread", "UpdateLogWriter._run (bgpd/mrt/writer.py"),
    ("export: pack + queue (Speaker._drain)", "Speaker._drain (bgpd/speaker/daemon.py"),
    ("import: Loc-RIB commit + export bookkeeping", "LocRib.commit (bgpd/rib/table.py"),
    ("import: Adj-RIB-In/Loc-RIB apply", "LocRib.announce (bgpd/rib/table.py"),
    ("import: decode (framing, UPDATE, attrs)", "Protocol.receive_data (bgpd/fsm/protocol.py"),
    ("socket writes (transport)", "_SelectorSocketTransport.write"),
    ("socket reads (transport)", "_SelectorSocketTransport._read_ready"),
)


def summarize_profile(path: Path, top: int = 15) -> dict:
    """Own and total time per function from py-spy's raw (collapsed, ``--function``) output.

    Samples whose leaf is the selector's ``select`` are the event loop waiting (idle); the
    percentages are of the busy samples. "Total" counts a function once per sample it is on
    the stack of, below the event loop's dispatch frame (the frames above it are on every
    sample)."""
    own: Counter = Counter()
    total: Counter = Counter()
    phases: Counter = Counter()
    samples = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += c
        leaf = frames[-1]
        if leaf.startswith(_IDLE):
            idle += c
            continue
        own[leaf] += c
        cut = 0
        for i, f in enumerate(frames):
            if f.startswith(_DISPATCH):
                cut = i + 1
        below = frames[cut:] or frames[-1:]
        for f in set(below):
            total[f] += c
        joined = ";".join(below)
        for name, marker in PHASES:
            if marker in joined:
                phases[name] += c
                break
        else:
            phases["other"] += c
    busy = samples - idle
    return {
        "samples": samples,
        "idle_samples": idle,
        "busy_fraction": busy / samples if samples else 0.0,
        "own": [(f, c, c / busy if busy else 0) for f, c in own.most_common(top)],
        "total": [(f, c, c / busy if busy else 0) for f, c in total.most_common(top)],
        "phases": [(f, c, c / busy if busy else 0) for f, c in phases.most_common()],
    }


def print_profile(summary: dict, title: str) -> str:
    lines = [
        f"{title}: {summary['samples']} samples, {summary['idle_samples']} idle (event loop in "
        f"select, including ~0.5 s before the clock starts); percentages of the "
        f"{summary['samples'] - summary['idle_samples']} busy samples"
    ]
    for what, label in (("phases", "by phase"), ("own", "by own time"), ("total", "by total time")):
        lines.append(f"  top {label}:")
        for f, c, frac in summary[what]:
            lines.append(f"    {frac:6.1%} {c:7d}  {f}")
    text = "\n".join(lines)
    print(text)
    return text


# --- the report -----------------------------------------------------------------------------


def summarize(runs: list[dict], impls: list[str], ns: list[int]) -> list[dict]:
    rows = []
    for n in ns:
        base = None
        for impl in impls:
            rs = [r for r in runs if r["impl"] == impl and r["n"] == n and not r["profiled"]]
            if not rs:
                continue
            ok = [r for r in rs if r["converged"]]
            row = {
                "impl": impl,
                "n": n,
                "runs": len(rs),
                "converged": len(ok),
                "correct": sum(1 for r in ok if r.get("check", {}).get("ok")),
            }
            if ok:
                row["median_s"] = statistics.median(r["convergence_s"] for r in ok)
                row["min_s"] = min(r["convergence_s"] for r in ok)
                row["median_cpu_s"] = statistics.median(r["cpu_s"] for r in ok)
                row["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in ok)
                fed = [r["feed_written_s"] for r in ok if r.get("feed_written_s")]
                row["median_feed_written_s"] = statistics.median(fed) if fed else None
            if impl == BASELINE:
                base = row
            rows.append(row)
        for row in rows:
            if row["n"] == n and base and "median_s" in row and "median_s" in base:
                row["ratio_time"] = row["median_s"] / base["median_s"]
                if base["median_cpu_s"] >= 0.05:  # /proc counts 10 ms ticks
                    row["ratio_cpu"] = row["median_cpu_s"] / base["median_cpu_s"]
    return rows


def monitoring_cost(runs: list[dict], ns: list[int]) -> list[dict]:
    """Each monitored variant against bgpd, per N: medians of convergence, CPU (at
    convergence and once idle again) and peak RSS, and their ratios."""

    def medians(impl: str, n: int) -> dict | None:
        ok = [
            r
            for r in runs
            if r["impl"] == impl and r["n"] == n and r["converged"] and not r["profiled"]
        ]
        if not ok:
            return None
        settled = [r["cpu_settled_s"] for r in ok if "cpu_settled_s" in r]
        rss = [r.get("peak_rss_settled_bytes") or r["peak_rss_bytes"] for r in ok]
        return {
            "runs": len(ok),
            "convergence_s": statistics.median(r["convergence_s"] for r in ok),
            "cpu_s": statistics.median(r["cpu_s"] for r in ok),
            "cpu_settled_s": statistics.median(settled) if settled else None,
            "peak_rss_bytes": statistics.median(rss),
        }

    rows = []
    for n in ns:
        base = medians("bgpd", n)
        if base is None:
            continue
        for impl in MONITORED:
            m = medians(impl, n)
            if m is None:
                continue
            row = {"n": n, "impl": impl, "bgpd": base, impl: m}
            for k in ("convergence_s", "cpu_s", "cpu_settled_s", "peak_rss_bytes"):
                if base[k] and m[k] is not None:
                    row[f"ratio_{k}"] = m[k] / base[k]
            row["monitoring"] = [
                r.get("monitoring", {}) for r in runs if r["impl"] == impl and r["n"] == n
            ]
            rows.append(row)
    return rows


COST_HEADERS = ["N", "variant", "what", "bgpd", "variant's", "ratio"]


def cost_table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        a, b = r["bgpd"], r[r["impl"]]
        for key, label, fmt in (
            ("convergence_s", "convergence", common.fmt_seconds),
            ("cpu_s", "R CPU to convergence", common.fmt_seconds),
            ("cpu_settled_s", "R CPU until idle", common.fmt_seconds),
            ("peak_rss_bytes", "peak RSS", lambda v: f"{v / 2**20:.0f} MiB"),
        ):
            out.append(
                [
                    common.fmt_int(r["n"]),
                    r["impl"],
                    label,
                    fmt(a[key]) if a[key] is not None else "",
                    fmt(b[key]) if b[key] is not None else "",
                    common.fmt_ratio(r.get(f"ratio_{key}")),
                ]
            )
    return out


HEADERS = [
    "implementation",
    "N",
    "ok/runs",
    "convergence",
    "min",
    "R CPU",
    "peak RSS",
    "× BIRD time",
    "× BIRD CPU",
]


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        has = "median_s" in r
        out.append(
            [
                r["impl"],
                common.fmt_int(r["n"]),
                f"{r['correct']}/{r['runs']}",
                common.fmt_seconds(r["median_s"]) if has else "no convergence",
                common.fmt_seconds(r["min_s"]) if has else "",
                common.fmt_seconds(r["median_cpu_s"]) if has else "",
                f"{r['peak_rss_bytes'] / 2**20:.0f} MiB" if has else "",
                common.fmt_ratio(r.get("ratio_time")),
                common.fmt_ratio(r.get("ratio_cpu")),
            ]
        )
    return out


def _short(run: dict) -> str:
    if run.get("error"):
        return f"ERROR {run['error']}"
    if not run["converged"]:
        # The counts when the receivers were stopped (more recent than the last progress).
        recs = run.get("check", {}).get("receivers") or run.get("progress", [])
        held = [p["held"] for p in recs]
        why = "timeout" if run.get("timeout") else f"exited {run.get('exited')}"
        return f"NOT CONVERGED ({why} after {run.get('elapsed_s', 0):.0f} s; receivers hold {held})"
    check = run.get("check", {})
    tl = " ".join(f"{k}:{v:.2f}" for k, v in run.get("timeline_s", {}).items())
    return (
        f"{run['convergence_s']:.3f} s (first prefix {run['first_prefix_s']:.3f} s, feed "
        f"accepted {run['feed_written_s'] or 0:.3f} s; held {tl}), R CPU {run['cpu_s']:.2f} s, "
        f"peak RSS {run['peak_rss_bytes'] / 2**20:.0f} MiB, "
        f"check {'ok' if check.get('ok') else 'FAILED'}"
    )


def _check_samples(run: dict, feeder: str, cluster: str) -> list[str]:
    """Problems in the sample attributes (RFC 4456 reflection, next hop kept)."""
    problems = []
    for rec in run.get("check", {}).get("receivers", []):
        for s in rec["samples"]:
            if s.get("originator_id") != feeder:
                problems.append(f"{rec['name']}: ORIGINATOR_ID {s.get('originator_id')}")
            if s.get("cluster_list") != [cluster]:
                problems.append(f"{rec['name']}: CLUSTER_LIST {s.get('cluster_list')}")
            if not str(s.get("next_hop", "")).startswith("192.0.2."):
                problems.append(f"{rec['name']}: NEXT_HOP {s.get('next_hop')}")
            if s.get("local_pref") != 100:
                problems.append(f"{rec['name']}: LOCAL_PREF {s.get('local_pref')}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="100000,1000000", help="prefix counts, comma separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs per implementation and N")
    ap.add_argument("--impl", default="bgpd,bird,gobgp", help="reflectors to measure")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run to converge")
    ap.add_argument(
        "--gobgp-max-n", type=int, default=100000, help="skip GoBGP above this N (0: no limit)"
    )
    ap.add_argument("--clients", type=int, default=4, help="receiving clients")
    ap.add_argument(
        "--dump",
        action="store_true",
        help="after convergence, time `bgpd dump table` of the table on every bgpd run, "
        "pinging the control socket meanwhile",
    )
    ap.add_argument(
        "--interleave",
        action="store_true",
        help="run 1 of every implementation, then run 2 of every one... (default: all runs "
        "of one implementation, then the next)",
    )
    ap.add_argument(
        "--bmp-collector",
        choices=tuple(COLLECTORS),
        default="sink",
        help="bgpd-mon's BMP station: the benchmark's sink, or pmacct's pmbmpd",
    )
    ap.add_argument("--per-set", type=int, default=200, help="prefixes per attribute set")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between up and feed")
    ap.add_argument("--startup-timeout", type=float, default=30.0)
    ap.add_argument(
        "--profile", metavar="DIR", help="also run bgpd once per N under py-spy, raw stacks in DIR"
    )
    ap.add_argument("--profile-only", action="store_true", help="only the py-spy runs")
    ap.add_argument(
        "--profile-impl",
        default="bgpd",
        choices=("bgpd", *MONITORED),
        help="which bgpd --profile runs (default bgpd)",
    )
    ap.add_argument("--profile-rate", type=int, default=1000, help="py-spy samples per second")
    ap.add_argument(
        "--profile-lines", action="store_true", help="py-spy per line instead of per function"
    )
    ap.add_argument("--keep-dirs", action="store_true", help="keep the daemons' directories")
    ap.add_argument("--no-json", action="store_true")
    ap.add_argument("--summarize", metavar="RAW", help="only summarize a py-spy raw file")
    args = ap.parse_args(argv)
    if args.summarize:
        print_profile(summarize_profile(Path(args.summarize)), args.summarize)
        return 0

    ns = [int(x.replace("_", "")) for x in args.n.split(",") if x]
    impls = [x.strip() for x in args.impl.split(",") if x.strip()]
    for impl in impls:
        if impl not in IMPLS:
            ap.error(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every daemon is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.warn_if_busy()
    notes = []
    runs: list[dict] = []
    profiles: dict = {}
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    for n in ns:
        t = time.perf_counter()
        feed, n_updates = build_feed(n, args.per_set)
        print(
            f"N={n:,}: {n_updates:,} UPDATEs, {len(feed) / 2**20:.1f} MiB "
            f"(encoded in {time.perf_counter() - t:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        todo = []
        for impl in impls:
            if impl == "gobgp" and args.gobgp_max_n and n > args.gobgp_max_n:
                notes.append(f"GoBGP skipped at N={n:,} (--gobgp-max-n {args.gobgp_max_n:,})")
                continue
            todo.append(impl)
        repeat = 0 if args.profile_only else args.repeat
        if args.interleave:  # run 1 of each, then run 2 of each...: load drift hits all alike
            order = [(impl, k) for k in range(repeat) for impl in todo]
        else:
            order = [(impl, k) for impl in todo for k in range(repeat)]
        for impl, k in order:
            r = run_once(impl, n, feed, args, k + 1)
            runs.append(r)
            print(f"  {impl} N={n:,} run {k + 1}/{repeat}: {_short(r)}", file=sys.stderr)
            if "dump" in r:
                dd = r["dump"]
                print(
                    f"    dump table: {dd.get('prefixes')} prefixes, {dd.get('entries')} "
                    f"entries, {(dd.get('bytes') or 0) / 2**20:.0f} MiB in {dd['wall_s']:.2f} s "
                    f"({dd['cpu_s']:.2f} s CPU); {dd['pings']} pings meanwhile, median "
                    f"{(dd['ping_median_s'] or 0) * 1000:.0f} ms, slowest "
                    f"{(dd['ping_max_s'] or 0) * 1000:.0f} ms {dd.get('error', '')}",
                    file=sys.stderr,
                )
            problems = _check_samples(r, f"127.77.{r['reflector'].split('.')[2]}.2", r["reflector"])
            if problems:
                r["sample_problems"] = problems
                print("    sample problems: " + "; ".join(problems[:4]), file=sys.stderr)
        for impl in todo:
            if impl == args.profile_impl and args.profile:
                d = Path(args.profile)
                d.mkdir(parents=True, exist_ok=True)
                out = d / f"rr-{impl}-{n}.txt"
                r = run_once(impl, n, feed, args, 0, profile_out=out)
                runs.append(r)
                print(f"  {impl} N={n:,} under py-spy: {_short(r)}", file=sys.stderr)
                if out.exists():
                    s = summarize_profile(out)
                    profiles[n] = {"file": str(out), **s}
                    profiles[n]["text"] = print_profile(s, f"{impl} N={n:,} (py-spy, {out})")
        del feed

    rows = summarize(runs, impls, ns)
    print()
    print(f"Route-reflector convergence, 1 feeder -> R -> {args.clients} clients, {date}")
    print("command: " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))
    text = common.print_table(HEADERS, table_rows(rows)) if rows else "(no runs)"
    cost = monitoring_cost(runs, ns)
    cost_text = ""
    if cost:
        print(
            f"\nMonitoring cost against bgpd (bgpd-mon: MRT update log + BMP to "
            f"{args.bmp_collector}; bgpd-mrt: the log only; bgpd-bmp: BMP only), medians"
        )
        cost_text = common.print_table(COST_HEADERS, cost_table_rows(cost))
        for r in cost:
            for m in r["monitoring"]:
                print(f"  N={r['n']:,} {r['impl']}: {m}")
    for note in notes:
        print("note: " + note)
    for r in runs:
        if not r["converged"] or r.get("error"):
            print(f"{r['impl']} N={r['n']:,} run {r['run']}: {_short(r)}")
    if not args.no_json:
        path = common.write_results(
            "rr",
            {
                "params": {
                    "n": ns,
                    "repeat": args.repeat,
                    "impl": impls,
                    "clients": args.clients,
                    "per_set": args.per_set,
                    "timeout": args.timeout,
                    "hold_time": HOLD_TIME,
                    "gobgp_max_n": args.gobgp_max_n,
                    "bmp_collector": args.bmp_collector,
                },
                "summary": rows,
                "table": text,
                "monitoring_cost": cost,
                "monitoring_table": cost_text,
                "monitoring_markdown": (
                    common.markdown_table(COST_HEADERS, cost_table_rows(cost)) if cost else ""
                ),
                "markdown": common.markdown_table(HEADERS, table_rows(rows)) if rows else "",
                "notes": notes,
                "runs": runs,
                "profiles": profiles,
                "git_paths": ["bgpd"],
            },
        )
        print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

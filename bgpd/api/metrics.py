"""Prometheus metrics and health endpoints: the one place that defines every metric.

:data:`METRICS` declares each metric's name, type, help text and labels. :class:`Collector`
fills them at scrape time from a snapshot of the speaker (``Speaker.snapshot()``, a plain
mapping, see below): nothing is counted on the UPDATE path, the speaker's own counters are
read when Prometheus asks. :class:`MetricsServer` serves ``/metrics``, ``/livez`` and
``/readyz`` on one HTTP listener (asyncio, no threads); the health rules are in
:mod:`.health`.

The snapshot (every key optional but ``started`` and a neighbor's ``address``)::

    {
      "router_id": "192.0.2.1", "asn": 64512,
      "started": 1234.5,                  # time.monotonic() at start
      "stopping": false, "gr_in_progress": false,
      "neighbors": [{
          "address": "192.0.2.2", "asn": 64512, "state": "Established",
          "enabled": true,                # false: administratively down
          "dynamic": false,               # accepted from a dynamic_neighbors range
          "flaps": 0,
          "updates": {"in": 10, "out": 12},
          "messages": {"in": {"open": 1, "update": 10, ...}, "out": {...}},
          "prefixes": {"received": 5, "accepted": 5, "advertised": 7},
      }],
      "rib": {"ipv4": 1200, "ipv6": 300},
      "fib": {"routes": 1100, "sync_errors": 0},      # or null: no FIB, metrics left out
      "reloads": {"ok": 3, "error": 1,
                  "last_timestamp": 1700000000.0,    # Unix time of the last successful one
                  "last_result": "ok"},              # "ok", "error" or null (none yet)
      "dynamic_refused": 0,
      "bfd": {"sessions": [...], "drops": {...}, "bgp_down_events": 0},  # or null: no BFD
      "monitoring": {                                 # docs/monitoring.md; null parts: off
          "mrt": {"records": 10, "bytes": 900, "dropped_records": 0, "errors": 0, ...},
          "bmp": {"stations": [{"station": "192.0.2.50:1790", "state": "up", "connects": 1,
                                "drops": 0, "sent_bytes": 1234, "buffered": 0}, ...]},
          "dumps": {"count": 1, ...},
      },
    }
"""

import asyncio
import gzip
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import structlog
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from bgpd import __version__

from . import health
from .server import stop_serving

log = structlog.get_logger("bgpd.api")

# --- the metrics ------------------------------------------------------------------------


@dataclass(frozen=True)
class Def:
    """One metric: its exposed name (counters end in ``_total``), type, help and labels."""

    name: str
    kind: str  # "gauge" or "counter"
    help: str
    labels: tuple[str, ...] = ()

    def family(self) -> Metric:
        cls = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        return cls(self.name, self.help, labels=list(self.labels))


NEIGHBOR = ("neighbor", "asn")

# RFC 4271 §8.2.2 states as numbers, in the order of the BGP4-MIB's bgpPeerState.
STATE_VALUES = {
    "Idle": 1,
    "Connect": 2,
    "Active": 3,
    "OpenSent": 4,
    "OpenConfirm": 5,
    "Established": 6,
}
MESSAGE_TYPES = ("open", "update", "notification", "keepalive", "route_refresh")
PREFIX_DIRECTIONS = ("received", "accepted", "advertised")
RELOAD_RESULTS = ("ok", "error")
BFD_STATES = {"AdminDown": 0, "Down": 1, "Init": 2, "Up": 3}

METRICS: tuple[Def, ...] = (
    Def(
        "bgpd_info",
        "gauge",
        "Always 1; the labels describe this bgpd.",
        ("version", "router_id", "asn"),
    ),
    Def(
        "bgpd_ready",
        "gauge",
        "1 when bgpd is ready (the /readyz rule: every neighbor Established during the first "
        f"{health.STARTUP_GRACE:g} s, then at least one; no graceful restart in progress), else 0.",
    ),
    Def(
        "bgpd_neighbor_state",
        "gauge",
        "BGP session state: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established.",
        NEIGHBOR,
    ),
    Def("bgpd_neighbor_up", "gauge", "1 when the session is Established, else 0.", NEIGHBOR),
    Def(
        "bgpd_neighbor_admin_down",
        "gauge",
        "1 when the session is administratively down (shutdown: true, bgpd neighbor shutdown, "
        "stopped by max_prefixes), else 0.",
        NEIGHBOR,
    ),
    Def(
        "bgpd_neighbor_flaps_total",
        "counter",
        "Times the session left Established.",
        NEIGHBOR,
    ),
    Def(
        "bgpd_neighbor_prefixes",
        "gauge",
        "Prefixes received from the neighbor, accepted by import policy, and advertised to it.",
        (*NEIGHBOR, "direction"),
    ),
    Def(
        "bgpd_neighbor_updates_total",
        "counter",
        "UPDATE messages received (in) and sent (out).",
        (*NEIGHBOR, "direction"),
    ),
    Def(
        "bgpd_neighbor_messages_total",
        "counter",
        "BGP messages received (in) and sent (out), by type.",
        (*NEIGHBOR, "direction", "type"),
    ),
    Def("bgpd_rib_routes", "gauge", "Prefixes in the Loc-RIB.", ("family",)),
    Def("bgpd_fib_routes", "gauge", "Routes bgpd has installed in the kernel FIB."),
    Def("bgpd_fib_sync_errors_total", "counter", "Kernel FIB writes that failed."),
    Def(
        "bgpd_dynamic_neighbors_refused_total",
        "counter",
        "Connections from dynamic_neighbors ranges refused because the range was full.",
    ),
    Def(
        "bgpd_bfd_session_state",
        "gauge",
        "BFD session state (RFC 5880): 0 AdminDown, 1 Down, 2 Init, 3 Up.",
        ("neighbor", "local"),
    ),
    Def(
        "bgpd_bfd_session_flaps_total",
        "counter",
        "Times the BFD session left Up.",
        ("neighbor", "local"),
    ),
    Def(
        "bgpd_bfd_detection_time_seconds",
        "gauge",
        "The BFD session's negotiated detection time.",
        ("neighbor", "local"),
    ),
    Def(
        "bgpd_bfd_packets_dropped_total",
        "counter",
        "BFD packets dropped, by reason (malformed, truncated, wrong_version, wrong_ttl, "
        "auth_failure, no_session).",
        ("reason",),
    ),
    Def("bgpd_bfd_bgp_down_total", "counter", "BGP sessions BFD took down (Cease 6/10)."),
    Def("bgpd_reloads_total", "counter", "Config reloads, by result (ok, error).", ("result",)),
    Def(
        "bgpd_last_reload_timestamp_seconds",
        "gauge",
        "Unix time of the last successful config reload (absent before the first).",
    ),
    Def("bgpd_mrt_records_total", "counter", "Records taken by the MRT update log."),
    Def("bgpd_mrt_bytes_total", "counter", "Octets taken by the MRT update log."),
    Def(
        "bgpd_mrt_dropped_records_total",
        "counter",
        "MRT update log records dropped because the disk did not keep up (the buffer bound).",
    ),
    Def("bgpd_mrt_write_errors_total", "counter", "MRT update log writes that failed."),
    Def(
        "bgpd_bmp_station_up",
        "gauge",
        "1 when the BMP station is connected, else 0.",
        ("station",),
    ),
    Def(
        "bgpd_bmp_station_connects_total",
        "counter",
        "Connections made to the BMP station.",
        ("station",),
    ),
    Def(
        "bgpd_bmp_station_drops_total",
        "counter",
        "BMP streams dropped because the station did not keep up (resynchronised later).",
        ("station",),
    ),
    Def(
        "bgpd_bmp_station_sent_bytes_total",
        "counter",
        "Octets queued for the BMP station.",
        ("station",),
    ),
    Def(
        "bgpd_bmp_station_queued_bytes",
        "gauge",
        "Octets waiting to be sent to the BMP station.",
        ("station",),
    ),
    Def(
        "bgpd_last_reload_success",
        "gauge",
        "1 when the last config reload succeeded, 0 when it failed (absent before the first).",
    ),
)
BY_NAME = {d.name: d for d in METRICS}


class Collector:
    """A prometheus_client collector that reads ``snapshot()`` once per scrape."""

    def __init__(
        self,
        snapshot: Callable[[], Mapping],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snapshot = snapshot
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        for d in METRICS:
            yield d.family()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        fams = {d.name: d.family() for d in METRICS}

        def add(name: str, labels: tuple, value: float) -> None:
            fams[name].add_metric([str(x) for x in labels], value)

        add("bgpd_info", (__version__, snap.get("router_id", ""), snap.get("asn", "")), 1)
        add("bgpd_ready", (), int(health.readiness(snap, self.clock()).ok))

        for n in snap.get("neighbors", ()):
            who = (n["address"], n.get("asn", ""))
            state = n.get("state", "Idle")
            add("bgpd_neighbor_state", who, STATE_VALUES.get(state, 0))
            add("bgpd_neighbor_up", who, int(state == "Established"))
            add("bgpd_neighbor_admin_down", who, int(not n.get("enabled", True)))
            add("bgpd_neighbor_flaps_total", who, n.get("flaps", 0))
            prefixes = n.get("prefixes")
            if prefixes is not None:
                for direction in PREFIX_DIRECTIONS:
                    add("bgpd_neighbor_prefixes", (*who, direction), prefixes.get(direction, 0))
            updates = n.get("updates") or {}
            messages = n.get("messages") or {}
            for direction in ("in", "out"):
                add("bgpd_neighbor_updates_total", (*who, direction), updates.get(direction, 0))
                counts = messages.get(direction) or {}
                for mtype in MESSAGE_TYPES:
                    add(
                        "bgpd_neighbor_messages_total",
                        (*who, direction, mtype),
                        counts.get(mtype, 0),
                    )

        for family, count in sorted((snap.get("rib") or {}).items()):
            add("bgpd_rib_routes", (family,), count)

        fib = snap.get("fib")
        if fib is not None:
            add("bgpd_fib_routes", (), fib.get("routes", 0))
            add("bgpd_fib_sync_errors_total", (), fib.get("sync_errors", 0))

        add("bgpd_dynamic_neighbors_refused_total", (), snap.get("dynamic_refused", 0))

        bfd = snap.get("bfd")
        if bfd is not None:
            for r in bfd.get("sessions", ()):
                who = (r.get("neighbor") or r.get("peer"), r.get("local"))
                add("bgpd_bfd_session_state", who, BFD_STATES.get(r.get("state"), 1))
                add("bgpd_bfd_session_flaps_total", who, r.get("flaps", 0))
                add("bgpd_bfd_detection_time_seconds", who, r.get("detection_time_ms", 0) / 1e3)
            for reason, count in sorted((bfd.get("drops") or {}).items()):
                add("bgpd_bfd_packets_dropped_total", (reason,), count)
            add("bgpd_bfd_bgp_down_total", (), bfd.get("bgp_down_events", 0))

        reloads = snap.get("reloads") or {}
        for result in RELOAD_RESULTS:
            add("bgpd_reloads_total", (result,), reloads.get(result, 0))
        if reloads.get("last_timestamp") is not None:
            add("bgpd_last_reload_timestamp_seconds", (), reloads["last_timestamp"])
        if reloads.get("last_result") in RELOAD_RESULTS:
            add("bgpd_last_reload_success", (), int(reloads["last_result"] == "ok"))

        mon = snap.get("monitoring") or {}
        mrt = mon.get("mrt")
        if mrt is not None:
            add("bgpd_mrt_records_total", (), mrt.get("records", 0))
            add("bgpd_mrt_bytes_total", (), mrt.get("bytes", 0))
            add("bgpd_mrt_dropped_records_total", (), mrt.get("dropped_records", 0))
            add("bgpd_mrt_write_errors_total", (), mrt.get("errors", 0))
        for st in (mon.get("bmp") or {}).get("stations", ()):
            who = (st["station"],)
            add("bgpd_bmp_station_up", who, int(st.get("state") == "up"))
            add("bgpd_bmp_station_connects_total", who, st.get("connects", 0))
            add("bgpd_bmp_station_drops_total", who, st.get("drops", 0))
            add("bgpd_bmp_station_sent_bytes_total", who, st.get("sent_bytes", 0))
            add("bgpd_bmp_station_queued_bytes", who, st.get("buffered", 0))

        # A family without samples (no FIB, no reload yet) is left out entirely.
        yield from (f for f in fams.values() if f.samples)


def make_registry(
    snapshot: Callable[[], Mapping],
    clock: Callable[[], float] = time.monotonic,
    process: bool = True,
) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one) with the bgpd collector
    and, with ``process``, the standard process_*, python_info and python_gc_* metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(Collector(snapshot, clock))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


# --- the HTTP listener ------------------------------------------------------------------

MAX_HEAD = 16384  # octets of request line and headers
READ_TIMEOUT = 10.0  # seconds to receive the request head
WRITE_TIMEOUT = 30.0  # seconds to send the response
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"
_INDEX = b"bgpd\n\n/metrics  Prometheus metrics\n/livez    liveness\n/readyz   readiness\n"


class _BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text


class MetricsServer:
    """``/metrics``, ``/livez`` and ``/readyz`` over HTTP/1.1 (one request per connection).

    ``health()`` returns ``{"live": bool, "ready": bool, "live_reason": str,
    "ready_reason": str}`` (``Speaker.cmd_health``); ``/livez`` and ``/readyz`` answer 200
    or 503 with the reason as the body. Port 0 picks a free port (see :attr:`port`).
    """

    def __init__(
        self,
        address: str,
        port: int,
        snapshot: Callable[[], Mapping],
        health: Callable[[], Mapping],
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.address = str(address)
        self.port = int(port)
        self.health = health
        self.registry = registry if registry is not None else make_registry(snapshot)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.address, self.port, limit=MAX_HEAD, reuse_address=True
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics listening", address=self.address, port=self.port)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await stop_serving(server, self._clients)

    async def __aenter__(self) -> "MetricsServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.close()
            return
        self._clients.add(writer)
        try:
            try:
                method, target, headers = await asyncio.wait_for(_read_head(reader), READ_TIMEOUT)
            except _BadRequest as e:
                await _respond(writer, e.status, _TEXT, e.text.encode() + b"\n")
                return
            status, ctype, body, extra = self.respond(method, target, headers)
            await _respond(writer, status, ctype, body, extra, head_only=method == "HEAD")
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    def respond(self, method: str, target: str, headers: dict) -> tuple[int, str, bytes, dict]:
        """(status, content type, body, extra headers) for one request."""
        path = target.split("?", 1)[0]
        if path not in ("/", "/metrics", "/livez", "/readyz"):
            return 404, _TEXT, b"not found: try /metrics, /livez or /readyz\n", {}
        if method not in ("GET", "HEAD"):
            return 405, _TEXT, b"method not allowed\n", {"Allow": "GET, HEAD"}
        if path == "/":
            return 200, _TEXT, _INDEX, {}
        if path == "/metrics":
            return self._metrics(headers)
        try:
            h = self.health()
        except Exception as e:
            log.exception("health check failed")
            return 503, _TEXT, f"health check failed: {type(e).__name__}: {e}\n".encode(), {}
        which = "live" if path == "/livez" else "ready"
        ok = bool(h[which])
        reason = h.get(f"{which}_reason") or h.get("reason") or which
        return (200 if ok else 503), _TEXT, f"{reason}\n".encode(), {}

    def _metrics(self, headers: dict) -> tuple[int, str, bytes, dict]:
        encoder, ctype = choose_encoder(headers.get("accept", ""))
        try:
            body = encoder(self.registry)
        except Exception as e:
            log.exception("metrics collection failed")
            return 500, _TEXT, f"metrics collection failed: {type(e).__name__}: {e}\n".encode(), {}
        extra = {}
        if "gzip" in headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            extra["Content-Encoding"] = "gzip"
        return 200, ctype, body, extra


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict]:
    """The request line and headers; the body (a GET has none) is never read."""
    size = 0
    lines = []
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line longer than the stream's limit
            raise _BadRequest(431, "request head too large") from None
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        size += len(line)
        if size > MAX_HEAD:
            raise _BadRequest(431, "request head too large")
        line = line.rstrip(b"\r\n")
        if not line:
            if lines:
                break
            continue  # blank lines before the request line are allowed (RFC 9112 §2.2)
        lines.append(line)
    try:
        method, target, version = lines[0].decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(400, f"unsupported protocol {version}")
    headers = {}
    for raw in lines[1:]:
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    ctype: str,
    body: bytes,
    extra: dict | None = None,
    head_only: bool = False,
) -> None:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(body)
    await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

"""The HTTP listener: a real MetricsServer on 127.0.0.1 (ephemeral port), real requests with
urllib from a worker thread while the server runs on the test's event loop."""

import asyncio
import gzip
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bgpd.api.metrics import MetricsServer

T0 = 100.0


class Fake:
    """A speaker stand-in: a snapshot and a health answer the tests change."""

    def __init__(self):
        self.snap = {
            "router_id": "192.0.2.10",
            "asn": 64512,
            "started": T0,
            "neighbors": [
                {
                    "address": "192.0.2.1",
                    "asn": 65001,
                    "state": "Established",
                    "flaps": 1,
                    "prefixes": {"received": 5, "accepted": 5, "advertised": 2},
                }
            ],
            "rib": {"ipv4": 5, "ipv6": 0},
        }
        self.health_result = {
            "live": True,
            "ready": False,
            "reason": "not ready: 192.0.2.1 not Established yet",
            "live_reason": "live",
            "ready_reason": "not ready: 192.0.2.1 not Established yet",
        }
        self.scrapes = 0

    def snapshot(self):
        self.scrapes += 1
        return self.snap

    def health(self):
        if isinstance(self.health_result, Exception):
            raise self.health_result
        return self.health_result


@pytest.fixture
async def server():
    fake = Fake()
    srv = MetricsServer("127.0.0.1", 0, fake.snapshot, fake.health)
    await srv.start()
    srv.fake = fake
    try:
        yield srv
    finally:
        await srv.close()


def _get(url, method="GET", headers=None):
    """(status, headers, body) — error statuses included — with a fresh connection."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


async def get(url, **kw):
    return await asyncio.to_thread(_get, url, **kw)


async def test_port_0_picks_a_free_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


async def test_metrics(server):
    status, headers, body = await get(server.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    text = body.decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    up = fams["bgpd_neighbor_up"].samples
    assert [(s.labels, s.value) for s in up] == [({"neighbor": "192.0.2.1", "asn": "65001"}, 1)]
    assert "process_cpu_seconds" in fams  # the default process collector
    assert server.fake.scrapes == 1


async def test_metrics_query_string_is_ignored(server):
    status, _, body = await get(server.url + "/metrics?x=1")
    assert status == 200 and b"bgpd_rib_routes" in body


async def test_metrics_gzip(server):
    status, headers, body = await get(server.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"bgpd_neighbor_state" in gzip.decompress(body)


async def test_metrics_openmetrics(server):
    accept = "application/openmetrics-text; version=1.0.0"
    status, headers, body = await get(server.url + "/metrics", headers={"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_metrics_collection_failure_is_a_500(server):
    server.fake.snap = {"neighbors": [{}]}  # no "started", a neighbor without address
    status, _, body = await get(server.url + "/metrics")
    assert status == 500
    assert body.startswith(b"metrics collection failed: KeyError")
    # and the listener keeps serving
    server.fake.snap = {"started": T0}
    assert (await get(server.url + "/metrics"))[0] == 200


async def test_livez_and_readyz(server):
    status, _, body = await get(server.url + "/livez")
    assert (status, body) == (200, b"live\n")
    status, _, body = await get(server.url + "/readyz")
    assert (status, body) == (503, b"not ready: 192.0.2.1 not Established yet\n")
    server.fake.health_result = {
        "live": False,
        "ready": True,
        "live_reason": "not live: bgpd is stopping",
        "ready_reason": "ready: 1 of 1 neighbors Established",
    }
    status, _, body = await get(server.url + "/livez")
    assert (status, body) == (503, b"not live: bgpd is stopping\n")
    status, _, body = await get(server.url + "/readyz")
    assert (status, body) == (200, b"ready: 1 of 1 neighbors Established\n")


async def test_health_failure_is_a_503(server):
    server.fake.health_result = RuntimeError("boom")
    status, _, body = await get(server.url + "/readyz")
    assert (status, body) == (503, b"health check failed: RuntimeError: boom\n")


async def test_head(server):
    status, headers, body = await get(server.url + "/livez", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(b"live\n"))


async def test_index_404_and_405(server):
    status, _, body = await get(server.url + "/")
    assert status == 200 and b"/metrics" in body
    status, _, body = await get(server.url + "/nope")
    assert status == 404
    status, headers, _ = await get(server.url + "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


async def _raw(server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return reply


async def test_bare_newlines_and_http_1_0(server):
    reply = await _raw(server, b"GET /livez HTTP/1.0\n\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\nlive\n")


async def test_malformed_requests(server):
    assert (await _raw(server, b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert (await _raw(server, b"GET / SPDY/3\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert (await _raw(server, b"GET / HTTP/1.1\r\nno colon\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    big = b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n"
    assert (await _raw(server, big)).startswith(b"HTTP/1.1 431 ")
    many = b"GET / HTTP/1.1\r\n" + b"X-A: aaaaaaaa\r\n" * 2000 + b"\r\n"
    assert (await _raw(server, many)).startswith(b"HTTP/1.1 431 ")


async def test_a_client_that_goes_away_does_not_hurt(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /metr")
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.05)
    assert (await get(server.url + "/livez"))[0] == 200


async def test_close_drops_idle_connections_and_stops_listening():
    fake = Fake()
    srv = MetricsServer("127.0.0.1", 0, fake.snapshot, fake.health)
    await srv.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    await asyncio.sleep(0.05)  # accepted, waiting for the request
    await asyncio.wait_for(srv.close(), 2)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", srv.port)


async def test_address_in_use():
    fake = Fake()
    async with MetricsServer("127.0.0.1", 0, fake.snapshot, fake.health) as first:
        second = MetricsServer("127.0.0.1", first.port, fake.snapshot, fake.health)
        with pytest.raises(OSError):
            await second.start()

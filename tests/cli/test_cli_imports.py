"""What the daemon imports: the parts a config does not ask for stay unloaded (their memory is
part of every bgpd's RSS), and asyncio comes without ssl (bgpd.cli.asyncio_without_tls).

Each check runs a fresh interpreter (this one has imported everything already).
"""

import json
import subprocess
import sys
import textwrap

# Loaded only when the config asks for them (docs/performance.md, "The daemon's own memory").
OPTIONAL = (
    "ssl",  # asyncio's TLS support: bgpd never speaks TLS
    "netaddr",  # prefix lists
    "bgpd.bird",  # running on a BIRD configuration
    "bgpd.bfd",  # bfd: sections
    "bgpd.mrt",  # mrt: the update log, table dumps
    "bgpd.bmp",  # bmp: stations
    "bgpd.kernel.netlink",  # kernel: / host_routes:
    "bgpd.kernel.fib",
    "ctypes",
    "bgpd.api.metrics",  # metrics:
    "prometheus_client",
)

PLAIN = """\
router_id: 192.0.2.10
asn: 64512
control_socket: {sock}
neighbors:
  - address: 192.0.2.1
    asn: 64512
    passive: true
    rr_client: true
"""


def _run(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_plain_daemon_loads_nothing_it_does_not_use(tmp_path):
    """`bgpd run`'s imports (the command line, then the daemon), a start and a stop on a
    config without kernel, BFD, MRT, BMP, metrics or prefix lists."""
    cfg = tmp_path / "bgpd.yaml"
    cfg.write_text(PLAIN.format(sock=tmp_path / "bgpd.sock"))
    got = _run(
        f"""
        import json, sys
        import bgpd.cli.main  # first, as `bgpd run` does (then asyncio, without ssl)
        import asyncio
        from bgpd.config import load
        from bgpd.speaker import Speaker

        async def main():
            sp = Speaker(load({str(cfg)!r}), {str(cfg)!r}, asyncio.get_running_loop())
            await sp.start()
            up = sp.control is not None
            await sp.stop(marker=False)
            return up

        up = asyncio.run(main())
        print(json.dumps({{"up": up, "modules": sorted(sys.modules)}}))
        """
    )
    assert got["up"]
    loaded = set(got["modules"])
    assert "asyncio" in loaded and "bgpd.speaker.daemon" in loaded
    assert [m for m in OPTIONAL if m in loaded] == []


def test_asyncio_without_tls_works_and_ssl_stays_importable():
    got = _run(
        """
        import json, sys
        import bgpd.cli  # imports asyncio with ssl hidden
        import asyncio
        import asyncio.base_events

        before = "ssl" in sys.modules

        async def echo():
            async def handle(r, w):
                w.write(await r.readexactly(5))
                await w.drain()
                w.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"hello")
            data = await r.readexactly(5)
            w.close()
            server.close()
            await server.wait_closed()
            return data.decode()

        data = asyncio.run(echo())
        import ssl  # the real module, for whoever needs it later (prometheus_client)

        print(json.dumps({
            "ssl_before": before,
            "asyncio_ssl": asyncio.base_events.ssl is None,
            "echo": data,
            "ssl_real": hasattr(ssl, "SSLContext"),
            "again": bgpd.cli.asyncio_without_tls(),
        }))
        """
    )
    assert got == {
        "ssl_before": False,
        "asyncio_ssl": True,
        "echo": "hello",
        "ssl_real": True,
        "again": False,  # asyncio is imported: nothing more to do
    }


def test_nothing_changes_when_asyncio_came_first():
    got = _run(
        """
        import json, sys
        import asyncio
        import bgpd.cli
        import asyncio.base_events

        print(json.dumps({
            "ssl": "ssl" in sys.modules,
            "asyncio_ssl": asyncio.base_events.ssl is not None,
        }))
        """
    )
    assert got == {"ssl": True, "asyncio_ssl": True}


def test_bgpd_bird_runs_its_daemon_without_tls_or_yaml(tmp_path):
    """bgpd-bird (bgpd.birdctl.process) takes its runner through the command-line layer, so
    asyncio comes without ssl there too; without a bgpd.yaml beside the BIRD file, PyYAML is
    not imported. The daemon starts and stops on a BIRD file (no kernel protocol: nothing
    reaches the host's tables)."""
    cfg = tmp_path / "bird.cfg"
    cfg.write_text(
        "router id 192.0.2.10;\n"
        "listen bgp address 127.0.77.1 port 17979;\n"
        "protocol device { }\n"
        "protocol bgp peer1 {\n"
        "  local 127.0.77.1 as 64512;\n"
        "  neighbor 127.0.77.2 port 1 as 64512;\n"
        "  passive on;\n"
        "  import all;\n"
        "}\n"
    )
    got = _run(
        f"""
        import json, sys, threading, time, os, signal
        import bgpd.birdctl.process as process

        run = process._resolve(process.RUNNER)
        before = {{m: m in sys.modules for m in ("ssl", "yaml")}}
        opts = process.parse_args(["bird", "-f", "-c", {str(cfg)!r}, "-s", {str(tmp_path / "bird.ctl")!r}], 4)
        threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        status = run(opts)
        print(json.dumps({{
            "before": before,
            "status": status,
            "after": {{m: m in sys.modules for m in ("ssl", "yaml")}},
        }}))
        """
    )
    assert got == {
        "before": {"ssl": False, "yaml": False},
        "status": 0,
        "after": {"ssl": False, "yaml": False},
    }

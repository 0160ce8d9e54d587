"""Health-checked services: the checks, run on the event loop, and what their results do.

Each service of the ``services`` config has one ``call_at`` timer. When it fires, the check
starts as a task (a TCP connection, an HTTP GET, or a ``sh -c`` subprocess), bounded by the
service's timeout; the loop never waits for it. The result goes through the service's
rise/fall hysteresis (:class:`bgpd.rde.health.Hysteresis`); a change of state announces the
prefixes as configured (up), or withdraws them or announces them with the ``on_fail``
attributes (down), as routes of the owner ``NAME`` of kind ``service`` in the engine
(:meth:`bgpd.rde.Rde.route_add`). The next check is due one interval after this one
started (a check never runs twice at once: the timeout is at most the interval).

A reload (:meth:`Services.apply`) adds and removes services and changes the others in
place: a service whose check is unchanged keeps its state and its schedule.
"""

import asyncio
import contextlib
import ipaddress
import os
import signal
import time
from urllib.parse import urlsplit

import structlog

from bgpd.config.services import WITHDRAW, split_host_port
from bgpd.rde.health import DOWN, UP, Hysteresis
from bgpd.rde.origins import SERVICE, RouteSpec, parse_prefix

log = structlog.get_logger("bgpd.services")

OUTPUT_LIMIT = 200  # characters of a failing command's output kept for show services


# --- the checks: coroutines returning (ok, detail) ---------------------------------------------


def _why(e: OSError) -> str:
    """``Connection refused`` rather than asyncio's ``Connect call failed (...)``."""
    return os.strerror(e.errno) if e.errno else str(e)


async def check_tcp(target: str, timeout: float) -> tuple[bool, str]:
    host, port = split_host_port(target)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f"no answer in {timeout:g}s"
    except OSError as e:
        return False, _why(e)
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return True, "connected"


async def check_http(url: str, timeout: float) -> tuple[bool, str]:
    """``GET`` the URL (HTTP/1.0, no redirects followed): a status below 400 passes, as with
    ``curl -f``."""
    parts = urlsplit(url)
    host, port = split_host_port(parts.netloc)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = parts.netloc
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port or 80)
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: bgpd-healthcheck\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await reader.readline()
    except TimeoutError:
        return False, f"no answer in {timeout:g}s"
    except OSError as e:
        return False, _why(e)
    finally:
        if writer is not None:
            writer.close()
    fields = line.decode("latin-1").split(None, 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        return False, f"not an HTTP answer: {line[:60]!r}"
    status = int(fields[1])
    return status < 400, f"HTTP {status}"


async def check_command(command: str, timeout: float) -> tuple[bool, str]:
    """``sh -c COMMAND`` in a session of its own: exit 0 passes. On timeout the whole
    process group it started is killed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        return False, f"cannot run: {e.strerror or e}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the shell we started
        with contextlib.suppress(Exception):
            await proc.wait()
        return False, f"did not finish in {timeout:g}s"
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    text = out.decode("utf-8", "replace").strip().splitlines()
    last = text[-1][:OUTPUT_LIMIT] if text else ""
    rc = proc.returncode
    detail = f"exit {rc}" if rc is not None and rc >= 0 else f"killed by signal {-(rc or 0)}"
    return rc == 0, f"{detail}: {last}" if last else detail


CHECKS = {"tcp": check_tcp, "http": check_http, "command": check_command}


# --- one service -------------------------------------------------------------------------------


def spec_of(cfg) -> RouteSpec:
    """The attributes of the service's routes while it is up."""
    return RouteSpec(
        next_hop=ipaddress.ip_address(cfg.next_hop).packed if cfg.next_hop else None,
        communities=cfg.communities,
        large_communities=cfg.large_communities,
        local_pref=cfg.local_pref,
        med=cfg.med,
        as_path_prepend=cfg.as_path_prepend,
    )


def fail_spec_of(cfg) -> RouteSpec | None:
    """The attributes while it is down, or None: withdrawn."""
    if cfg.on_fail == WITHDRAW:
        return None
    f = cfg.on_fail
    return spec_of(cfg).degraded(
        RouteSpec(
            communities=f.communities,
            large_communities=f.large_communities,
            local_pref=f.local_pref,
            med=f.med,
            as_path_prepend=f.as_path_prepend or 0,
        )
    )


class Service:
    """A configured service at run time: its state, its timer, its running check."""

    def __init__(self, cfg, owner: "Services") -> None:
        self.cfg = cfg
        self.owner = owner
        self.health = Hysteresis(cfg.rise, cfg.fall)
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None
        self.due: float | None = None  # loop time of the next check
        self.started: float | None = None  # loop time the running (or last) check started
        self.last: dict | None = None  # the last result
        self.since: float | None = None  # wall-clock time of the last state change
        self.checks = 0
        self.failures = 0

    @property
    def name(self) -> str:
        return self.cfg.name

    def schedule(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.due = when
        self.handle = self.owner.loop.call_at(when, self._fire)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.due = None

    def _fire(self) -> None:
        self.handle = None
        if self.task is not None:  # cannot happen (timeout <= interval); never run two
            self.schedule(self.owner.loop.time() + self.cfg.interval)
            return
        self.started = self.owner.loop.time()
        self.task = self.owner.loop.create_task(self._run(self.cfg))

    async def _run(self, cfg) -> None:
        check = CHECKS[cfg.check_kind]
        t0 = self.owner.loop.time()
        try:
            ok, detail = await check(cfg.target, cfg.check_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a check must never take the daemon down
            log.exception("health check failed to run", service=cfg.name)
            ok, detail = False, f"internal error: {type(e).__name__}: {e}"
        finally:
            if self.task is asyncio.current_task():  # not a newer check's
                self.task = None
        # A reload may have changed the config while the check ran: what it checked is
        # still the service's check unless that changed (then Services.apply cancelled
        # this task and started the new check).
        now_cfg = self.cfg
        self.result(ok, detail, self.owner.loop.time() - t0)
        self.schedule(max(self.owner.loop.time(), (self.started or t0) + now_cfg.interval))

    def result(self, ok: bool, detail: str, took: float) -> None:
        self.checks += 1
        if not ok:
            self.failures += 1
        self.last = {"ok": ok, "detail": detail, "at": time.time(), "took": round(took, 4)}
        before = self.health.state
        new = self.health.result(ok)
        if new is None:
            if not ok or before != UP:
                log.debug("health check", service=self.name, ok=ok, detail=detail)
            return
        self.since = time.time()
        log.info(
            "service is up" if new == UP else "service is down",
            service=self.name,
            was=before,
            detail=detail,
            rise=self.cfg.rise,
            fall=self.cfg.fall,
        )
        self.announce()

    def announce(self) -> None:
        """Make the engine's routes of this service match its state: up, the configured
        attributes; down, the ``on_fail`` ones or none; no result yet, what is announced
        stays (but prefixes a reload removed go)."""
        rde = self.owner.sp.rde
        cfg = self.cfg
        state = self.health.state
        keys = [parse_prefix(text)[:2] for text in cfg.prefix]
        if state in (UP, DOWN):
            now = time.monotonic()
            keep = []
            for fam, p in keys:
                spec = spec_of(cfg) if state == UP else fail_spec_of(cfg)
                if spec is not None:
                    rde.origins.add(SERVICE, cfg.name, fam, p, spec, now)
                    keep.append((fam, p))
            keys = keep
        rde.route_flush(cfg.name, kind=SERVICE, keep=keys)  # commits
        self.owner.sp.kick()

    @property
    def announced(self) -> str:
        state = self.health.state
        if state == UP:
            return "announced"
        if state == DOWN:
            return "withdrawn" if self.cfg.on_fail == WITHDRAW else "announced with on_fail"
        return "not yet checked"

    def status(self) -> dict:
        loop_now = self.owner.loop.time()
        cfg = self.cfg
        return {
            "name": cfg.name,
            "prefixes": list(cfg.prefix),
            "check": cfg.check_kind,
            "target": cfg.target,
            "interval": cfg.interval,
            "timeout": cfg.check_timeout,
            "rise": cfg.rise,
            "fall": cfg.fall,
            "state": self.health.state,
            "routes": self.announced,
            "streak": self.health.streak,
            "since": self.since,
            "checks": self.checks,
            "failures": self.failures,
            "changes": self.health.changes,
            "running": self.task is not None,
            "next_check_in": None if self.due is None else max(0.0, self.due - loop_now),
            "last": self.last,
        }


class Services:
    """Every configured service of a running daemon."""

    def __init__(self, sp) -> None:
        self.sp = sp
        self.loop = sp.loop
        self.services: dict[str, Service] = {}

    def start(self, configs) -> None:
        now = self.loop.time()
        for cfg in configs:
            s = self.services[cfg.name] = Service(cfg, self)
            s.schedule(now)

    def apply(self, configs) -> dict:
        """A reload: add, remove and change services; the others are not touched."""
        new = {c.name: c for c in configs}
        summary: dict = {"added": [], "removed": [], "changed": []}
        for name in [n for n in self.services if n not in new]:
            s = self.services.pop(name)
            s.stop()
            self.sp.rde.route_flush(name, kind=SERVICE)
            summary["removed"].append(name)
        now = self.loop.time()
        for name, cfg in new.items():
            s = self.services.get(name)
            if s is None:
                s = self.services[name] = Service(cfg, self)
                s.schedule(now)
                summary["added"].append(name)
                continue
            old = s.cfg
            if old == cfg:
                continue
            summary["changed"].append(name)
            s.cfg = cfg
            if old.check != cfg.check:
                # Another check: its results so far say nothing; the next one decides, now.
                if s.task is not None:
                    s.task.cancel()
                    s.task = None
                s.health = Hysteresis(cfg.rise, cfg.fall)
                s.schedule(now)
            else:
                s.health.retune(cfg.rise, cfg.fall)
                if s.task is None and s.due is not None and old.interval != cfg.interval:
                    s.schedule(max(now, (s.started or now) + cfg.interval))
            s.announce()
        self.sp.kick()
        if any(summary.values()):
            log.info("services reconfigured", **{k: v for k, v in summary.items() if v})
        return summary

    async def close(self) -> None:
        tasks = [s.task for s in self.services.values() if s.task is not None]
        for s in self.services.values():
            s.stop()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def status(self) -> list:
        return [s.status() for s in self.services.values()]

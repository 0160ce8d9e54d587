"""``bgpd-bird`` / ``bgpd-bird6``: bgpd in the place of Calico's ``bird`` / ``bird6``.

:func:`run` is the runner hook of :mod:`bgpd.birdctl.process` (``RUNNER``): BIRD's parsed
options in, the daemon's exit status out. It does what ``bird`` does with them
(sysdep/unix/main.c):

* ``-c FILE``: the BIRD configuration, read with BIRD's grammar (:class:`BirdRunSetup`);
  an error is ``bird: file:line:col message`` on stderr and exit status 1;
* ``-s PATH``: the BIRD control socket (``bird.ctl``), answered by bgpd/birdctl from a
  :class:`~.birdstatus.StatusBuilder` snapshot, with :class:`BirdHandler` for ``configure``,
  ``enable``/``disable``/``restart``/``reload`` and ``down``; "I found another BIRD
  running." when something already answers there;
* ``-R``: this start is a graceful restart (BIRD's ``graceful_restart_recovery``);
* ``-d``: foreground, log to stderr; ``-D FILE``: foreground, log to FILE; ``-f``:
  foreground (log to syslog); otherwise fork into the background as BIRD does;
* ``-P FILE``: the pid file (removed at exit); ``-u``/``-g``: the control socket is given
  to that user and group (privileges are not dropped: bgpd needs its capabilities);
* SIGHUP: re-read the file and apply the difference (:mod:`.reload`), or log
  ``file:line:col message`` and keep running on the old configuration; SIGTERM/SIGINT and
  ``down``: stop as BIRD 1.6.8 does (Cease/Administrative Shutdown to every neighbor) and
  exit 0, kernel routes left in place with ``persist``;
* ``graceful restart`` on the control socket (BIRD 2.0's command): a graceful stop, the
  sessions ended without a NOTIFICATION and the restart marker left, then exit 0; with
  ``graceful_sigterm: true`` in ``bgpd.yaml`` SIGTERM does the same.

bgpd's own JSON control socket, metrics and health endpoints run beside it when
``bgpd.yaml`` asks for them (:func:`extras_options`; docs/birdrun.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import grp
import os
import pwd
import signal
import sys
import syslog
import time

import structlog

from bgpd.bird import BirdError
from bgpd.birdctl.commands import Configure
from bgpd.birdctl.engine import BirdCli, ConfigureResult
from bgpd.birdctl.server import BirdControlServer, ControlSocketInUse, socket_in_use
from bgpd.birdctl.snapshot import BgpErrorClass, bgp_error_text
from bgpd.config import ConfigError
from bgpd.config.schema import _metrics
from bgpd.kernel.learn import InterfaceFilter, PrefixFilter
from bgpd.wire.constants import CEASE_ADMIN_RESET, CEASE_ADMIN_SHUTDOWN

from . import reload as reload_mod
from .birdmode import BirdSetup
from .birdstatus import MAN_DOWN, ProtocolTracks, StatusBuilder, socket_error
from .daemon import Speaker
from .neighbors import NeighborTable
from .restart import RestartDecision

log = structlog.get_logger("bgpd")

EXTRAS_ENV = "BGPD_BIRD_CONFIG"
EXTRAS_FILE = "bgpd.yaml"
EXTRAS_KEYS = ("control_socket", "metrics", "log_level", "graceful_sigterm")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


# --------------------------------------------------------------------------------------
# options beside BIRD's: bgpd.yaml
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Extras:
    """What ``bgpd.yaml`` adds for one daemon (section ``bird`` or ``bird6``)."""

    control_socket: str | None = None  # bgpd's JSON control socket (None: none)
    metrics: object = None  # bgpd.config Metrics (None: no HTTP endpoint)
    log_level: str = "info"
    graceful_sigterm: bool = False  # SIGTERM is a graceful stop (else BIRD's Cease)
    path: str | None = None  # the file read


class ExtrasError(Exception):
    pass


def extras_options(config_path: str, name: str, environ=os.environ) -> Extras:
    """The section ``name`` (``bird`` / ``bird6``) of ``$BGPD_BIRD_CONFIG``, or of
    ``bgpd.yaml`` beside the BIRD configuration; no file: nothing beside BIRD's socket."""
    path = environ.get(EXTRAS_ENV)
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(config_path)), EXTRAS_FILE)
        if not os.path.exists(path):
            return Extras()
    import yaml  # here: only when there is a bgpd.yaml (~3 MiB)

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ExtrasError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ExtrasError(f"{path}: not YAML: {e}") from None
    if data is None:
        return Extras(path=path)
    if not isinstance(data, dict):
        raise ExtrasError(f"{path}: expected a mapping with sections bird and bird6")
    for k in data:
        if k not in ("bird", "bird6"):
            raise ExtrasError(f"{path}: unknown section {k!r} (bird, bird6)")
    sec = data.get(name) or {}
    if not isinstance(sec, dict):
        raise ExtrasError(f"{path}: {name}: expected a mapping")
    for k in sec:
        if k not in EXTRAS_KEYS:
            raise ExtrasError(f"{path}: {name}.{k}: unknown key ({', '.join(EXTRAS_KEYS)})")
    sock = sec.get("control_socket")
    if sock is not None and (not isinstance(sock, str) or not sock):
        raise ExtrasError(f"{path}: {name}.control_socket: expected a path")
    try:
        metrics = _metrics(sec.get("metrics"))
    except Exception as e:
        raise ExtrasError(f"{path}: {name}.metrics: {getattr(e, 'reason', e)}") from None
    level = sec.get("log_level", "info")
    if level not in LOG_LEVELS:
        raise ExtrasError(f"{path}: {name}.log_level: one of {', '.join(LOG_LEVELS)}")
    graceful = sec.get("graceful_sigterm", False)
    if not isinstance(graceful, bool):
        raise ExtrasError(f"{path}: {name}.graceful_sigterm: expected true or false")
    return Extras(sock, metrics, level, graceful, path)


# --------------------------------------------------------------------------------------
# the configuration
# --------------------------------------------------------------------------------------


class BirdRunSetup(BirdSetup):
    """A :class:`~.birdmode.BirdSetup` for ``bgpd-bird``: bgpd's JSON socket and metrics
    only when ``bgpd.yaml`` asks; :meth:`reload` re-reads the ``-c`` file (or, once, the
    file a ``configure "FILE"`` names)."""

    def __init__(
        self,
        path: str,
        ipv6: bool,
        extras: Extras,
        bird_socket: str,
        router_id: str | None = None,
        main_path: str | None = None,
    ) -> None:
        super().__init__(path, ipv6, router_id, control_socket=extras.control_socket or "x")
        self.options = extras
        self.bird_socket = bird_socket
        self.main_path = main_path or path
        self.next_path: str | None = None
        self.config = dataclasses.replace(
            self.config,
            control_socket=extras.control_socket or "",
            metrics=extras.metrics,
        )

    def reload(self, path: str | None = None) -> BirdRunSetup:
        path = path or self.next_path or self.main_path
        self.next_path = None
        return BirdRunSetup(
            path,
            self.ipv6,
            self.options,
            self.bird_socket,
            str(self.config.router_id),
            self.main_path,
        )


def check(path: str, ipv6: bool) -> None:
    """``configure check``: what a reload would refuse (BIRD's grammar and checks, then
    what bgpd cannot run)."""
    BirdSetup(path, ipv6, control_socket="x")


# --------------------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------------------


class BirdNeighborTable(NeighborTable):
    """Sessions with BIRD's error wait (the back-off before a restart after an error, and
    when errors are forgotten) from each protocol's ``error wait time`` /
    ``error forget time``. BIRD waits only after an error, one it found itself (it sent a
    NOTIFICATION) or a NOTIFICATION from the neighbor other than Cease
    (bgp_update_startup_delay); after a Cease received or a connection the neighbor closed
    (a daemon stopped, restarting, killed) it starts again at once: a neighbor restarted by
    runit gets its sessions straight back (the FSM's ``wait_after_peer_stop`` off)."""

    def settings_for(self, cfg, asn_mode=None):
        s = dataclasses.replace(super().settings_for(cfg, asn_mode), wait_after_peer_stop=False)
        ext = self.speaker.bird.extras.neighbor(str(cfg.address))
        if ext is None:
            return s
        lo, hi = ext.error_wait
        return dataclasses.replace(
            s, idle_hold=(float(lo), float(max(lo, hi))), error_forget=float(ext.error_forget)
        )


class _BirdRestart(RestartDecision):
    """The restart decision, with the restart marker beside the BIRD control socket
    (``bird.ctl.restart``): bgpd's JSON socket may not exist."""

    def __init__(self, sp, requested: bool) -> None:
        self.sp = sp
        super().__init__(None, requested)

    @property
    def config(self):
        sp = self.sp
        return dataclasses.replace(sp.config, control_socket=sp.bird.bird_socket)

    @config.setter
    def config(self, value) -> None:
        pass


class BirdSpeaker(Speaker):
    """The speaker, keeping what BIRD's control socket reports beyond bgpd's own state:
    each protocol's state-change time, last error, disabled flag and import counters
    (:class:`~.birdstatus.ProtocolTracks`)."""

    def __init__(self, setup: BirdRunSetup, loop=None, restart: bool = False) -> None:
        super().__init__(setup.config, setup.path, loop, restart=restart, bird=setup)
        self.stop_graceful = False  # how the stop asked for ends the sessions
        self.neighbors = BirdNeighborTable(self)
        self.rde.gr.bird_locks = True  # BIRD's recovery locks (rde/graceful.py)
        self.restart = _BirdRestart(self, restart)
        # wall-clock times of the start and of the last successful reconfiguration, kept
        # as such: converting monotonic times anew for each reply could move them a second
        self.started_wall = time.time() - (time.monotonic() - self.started)
        self.reconfigured_wall = self.started_wall
        self.tracks = ProtocolTracks()
        self.tracks.sync(setup.extras, self.started)
        self._map_names()
        self.status = StatusBuilder(self)
        self.fib_paused = False
        self._count_host_routes()

    def _count_host_routes(self) -> None:
        """Import counters of kernel1, static1 and direct1: the routes the host sources
        announce and withdraw (the kernel side takes these methods when it starts)."""
        rde = self.rde
        fam = self.status.family
        announce, withdraw = rde.announce, rde.withdraw
        kinds = {"kernel": "kernel", "static": "static", "connected": "direct"}

        def track(source, f):
            if f != fam:
                return None
            kind = kinds.get(source.kind)
            return self.tracks.first_of_kind.get(kind) if kind else None

        def counted_announce(source, f, prefixes, attrs) -> None:
            t = track(source, f)
            if t is not None:
                t.imp_received += len(prefixes)
            announce(source, f, prefixes, attrs)

        def counted_withdraw(source, f, prefixes) -> None:
            t = track(source, f)
            if t is not None:
                t.wd_received += len(prefixes)
            withdraw(source, f, prefixes)

        rde.announce, rde.withdraw = counted_announce, counted_withdraw

    def request_stop(self, graceful: bool) -> None:
        """Stop, as BIRD 1.6.8 (``graceful`` False: Cease to every neighbor) or as BIRD
        2.0's ``graceful restart`` (True); the first request decides."""
        if not self.stopping.is_set():
            self.stop_graceful = graceful
            self.stopping.set()

    # --- protocol names -----------------------------------------------------------------------

    def _map_names(self) -> None:
        e = self.bird.extras
        self._names = {x.address: name for name, x in e.neighbors.items() if name not in e.skipped}

    def track_of(self, n):
        """The BIRD protocol of a neighbor (one dictionary lookup: this runs per UPDATE)."""
        name = self._names.get(n.address)
        return self.tracks.get(name) if name is not None else None

    def neighbor_named(self, name: str):
        ext = self.bird.extras.neighbors.get(name)
        if ext is None or name in self.bird.extras.skipped:
            return None
        return self.neighbors.get(ext.address)

    # --- session events: BIRD's protocol state and last error ---------------------------------

    def counts_changed(self) -> None:
        """What each neighbor is sent may have changed without a RIB change (a session up
        or down, a reload, the end of our restart): the export counts are made again."""
        self.status.times.generation += 1

    def session_established(self, session) -> None:
        self.counts_changed()
        t = self.track_of(session.owner)
        if t is not None:
            t.error = (BgpErrorClass.NONE, "")
            t.error_seen = session.last_error
            t.changed(time.monotonic())
        super().session_established(session)

    def session_down(self, session, event) -> None:
        self.counts_changed()
        t = self.track_of(session.owner)
        if t is not None:
            got, sent = event.notification_received, event.notification_sent
            if got is not None:
                t.error = (BgpErrorClass.BGP_RX, bgp_error_text(got.code, got.subcode))
            elif sent is not None:
                t.error = (BgpErrorClass.BGP_TX, bgp_error_text(sent.code, sent.subcode))
            elif event.was_established:
                t.error = socket_error(session.last_error) or (
                    BgpErrorClass.SOCKET,
                    "Connection closed",
                )
            t.error_seen = session.last_error
            stopped = event.was_established or got is not None or sent is not None
            if stopped:
                # BIRD's protocol stops and starts again (bgp_stop): a state change
                t.changed(time.monotonic())
        super().session_down(session, event)
        if t is not None and stopped and session.owner.peer.helper.state is None:
            # down, its routes gone (not kept for a graceful restart): BIRD's
            # proto_fell_down clears the protocol's statistics
            t.imp_received = t.imp_filtered = t.wd_received = 0

    def updates_received(self, session, updates) -> None:
        t = self.track_of(session.owner)
        if t is None:
            super().updates_received(session, updates)
            return
        for u in updates:
            for _fam, keys in u.unreach():
                t.wd_received += len(keys)
            for _fam, _attrs, keys in u.reach():
                t.imp_received += len(keys)
        peer = session.owner.peer
        before = peer.filtered_count()
        super().updates_received(session, updates)
        t.imp_filtered += max(0, peer.filtered_count() - before)

    # --- reload -------------------------------------------------------------------------------

    def reload(self) -> dict:
        result = super().reload()
        if not result["ok"]:
            log.error(result["error"])  # BIRD logs "file:line:col message"
            return result
        now = time.monotonic()
        self.reconfigured_wall = time.time()
        self.counts_changed()
        restarted = set()
        for address in (*result.get("reset", ()), *result.get("added", ())):
            ext = self.bird.extras.neighbor(address)
            if ext is not None:
                restarted.add(ext.name)
        self.tracks.sync(self.bird.extras, now, restarted)
        self._map_names()
        self._apply_disabled()
        return result

    def _apply_disabled(self) -> None:
        """Sessions follow the protocols' disabled flags (the file's, after a reload: BIRD
        restarts a protocol whose ``disabled`` differs from what a command left)."""
        for t in self.tracks:
            if t.kind == "bgp":
                n = self.neighbor_named(t.name)
                if n is None:
                    continue
                if t.disabled and n.session.enabled:
                    n.session.stop(subcode=CEASE_ADMIN_SHUTDOWN)
                    t.error = MAN_DOWN
                elif not t.disabled and not n.session.enabled and not n.session.closed:
                    n.session.start()
        self.apply_host_toggles()

    # --- the non-BGP protocols ----------------------------------------------------------------

    def apply_host_toggles(self) -> None:
        """kernel1 / static1 / direct1 disabled by a command: their routes leave the RIB
        (and the kernel protocol stops writing the FIB) until they are enabled again."""
        k = self.kernel
        if k is None:
            return
        off = {t.kind for t in self.tracks if t.disabled}
        s = k.settings
        k.host.reconfigure(
            kernel_prefixes=(
                None
                if "kernel" in off or s.learn_prefixes is None
                else PrefixFilter(s.learn_prefixes)
            ),
            interfaces=(
                None if "direct" in off or s.interfaces is None else InterfaceFilter(s.interfaces)
            ),
            static=() if "static" in off else s.static,
        )
        fib = k.fib
        if fib is None:
            return
        if "kernel" in off and not self.fib_paused:
            for loc in self.kernel_locs().values():
                if fib in loc.listeners:
                    loc.listeners.remove(fib)
            self.fib_paused = True
        elif "kernel" not in off and self.fib_paused:
            self.fib_paused = False
            for fam, loc in self.kernel_locs().items():
                loc.listeners.append(fib)
                fib.rib_changed(fam, dict.fromkeys(loc.table), loc)

    # --- graceful restart: the kernel protocol waits for the recovery ---------------------------

    @property
    def kernel_waits(self) -> bool:
        """BIRD's kernel protocol with ``graceful restart`` exports nothing while the
        recovery (``bird -R``) runs: what a previous run installed stays as it is."""
        return self.rde.gr.ours.restarting and self.bird.extras.kernel_graceful_restart

    async def start_kernel(self) -> None:
        await super().start_kernel()
        if self.kernel is not None and self.kernel.fib is not None and self.kernel_waits:
            self.kernel.fib.hold()

    async def start(self) -> None:
        await super().start()
        fib = self.kernel.fib if self.kernel is not None else None
        if fib is not None and self.kernel_waits and not fib.held:
            fib.hold()  # a restart decided only once the kernel adopted routes of ours
        if any(t.disabled for t in self.tracks if t.kind != "bgp"):
            self.apply_host_toggles()

    def execute(self, todo) -> None:
        super().execute(todo)
        fib = self.kernel.fib if self.kernel is not None else None
        if fib is not None and fib.held and not self.rde.gr.ours.restarting:
            self.counts_changed()
            log.info("graceful restart recovery done: the kernel protocol exports")
            fib.release()


class BirdHandler:
    """The mutating commands of the BIRD socket (``bgpd.birdctl.engine.ControlHandler``)."""

    def __init__(self, sp: BirdSpeaker) -> None:
        self.sp = sp

    def configure(self, request: Configure) -> ConfigureResult:
        sp = self.sp
        path = request.path or sp.bird.main_path
        try:
            with open(path):
                pass
        except OSError as e:  # BIRD's cmd_read_config: "FILE: strerror"
            return ConfigureResult(path, error=f"{path}: {e.strerror}")
        if request.check:
            try:
                check(path, sp.bird.ipv6)
            except (BirdError, ConfigError) as e:
                return ConfigureResult(path, error=str(e))
            except OSError as e:
                return ConfigureResult(path, error=f"{path}: {e.strerror}")
            return ConfigureResult(path)
        if sp.stopping.is_set():
            return ConfigureResult(path, outcome="shutdown")
        log.info("Reconfiguration requested by the control socket", file=path)
        sp.bird.next_path = request.path
        try:
            result = sp.reload()
        except OSError as e:
            return ConfigureResult(path, error=f"{path}: {e.strerror}")
        finally:
            sp.bird.next_path = None
        if not result["ok"]:
            return ConfigureResult(path, error=result["error"])
        return ConfigureResult(path)

    def protocol_command(self, action: str, name: str, message: str | None) -> bool:
        sp = self.sp
        t = sp.tracks.get(name)
        if t is None:
            return False
        now = time.monotonic()
        log.info(f"{action} protocol {name}", message=message)
        if t.kind == "bgp":
            return self._bgp(t, action, message, now)
        if action in ("enable", "disable", "restart"):
            t.message = message or None
            t.changed(now)
            if action != "enable":
                t.disabled = True
                sp.apply_host_toggles()
                # down, its routes gone: BIRD's proto_fell_down clears the statistics
                t.imp_received = t.imp_filtered = t.wd_received = 0
            if action != "disable":
                t.disabled = False
                sp.apply_host_toggles()
        elif t.kind == "kernel" and action in ("reload", "reload out") and sp.kernel is not None:
            fib = sp.kernel.fib
            if fib is not None and not sp.fib_paused:
                for fam, loc in sp.kernel_locs().items():
                    fib.rib_changed(fam, dict.fromkeys(loc.table), loc)
        sp.kick()
        return True

    def _bgp(self, t, action: str, message: str | None, now: float) -> bool:
        sp = self.sp
        n = sp.neighbor_named(t.name)
        if n is None:
            log.warning("protocol not run by bgpd: command ignored", protocol=t.name)
            return action not in ("reload", "reload in", "reload out")
        s = n.session
        if action in ("enable", "disable", "restart"):
            t.message = message or None
            t.changed(now)
        if action == "disable":
            t.disabled = True
            s.stop(subcode=CEASE_ADMIN_SHUTDOWN, message=message or "")
            t.error = MAN_DOWN
        elif action == "enable":
            t.disabled = False
            if not s.enabled:
                s.start()
        elif action == "restart":
            s.stop(subcode=CEASE_ADMIN_RESET, message=message or "")
            t.error = MAN_DOWN
            s.start()
        else:
            if not s.established:
                return False
            if action in ("reload", "reload in"):
                reload_mod.refresh_in(n)
            if action in ("reload", "reload out"):
                sp.rde.resend(n.peer)
        t.error_seen = s.last_error
        sp.kick()
        return True

    def shutdown(self) -> None:
        log.info("Shutdown requested by the control socket")
        self.sp.request_stop(graceful=False)

    def graceful_restart(self) -> None:
        log.info("Graceful restart requested by the control socket")
        self.sp.request_stop(graceful=True)


# --------------------------------------------------------------------------------------
# the process
# --------------------------------------------------------------------------------------


def _id_of(value: str | None, kind: str) -> int | None:
    """BIRD's get_uid / get_gid: a number, or a name looked up."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "user" else grp.getgrnam(value).gr_gid
    except KeyError:
        raise ExtrasError(f"Cannot find {kind} '{value}'") from None


class _SyslogFile:
    """A file for structlog's PrintLogger that writes each line to syslog."""

    def __init__(self, ident: str) -> None:
        syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)

    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line:
                syslog.syslog(syslog.LOG_INFO, line)

    def flush(self) -> None:
        pass


def configure_logging(level: str, stream) -> None:
    import logging

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def _daemonize() -> None:
    """BIRD's fork into the background: the parent exits 0, the child is a session leader
    with /dev/null for its standard files."""
    pid = os.fork()
    if pid:
        os._exit(0)
    os.setsid()
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def run(o) -> int:
    """The runner hook (``bgpd.birdctl.process.RUNNER``): ``o`` is a
    :class:`~bgpd.birdctl.process.BirdOptions`; returns the exit status."""
    err = sys.stderr
    ipv6 = o.ipv6
    try:
        extras = extras_options(o.config, o.name)
        uid = _id_of(o.user, "user")
        gid = _id_of(o.group, "group")
    except ExtrasError as e:
        err.write(f"bird: {e}\n")
        return 1
    if socket_in_use(o.socket):
        err.write("bird: I found another BIRD running.\n")
        return 1
    if not os.path.exists(o.config):
        err.write(
            f"bird: Unable to open configuration file {o.config}: No such file or directory\n"
        )
        return 1
    foreground = o.debug or o.foreground or o.debug_file is not None
    level = "debug" if o.debug_file is not None else extras.log_level
    if o.debug:
        configure_logging(level, sys.stderr)
    elif o.debug_file is not None:
        try:
            stream = open(o.debug_file, "a", buffering=1)  # noqa: SIM115 - the daemon's life
        except OSError as e:
            err.write(f"bird: Unable to open log file {o.debug_file}: {e.strerror}\n")
            return 1
        configure_logging(level, stream)
    else:
        configure_logging(level, _SyslogFile(o.name))
    try:
        setup = BirdRunSetup(o.config, ipv6, extras, o.socket)
    except (BirdError, ConfigError) as e:
        err.write(f"bird: {e}\n")
        return 1
    except OSError as e:
        err.write(f"bird: Unable to open configuration file {o.config}: {e.strerror}\n")
        return 1
    if not foreground:
        _daemonize()
    if o.pid_file:
        try:
            with open(o.pid_file, "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as e:
            log.error(f"Cannot create PID file {o.pid_file}: {e.strerror}")
            return 1
    if uid is not None or gid is not None:
        log.info(
            "-u/-g: the control socket is given to them; privileges are kept", uid=uid, gid=gid
        )
    try:
        return asyncio.run(_serve(o, setup, uid, gid))
    finally:
        if o.pid_file:
            with contextlib.suppress(OSError):
                os.unlink(o.pid_file)


async def _serve(o, setup: BirdRunSetup, uid, gid) -> int:
    loop = asyncio.get_running_loop()
    sp = BirdSpeaker(setup, loop, restart=o.graceful_restart)
    cli = BirdCli(snapshot=sp.status.snapshot, handler=BirdHandler(sp))
    server = BirdControlServer(o.socket, cli, uid=uid, gid=gid)
    server.hold()  # clients are greeted once the protocols have started, as by BIRD
    try:
        await server.start()
    except ControlSocketInUse as e:
        log.error(str(e))
        sys.stderr.write(f"bird: {e}\n")
        return 1
    try:
        await sp.start()
    except OSError as e:
        log.error("cannot start", error=str(e))
        await sp.stop(marker=False)
        await server.close()
        return 1
    server.ready()

    def hup() -> None:
        log.info("Reconfiguration requested by SIGHUP")
        sp.reload()

    def term() -> None:
        log.info("Shutdown requested by SIGTERM", graceful=sp.bird.options.graceful_sigterm)
        sp.request_stop(graceful=sp.bird.options.graceful_sigterm)

    loop.add_signal_handler(signal.SIGTERM, term)
    loop.add_signal_handler(signal.SIGINT, sp.request_stop, False)
    loop.add_signal_handler(signal.SIGHUP, hup)
    log.info("Started", family="ipv6" if setup.ipv6 else "ipv4", socket=o.socket)
    await sp.stopping.wait()
    # BIRD 1.6.8's shutdown: Cease/Administrative Shutdown (6/2) without data to every
    # neighbor, which drops our routes at once; a graceful stop (BIRD 2.0's "graceful
    # restart"): no NOTIFICATION, the neighbors keep our routes for the restart time
    log.info("Shutting down for graceful restart" if sp.stop_graceful else "Shutting down")
    await sp.stop("", graceful=sp.stop_graceful)
    sp.status.times.close()
    await server.close()
    log.info("Shutdown completed")
    return 0

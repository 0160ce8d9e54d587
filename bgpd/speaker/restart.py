"""Is this start a graceful restart? The marker a graceful stop leaves, and the decision.

A start is a restart (RFC 4724 §4.1: the R bit, selection deferral, adopt-then-sweep) only
when the forwarding state of the previous run survived: ``bgpd run -R`` says so (as
``bird -R``, ``gobgpd -r``), a graceful stop (SIGTERM) left its marker less than
restart_time ago in this boot, or the kernel adopted routes of ours that a previous run left
(``kill -9``, a crash). Anything else is a cold start that announces at once.
"""

import contextlib
import json
import os
import time

import structlog

log = structlog.get_logger("bgpd")

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def restart_marker_path(config) -> str:
    """Where a graceful stop leaves its marker: ``graceful_restart.restart_marker``, else
    beside the control socket, named after it (``/run/bgpd/bgpd.sock``:
    ``/run/bgpd/bgpd.restart``), so that two daemons never share one."""
    gr = config.graceful_restart
    if gr is not None and gr.restart_marker:
        return str(gr.restart_marker)
    sock = str(config.control_socket)
    return (sock[: -len(".sock")] if sock.endswith(".sock") else sock) + ".restart"


def advertised_restart_time(config) -> int:
    """The longest restart time the neighbors are told (each neighbor's own, else
    ``graceful_restart.restart_time``; the router's too when dynamic neighbors may come or
    none is configured): how long after a graceful stop some neighbor may still hold our
    routes, so the window of the restart marker."""
    gr = config.graceful_restart
    times = [n.restart_time(gr) for n in config.neighbors]
    if config.dynamic_neighbors or not times:
        times.append(gr.restart_time)
    return max(times)


def _boot_id() -> str | None:
    """This boot of the host (Linux); a marker from another boot means a reboot between."""
    try:
        with open(BOOT_ID_PATH) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _boottime() -> float | None:
    """Seconds since boot, suspend included: comparable between processes of one boot and
    immune to changes of the wall clock."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:
        return None


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_restart_marker(path: str, restart_time: int) -> None:
    """Leave the marker of a graceful stop: when (wall clock, and seconds since this boot),
    who, and the longest restart time the neighbors were told (how long they keep our
    routes)."""
    _write_json(
        path,
        {
            "version": 1,
            "pid": os.getpid(),
            "stopped_at": time.time(),
            "boot_id": _boot_id(),
            "boottime": _boottime(),
            "restart_time": restart_time,
        },
    )


def take_restart_marker(path: str) -> tuple[dict | None, str | None]:
    """Read and remove the marker: ``(data, None)``, ``(None, None)`` when there is none, or
    ``(None, problem)`` when it cannot be read (it is removed all the same)."""
    data = problem = None
    try:
        with open(path) as f:
            data = json.loads(f.read())
        problem = _marker_problem(data)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        problem = str(e)
    if problem is not None:
        data = None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("graceful restart: cannot remove the restart marker", path=path, error=str(e))
    return data, problem


def _marker_problem(data) -> str | None:
    """What is wrong with a marker's content, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    number = (int, float)
    if not isinstance(data.get("stopped_at"), number) or isinstance(data["stopped_at"], bool):
        return "no stopped_at time"
    for k, types in (("boottime", number), ("boot_id", str), ("restart_time", int)):
        if data.get(k) is not None and not isinstance(data[k], types):
            return f"bad {k}"
    return None


def marker_verdict(marker: dict, restart_time: int) -> tuple[bool, str]:
    """Whether the marker of a graceful stop makes this start a restart, and why (not): the
    stop must be of this boot and less than its restart time ago (after that, neighbors
    have dropped our routes: nothing is left to restart gracefully)."""
    limit = marker.get("restart_time") or restart_time
    boot, then_boot = _boot_id(), marker.get("boot_id")
    if boot and then_boot and boot != then_boot:
        return False, "the host rebooted since the graceful stop"
    now = _boottime()
    if boot and then_boot and now is not None and marker.get("boottime") is not None:
        age = now - marker["boottime"]
    else:
        age = time.time() - marker["stopped_at"]
    age = max(0.0, age)
    if age > limit:
        return False, f"graceful stop {age:.0f} s ago, more than restart_time ({limit} s)"
    return True, f"graceful stop {age:.1f} s ago (pid {marker.get('pid')})"


class RestartDecision:
    """Decides at start whether this is a restart, and leaves or restores the marker."""

    def __init__(self, config, requested: bool = False) -> None:
        self.config = config
        self.requested = requested
        self.taken: tuple[str, dict] | None = None  # (path, data) of the marker consumed

    def decide(self) -> tuple[bool | None, str | None, bool]:
        """``(restart, reason, may_adopt)``: ``restart`` None when graceful restart is off;
        ``may_adopt``: kernel routes adopted from a previous run may still make it one
        (:meth:`by_kernel`, once the kernel has started). The marker is consumed either way.
        """
        gr = self.config.graceful_restart
        path = restart_marker_path(self.config)
        data, problem = take_restart_marker(path)
        if data is not None:
            self.taken = (path, data)
        if gr is None or not gr.enabled:
            if self.requested:
                log.warning("--graceful-restart ignored: graceful_restart is off in the config")
            return None, None, False
        if problem is not None:
            log.warning("graceful restart: restart marker ignored", path=path, error=problem)
        if self.requested:
            return True, "requested (--graceful-restart)", False
        if data is not None:
            restart, reason = marker_verdict(data, advertised_restart_time(self.config))
            return restart, reason, False  # an expired marker: peers dropped our routes already
        kernel = self.config.kernel
        fib = kernel is not None and kernel.install
        reason = "no --graceful-restart, no marker of a graceful stop"
        return False, reason + (", no kernel routes of ours" if fib else ""), fib

    @staticmethod
    def by_kernel(kernel) -> str | None:
        """The reason a start is a restart after all: the kernel adopted routes of ours."""
        fib = kernel.fib if kernel is not None else None
        adopted = int(fib.stats.get("adopted", 0)) if fib is not None else 0
        return f"{adopted} kernel routes of a previous run adopted" if adopted else None

    def leave(self) -> None:
        """A graceful stop: leave the marker for the next start."""
        path = restart_marker_path(self.config)
        try:
            write_restart_marker(path, advertised_restart_time(self.config))
        except OSError as e:
            log.warning(
                "graceful restart: cannot write the restart marker", path=path, error=str(e)
            )
            return
        self.taken = None
        log.info("graceful restart: restart marker left", path=path)

    def restore(self) -> None:
        """A start that failed puts back the marker it consumed (same stop time), so that the
        next attempt is still a restart within restart_time."""
        if self.taken is None:
            return
        path, data = self.taken
        self.taken = None
        with contextlib.suppress(OSError):
            _write_json(path, data)

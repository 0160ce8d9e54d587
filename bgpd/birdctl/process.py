"""``bgpd-bird`` / ``bgpd-bird6``: BIRD's process contract (sysdep/unix/main.c).

Calico's runit script runs ``bird -R -s /var/run/calico/bird.ctl -d -c .../bird.cfg`` (and
``bird6`` likewise) and confd checks every new file with ``bird -p -c FILE``. These entry
points take BIRD's options (``-c -d -D -f -g -h -l -p -P -R -s -u``, ``--version`` and
``--help`` alone), answer a bad one as glibc's getopt and BIRD do (message, blank line, usage,
exit 1), and hand the parsed :class:`BirdOptions` on:

* ``-p``: to the configuration checker (:func:`check_config`, BIRD's ``bird: file:line:col
  msg`` on stderr and exit 1 on an error, exit 0 otherwise); nothing else is started;
* otherwise: to the daemon runner (:func:`run_daemon`), after making ``/proc/self/cmdline``
  read ``bird ...`` (``bird6 ...``): ``calicoctl node status`` only recognises the daemon when
  argv[0] is exactly ``bird``/``bird6`` (see :mod:`.proctitle`).

The runner and the checker are hooks (``RUNNER``/``CHECKER`` below, a ``module:function``
each, overridable with ``BGPD_BIRD_RUNNER``/``BGPD_BIRD_CHECKER``): the daemon
(bgpd.speaker.birdrun) and BIRD's parser with its filter compiler (bgpd.bird).
"""

from __future__ import annotations

import getopt
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import proctitle
from .snapshot import BIRD_VERSION

# Calico's fork is built with --sysconfdir=/etc --runstatedir=/var/run/calico
DEFAULTS = {
    4: ("bird", "/etc/bird.conf", "/var/run/calico/bird.ctl"),
    6: ("bird6", "/etc/bird6.conf", "/var/run/calico/bird6.ctl"),
}
OPTSTRING = "c:dD:ps:P:u:g:flRh"

# The hooks (module:function). RUNNER(options) -> exit status runs the daemon (it returns
# when the daemon stops); CHECKER(path, ipv6) raises on a bad file, its str() being BIRD's
# "file:line:col message" (bgpd.bird's BirdError), and returns on a good one.
RUNNER = "bgpd.cli.bird:run"  # bgpd.speaker.birdrun.run, asyncio imported without TLS
CHECKER = "bgpd.bird:check_file"


@dataclass
class BirdOptions:
    """The command line of ``bird``/``bird6``, parsed."""

    family: int  # 4 for bird, 6 for bird6
    name: str  # "bird" / "bird6": the argv[0] to show
    config: str  # -c (default /etc/bird.conf, /etc/bird6.conf)
    socket: str  # -s (default /var/run/calico/bird.ctl, bird6.ctl)
    debug: bool = False  # -d: foreground, log to stderr
    debug_file: str | None = None  # -D FILE: debug log file
    foreground: bool = False  # -f
    parse_only: bool = False  # -p
    pid_file: str | None = None  # -P
    user: str | None = None  # -u
    group: str | None = None  # -g
    graceful_restart: bool = False  # -R: start in graceful-restart recovery
    argv: tuple[str, ...] = ()  # the arguments after argv[0], as given

    @property
    def ipv6(self) -> bool:
        return self.family == 6


class UsageExit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _usage(name: str) -> str:
    return f"Usage: {name} [--version] [--help] [-c <config-file>] [OPTIONS]\n"


HELP = (
    "\nOptions: \n"
    + """\
  -c <config-file>     Use given configuration file instead
                       of prefix/etc/bird.conf
  -d                   Enable debug messages and run bird in foreground
  -D <debug-file>      Log debug messages to given file instead of stderr
  -f                   Run bird in foreground
  -g <group>           Use given group ID
  -h, --help           Display this information
  -l                   Look for a configuration file and a communication socket
                       file in the current working directory
  -p                   Test configuration file and exit without start
  -P <pid-file>        Create a PID file with given filename
  -R                   Apply graceful restart recovery after start
  -s <control-socket>  Use given filename for a control socket
  -u <user>            Drop privileges and use given user ID
  --version            Display version of BIRD
"""
)


def parse_args(argv: list[str], family: int, stderr=None) -> BirdOptions:
    """BIRD's parse_args; raises :class:`UsageExit` after printing what BIRD prints."""
    err = stderr or sys.stderr
    default_name, config, sock = DEFAULTS[family]
    prog = argv[0] if argv else default_name
    base = os.path.basename(prog) or default_name  # get_bird_name
    if len(argv) == 2 and argv[1] == "--version":
        err.write(f"BIRD version {BIRD_VERSION}\n")
        raise UsageExit(0)
    if len(argv) == 2 and argv[1] == "--help":
        err.write(_usage(base) + HELP)
        raise UsageExit(0)
    try:
        opts, rest = getopt.gnu_getopt(argv[1:], OPTSTRING)
    except getopt.GetoptError as e:
        if "requires argument" in e.msg:
            err.write(f"{prog}: option requires an argument -- '{e.opt}'\n")
        else:
            err.write(f"{prog}: invalid option -- '{e.opt}'\n")
        err.write("\n" + _usage(base))
        raise UsageExit(1)
    o = BirdOptions(family, default_name, config, sock, argv=tuple(argv[1:]))
    config_changed = socket_changed = False
    for opt, val in opts:
        if opt == "-c":
            o.config, config_changed = val, True
        elif opt == "-d":
            o.debug = True
        elif opt == "-D":
            o.debug_file = val
        elif opt == "-p":
            o.parse_only = True
        elif opt == "-s":
            o.socket, socket_changed = val, True
        elif opt == "-P":
            o.pid_file = val
        elif opt == "-u":
            o.user = val
        elif opt == "-g":
            o.group = val
        elif opt == "-f":
            o.foreground = True
        elif opt == "-l":
            if not config_changed:
                o.config = os.path.basename(o.config)
            if not socket_changed:
                o.socket = os.path.basename(o.socket)
        elif opt == "-R":
            o.graceful_restart = True
        elif opt == "-h":
            err.write(_usage(base) + HELP)
            raise UsageExit(0)
    if rest:
        err.write(_usage(base))
        raise UsageExit(1)
    return o


def _resolve(spec: str) -> Callable:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def check_config(o: BirdOptions, stderr=None) -> int:
    """``-p``: parse the file (with its includes) and nothing else."""
    err = stderr or sys.stderr
    if not os.path.exists(o.config):
        err.write(
            f"bird: Unable to open configuration file {o.config}: No such file or directory\n"
        )
        return 1
    try:
        checker = _resolve(os.environ.get("BGPD_BIRD_CHECKER", CHECKER))
    except (ImportError, AttributeError) as e:
        err.write(f"bird: no BIRD configuration parser in this bgpd ({e})\n")
        return 1
    try:
        checker(o.config, o.ipv6)
    except OSError as e:
        err.write(f"bird: Unable to open configuration file {o.config}: {e.strerror}\n")
        return 1
    except Exception as e:  # the parser's error: str() is "file:line:col message"
        err.write(f"bird: {e}\n")
        return 1
    return 0


def run_daemon(o: BirdOptions) -> int:
    """Rename the process to ``bird``/``bird6`` and call the runner hook."""
    proctitle.set_argv([o.name, *o.argv])
    runner = _resolve(os.environ.get("BGPD_BIRD_RUNNER", RUNNER))
    return int(runner(o) or 0)


def main(argv: list[str] | None = None, family: int = 4) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        o = parse_args(argv, family)
    except UsageExit as e:
        return e.status
    if o.parse_only:
        return check_config(o)
    return run_daemon(o)


def entry() -> None:
    sys.exit(main(family=4))


def entry6() -> None:
    sys.exit(main(family=6))

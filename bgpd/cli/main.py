"""The ``bgpd`` command: run the daemon, check a config, and talk to a running daemon.

The daemon is reached only through its control socket (:mod:`bgpd.api.client`) and started
only through :mod:`bgpd.speaker`. Exit codes: 0 success, 1 the daemon or the request failed
(not running, error reply, malformed message to decode), 2 bad usage or a bad config.
"""

import functools
import importlib
import ipaddress
import json
import os
import sys

import click

from bgpd import __version__
from bgpd.api.client import ApiError, DaemonNotRunning, request
from bgpd.config import DEFAULT_CONTROL_SOCKET, ConfigError, load

from . import routetables, tables
from .decode import decode

LOG_LEVELS = ("debug", "info", "warning", "error")


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bgpd")
def main():
    """bgpd: a BGP-4 speaker and route reflector.

    Shell completion (bash): eval "$(_BGPD_COMPLETE=bash_source bgpd)"
    """


main.add_command(decode)


# --- run, check -----------------------------------------------------------------------------

_config_option = click.option(
    "-c",
    "--config",
    "config_path",
    envvar="BGPD_CONFIG",
    metavar="FILE",
    help="The YAML config file (env: BGPD_CONFIG).",
)


def _load(path: str):
    try:
        return load(path)
    except ConfigError as e:
        fail(str(e), 2)


@main.command()
@_config_option
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="The lowest level of log events to print.",
)
@click.option(
    "-R",
    "--graceful-restart",
    "restart",
    is_flag=True,
    help="This start is a graceful restart (RFC 4724): the forwarding state of the previous "
    "run was kept. Without it, bgpd decides by itself (docs/cli.md).",
)
@click.option(
    "--bird",
    "bird_path",
    metavar="FILE",
    help="Run on a BIRD 1.6 config instead (Calico's bird.cfg with its includes).",
)
@click.option("--ipv6", is_flag=True, help="With --bird: read it as bird6 does (bird6.cfg).")
@click.option(
    "--control-socket",
    metavar="PATH",
    help="With --bird: bgpd's JSON control socket (default /run/bgpd/bgpd.sock, bgpd6.sock "
    "with --ipv6).",
)
def run(config_path, log_level, restart, bird_path, ipv6, control_socket):
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    speaker = importlib.import_module("bgpd.speaker")
    if bird_path is None:
        if ipv6 or control_socket:
            raise click.UsageError("--ipv6 and --control-socket go with --bird")
        if config_path is None:
            raise click.MissingParameter(param_hint="'-c' / '--config'", param_type="option")
        config = _load(config_path)
        sys.exit(
            speaker.run(
                config, config_path=config_path, log_level=log_level.lower(), restart=restart
            )
        )
    birdmode = importlib.import_module("bgpd.speaker.birdmode")
    try:
        setup = birdmode.BirdSetup(bird_path, ipv6, control_socket=control_socket)
    except Exception as e:  # BirdError (file:line:col message) or ConfigError
        fail(str(e), 1)
    sys.exit(
        speaker.run(
            setup.config,
            config_path=bird_path,
            log_level=log_level.lower(),
            restart=restart,
            bird=setup,
        )
    )


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar="BGPD_CONFIG",
    metavar="FILE",
    help="The YAML config file (env: BGPD_CONFIG).",
)
@click.option(
    "--bird",
    "bird_path",
    metavar="FILE",
    help="Check a BIRD 1.6 config instead (bird.cfg with its includes), as `bird -p` does.",
)
@click.option("--ipv6", is_flag=True, help="With --bird: read it as bird6 does (bird6.cfg).")
def check(config_path, bird_path, ipv6):
    """Check a config file; print "FILE: ok" or the error (exit 2).

    With --bird FILE: print nothing and exit 0 when BIRD would accept it, else print
    "file:line:col message" as BIRD does and exit 1 (docs/bird.md).
    """
    if bird_path is not None:
        from bgpd.bird import BirdError, check_file

        try:
            check_file(bird_path, ipv6=ipv6)
        except BirdError as e:
            fail(str(e), 1)
        return
    if ipv6:
        raise click.UsageError("--ipv6 goes with --bird")
    if config_path is None:
        raise click.MissingParameter(param_hint="'-c' / '--config'", param_type="option")
    _load(config_path)
    click.echo(f"{config_path}: ok")


# --- talking to the daemon ------------------------------------------------------------------


def daemon_command(f=None, *, timeout: float = 10.0):
    """Add the options every command that talks to the daemon has (-s, --timeout);
    ``@daemon_command(timeout=S)`` for a command whose default wait is longer."""
    if f is None:
        return functools.partial(daemon_command, timeout=timeout)

    @click.option(
        "-s",
        "--socket",
        "socket_path",
        envvar="BGPD_SOCKET",
        default=DEFAULT_CONTROL_SOCKET,
        show_default=True,
        metavar="PATH",
        help="The daemon's control socket (env: BGPD_SOCKET).",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=timeout,
        show_default=True,
        help="Seconds to wait for the daemon.",
    )
    @functools.wraps(f)
    def wrapper(*args, socket_path, timeout, **kwargs):
        return f(*args, call=functools.partial(_call, socket_path, timeout), **kwargs)

    return wrapper


def _call(socket_path: str, timeout: float, command: str, args: dict | None = None):
    try:
        return request(socket_path, command, args, timeout=timeout)
    except DaemonNotRunning as e:
        fail(
            f"bgpd is not running: {e.detail} at {e.path} "
            "(start it with `bgpd run -c FILE`, or pass -s PATH)"
        )
    except ApiError as e:
        fail(f"error: {e}")


def _print_json(result) -> None:
    click.echo(json.dumps(result, indent=2))


def _output(result, as_json: bool, render) -> None:
    """``result`` as JSON (``--json``), else as ``render(result)`` prints it."""
    if as_json:
        _print_json(result)
    else:
        click.echo(render(result))


def _address(ctx, param, value):
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address")


def _prefix(ctx, param, value):
    if value is None:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as e:
        raise click.BadParameter(str(e))


_json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@main.group()
def show():
    """Show the daemon's state."""


@show.command("neighbors")
@click.argument("address", required=False, callback=_address)
@_json_option
@daemon_command
def show_neighbors(address, as_json, call):
    """Neighbors and their sessions; with ADDRESS, the details of one."""
    result = call("show_neighbors", {"address": address} if address else {})
    neighbors = result.get("neighbors", [])
    if address:
        neighbors = [n for n in neighbors if n.get("address") == address]  # both canonical
        if not neighbors:
            fail(f"error: no neighbor {address}")
        result = {**result, "neighbors": neighbors}
    if as_json:
        _print_json(result)
    elif address:
        click.echo("\n\n".join(tables.neighbor_detail(n) for n in neighbors))
    else:
        click.echo(tables.neighbors_table(neighbors))


@show.command("summary")
@_json_option
@daemon_command
def show_summary(as_json, call):
    """Router ID, AS, uptime, neighbor and route counts."""
    result = call("show_summary")
    _output(result, as_json, tables.summary)


@show.command("routes")
@click.argument("prefix", required=False, callback=_prefix)
@click.option("--family", type=click.Choice(("ipv4", "ipv6")), help="Only this family.")
@click.option(
    "--neighbor",
    metavar="ADDR",
    callback=_address,
    help="Only paths learned from (or, with --advertised, sent to) this neighbor.",
)
@click.option("--received", is_flag=True, help="With --neighbor: its Adj-RIB-In.")
@click.option("--advertised", is_flag=True, help="With --neighbor: its Adj-RIB-Out.")
@_json_option
@daemon_command
def show_routes(prefix, family, neighbor, received, advertised, as_json, call):
    """Routes in the RIB (PREFIX: only this prefix)."""
    if received and advertised:
        raise click.UsageError("--received and --advertised are mutually exclusive")
    if (received or advertised) and not neighbor:
        raise click.UsageError("--received and --advertised need --neighbor ADDR")
    args: dict = {}
    if prefix:
        args["prefix"] = prefix
    if family:
        args["family"] = family
    if neighbor:
        args["neighbor"] = neighbor
    if received:
        args["received"] = True
    if advertised:
        args["advertised"] = True
    result = call("show_routes", args)
    _output(result, as_json, lambda r: tables.routes_table(r.get("routes", [])))


@show.command("bfd")
@_json_option
@daemon_command
def show_bfd(as_json, call):
    """BFD sessions: state, timers, flaps (docs/bfd.md)."""
    result = call("show_bfd")
    _output(result, as_json, tables.bfd_table)


@show.command("monitoring")
@_json_option
@daemon_command
def show_monitoring(as_json, call):
    """The MRT update log, the BMP stations and the table dumps."""
    result = call("show_monitoring")
    _output(result, as_json, tables.monitoring)


@main.group()
def dump():
    """Write the daemon's tables to files."""


@dump.command("table")
@click.argument("file", type=click.Path(dir_okay=False))
@_json_option
@daemon_command(timeout=600.0)
def dump_table(file, as_json, call):
    """Write a TABLE_DUMP_V2 (MRT, RFC 6396) file of the Loc-RIB and the Adj-RIBs-In.

    FILE is written by the daemon (a relative name is taken from this directory); it appears
    once complete. A name ending in .gz or .bz2 is compressed. BGP keeps running meanwhile.
    """
    path = os.path.abspath(file)
    result = call("dump_table", {"file": path})
    if as_json:
        _print_json(result)
    else:
        click.echo(
            f"{result['file']}: {result['prefixes']} prefixes, {result['entries']} entries, "
            f"{result['bytes']} octets in {result['seconds']:.1f} s"
        )


def _print_action(result, as_json: bool, default: str) -> None:
    if as_json:
        _print_json(result)
    elif isinstance(result, dict) and result.get("message"):
        click.echo(result["message"])
    else:
        click.echo(default)


@main.group()
def neighbor():
    """Act on one neighbor's session."""


def _shutdown_message(ctx, param, value):
    if value is not None and len(value.encode("utf-8")) > 255:
        raise click.BadParameter("at most 255 octets of UTF-8 (RFC 9003)")
    return value


_message_option = click.option(
    "-m",
    "--message",
    callback=_shutdown_message,
    help="Shutdown communication sent in the NOTIFICATION (RFC 9003).",
)
_address_argument = click.argument("address", callback=_address)


def _act(call, action: str, address: str, as_json: bool, **extra) -> None:
    args = {"address": address, **{k: v for k, v in extra.items() if v is not None}}
    result = call(f"neighbor_{action}", args)
    _print_action(result, as_json, f"neighbor {address}: {action} done")


@neighbor.command()
@_address_argument
@_message_option
@_json_option
@daemon_command
def reset(address, message, as_json, call):
    """Close the session (Cease, Administrative Reset) and start it again."""
    _act(call, "reset", address, as_json, message=message)


@neighbor.command()
@_address_argument
@_message_option
@_json_option
@daemon_command
def shutdown(address, message, as_json, call):
    """Close the session (Cease, Administrative Shutdown) and keep it down."""
    _act(call, "shutdown", address, as_json, message=message)


@neighbor.command()
@_address_argument
@_json_option
@daemon_command
def enable(address, as_json, call):
    """Start a session stopped by shutdown (or configured with shutdown: true)."""
    _act(call, "enable", address, as_json)


@neighbor.command()
@_address_argument
@click.option(
    "--direction",
    type=click.Choice(("in", "out", "both")),
    help="in: ask the neighbor for its routes (default); out: send ours again; both.",
)
@_json_option
@daemon_command
def refresh(address, direction, as_json, call):
    """Refresh the routes of an Established session (ROUTE-REFRESH)."""
    _act(call, "refresh", address, as_json, direction=direction)


@main.command()
@_json_option
@daemon_command
def reload(as_json, call):
    """Re-read the config file and apply the changes."""
    result = call("reload")
    _print_action(result, as_json, "reloaded")


# --- the route API (docs/cli.md "bgpd route"): routes controllers add at run time ----------


@main.group()
def route():
    """Add, change, delete and list routes at run time (the route API)."""


_owner_option = click.option(
    "--owner",
    metavar="NAME",
    help="Whose route this is (default: default). Owners never touch each other's routes.",
)


@route.command("add")
@click.argument("prefix")
@click.option("--next-hop", metavar="ADDR", help="NEXT_HOP (default: ours, next hop self).")
@click.option(
    "--community",
    "communities",
    multiple=True,
    metavar="A:B",
    help="A community (A:B, or a name: no-export, no-advertise, ...); repeatable.",
)
@click.option(
    "--large-community",
    "large_communities",
    multiple=True,
    metavar="A:B:C",
    help="A large community; repeatable.",
)
@click.option("--local-pref", type=int, metavar="N", help="LOCAL_PREF (iBGP).")
@click.option("--med", type=int, metavar="N", help="MULTI_EXIT_DISC.")
@click.option(
    "--as-path-prepend", type=int, metavar="N", help="Start the AS path with our AS N times."
)
@_owner_option
@click.option(
    "--lease",
    metavar="DURATION",
    help="Withdraw the route unless it is added again within this time (30s, 2m, ...).",
)
@_json_option
@daemon_command
def route_add(
    prefix, next_hop, communities, large_communities, owner, lease, as_json, call, **nums
):
    """Announce PREFIX; adding it again replaces its attributes and renews its lease."""
    args = {
        "prefix": prefix,
        "next_hop": next_hop,
        "communities": list(communities) or None,
        "large_communities": list(large_communities) or None,
        "owner": owner,
        "lease": lease,
        **nums,
    }
    result = call("route_add", {k: v for k, v in args.items() if v is not None})
    lease_text = f", lease {result['lease']:g}s" if result.get("lease") is not None else ""
    _print_action(
        result, as_json, f"{result['prefix']} ({result['owner']}): {result['action']}{lease_text}"
    )


@route.command("del")
@click.argument("prefix")
@_owner_option
@_json_option
@daemon_command
def route_del(prefix, owner, as_json, call):
    """Withdraw the owner's route for PREFIX (other owners' routes for it stay)."""
    args = {"prefix": prefix, **({"owner": owner} if owner else {})}
    result = call("route_del", args)
    _print_action(result, as_json, f"{result['prefix']} ({result['owner']}): deleted")


@route.command("list")
@_owner_option
@click.option("--family", type=click.Choice(("ipv4", "ipv6")), help="Only this family.")
@_json_option
@daemon_command
def route_list(owner, family, as_json, call):
    """The routes added through the route API, with owners and leases."""
    args = {k: v for k, v in (("owner", owner), ("family", family)) if v}
    result = call("route_list", args)
    _output(result, as_json, routetables.route_list)


@show.command("services")
@_json_option
@daemon_command
def show_services(as_json, call):
    """Health-checked services (the services config): state, routes, last check."""
    result = call("show_services")
    _output(result, as_json, routetables.services)


@main.command()
@click.option("--live", "check", flag_value="live", help="Liveness: bgpd answers, not stopping.")
@click.option(
    "--ready",
    "check",
    flag_value="ready",
    default=True,
    help="Readiness: its neighbors are Established (the default).",
)
@_json_option
@daemon_command
def health(check, as_json, call):
    """Exit 0 when the daemon is live (--live) or ready (--ready), else 1; print why.

    The rules of /livez and /readyz (docs/api.md), asked over the control socket: no metrics
    listener is needed. For exec probes and scripts.
    """
    result = call("health")
    ok = bool(result.get(check))
    if as_json:
        _print_json(result)
    else:
        reason = result.get(f"{check}_reason") or result.get("reason") or ""
        click.echo(reason or ("ok" if ok else f"not {check}"), err=not ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":  # pragma: no cover
    main()

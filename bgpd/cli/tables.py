"""Human-readable renderings of the control socket's results (docs/api.md has the shapes)."""

from collections.abc import Iterable, Sequence


def duration(seconds: float | None) -> str:
    """``00:05:12`` under a day, ``1d02h03m`` under a week, ``02w3d04h`` after (as FRR)."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days == 0:
        return f"{hours:02d}:{minutes:02d}:{s:02d}"
    if days < 7:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    weeks, days = divmod(days, 7)
    return f"{weeks:02d}w{days}d{hours:02d}h"


def table(headers: Sequence[str], rows: Iterable[Sequence], right: frozenset = frozenset()) -> str:
    """Columns padded to their widest cell; the columns in ``right`` are right-aligned.

    The last column is never padded (it may be long: an error message)."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = []
        for i, cell in enumerate(row):
            if i == len(row) - 1 and i not in right:
                parts.append(cell)
            elif i in right:
                parts.append(cell.rjust(widths[i]))
            else:
                parts.append(cell.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


# --- show neighbors -------------------------------------------------------------------------


def _up_down(n: dict) -> str:
    if n.get("state") == "Established" and n.get("uptime") is not None:
        return duration(n["uptime"])
    return duration(n.get("since"))


def neighbors_table(neighbors: list[dict]) -> str:
    if not neighbors:
        return "No neighbors configured."
    rows = [
        (
            n["address"],
            n["asn"],
            n["state"],
            _up_down(n),
            n.get("hold_time"),
            n.get("prefixes", {}).get("received", 0),
            n.get("prefixes", {}).get("advertised", 0),
            n.get("last_error") or "",
        )
        for n in neighbors
    ]
    headers = ("Address", "AS", "State", "Up/Down", "Hold", "PfxRcd", "PfxSnt", "Last error")
    return table(headers, rows, right=frozenset({1, 4, 5, 6}))


_MESSAGE_KINDS = ("open", "update", "notification", "keepalive", "route_refresh", "total")


def neighbor_detail(n: dict) -> str:
    title = f"Neighbor {n['address']}, AS {n['asn']}"
    if n.get("description"):
        title += f" ({n['description']})"
    if n.get("state") == "Established":
        state = f"Established for {duration(n.get('uptime'))}"
    else:
        state = f"{n['state']} for {duration(n.get('since'))}"
    timers = "-"
    if n.get("hold_time") is not None:
        timers = f"{n['hold_time']} s"
        if n.get("keepalive") is not None:
            timers += f", keepalive {n['keepalive']} s"
    p = n.get("prefixes") or {}
    info = [
        ("State", state),
        ("Router ID", n.get("router_id") or "-"),
        ("Local address", n.get("local_address") or "-"),
        ("Hold time", timers),
        ("Families", ", ".join(n.get("families") or ()) or "-"),
        ("Capabilities", ", ".join(n.get("capabilities") or ()) or "-"),
        (
            "Prefixes",
            f"{p.get('received', 0)} received, {p.get('accepted', 0)} accepted, "
            f"{p.get('advertised', 0)} advertised",
        ),
    ]
    if n.get("dynamic_from"):
        info.append(("Dynamic from", n["dynamic_from"]))
    info.append(("Last error", n.get("last_error") or "-"))
    lines = [title]
    lines += [f"  {k + ':':<15} {v}" for k, v in info]
    msgs = n.get("messages") or {}
    rx, tx = msgs.get("in") or {}, msgs.get("out") or {}
    rows = [(kind, tx.get(kind, 0), rx.get(kind, 0)) for kind in _MESSAGE_KINDS]
    lines.append("  Messages:")
    lines += [
        "    " + line
        for line in table(("", "Sent", "Received"), rows, frozenset({1, 2})).split("\n")
    ]
    return "\n".join(lines)


# --- show summary ---------------------------------------------------------------------------


def summary(s: dict) -> str:
    n = s.get("neighbors") or {}
    r = s.get("routes") or {}
    lines = [
        f"BGP router identifier {s['router_id']}, local AS {s['asn']}",
        f"Up for {duration(s.get('uptime'))}",
        f"Neighbors: {n.get('total', 0)} configured, {n.get('established', 0)} established",
        f"Routes: {r.get('ipv4', 0)} IPv4, {r.get('ipv6', 0)} IPv6",
    ]
    if "graceful_restart" in s:
        lines += graceful_restart_lines(s["graceful_restart"] or {})
    return "\n".join(lines)


def graceful_restart_lines(g: dict) -> list[str]:
    """The graceful restart part of ``show summary``: how this start counted (a restart or
    a cold start, and why), what our restart still waits for, the neighbors restarting."""
    if not g.get("enabled"):
        return ["Graceful restart: off"]
    kind = {"restart": "restart", "cold": "cold start"}.get(g.get("start") or "", "on")
    line = f"Graceful restart: {kind}"
    if g.get("start_reason"):
        line += f" ({g['start_reason']})"
    if g.get("restarting"):
        waiting = g.get("waiting_for_eor") or []
        line += "; our routes deferred"
        if waiting:
            line += " until End-of-RIB from " + ", ".join(waiting)
        left = g.get("deferral_remaining")
        if left is not None:
            line += f", at most {int(left)} s more"
    elif g.get("start") == "restart":
        line += "; complete"
    lines = [line]
    for addr, st in sorted((g.get("neighbors") or {}).items()):
        lines.append(
            f"  Neighbor {addr}: {st.get('state')}, {st.get('stale_routes', 0)} stale routes"
        )
    return lines


# --- show routes ----------------------------------------------------------------------------


def routes_table(routes: list[dict]) -> str:
    if not routes:
        return "No routes."
    rows = []
    n_paths = 0
    for route in routes:
        paths = route.get("paths") or []
        if not paths:
            rows.append(("", route["prefix"], "", "", "", "", "", "", ""))
        for i, p in enumerate(paths):
            n_paths += 1
            if p.get("filtered"):
                status = "F"  # received, dropped by import (shown with --received)
            else:
                status = "*" + (">" if p.get("best") else "=" if p.get("multipath") else "")
            rows.append(
                (
                    status,
                    route["prefix"] if i == 0 else "",
                    p.get("next_hop"),
                    p.get("from"),
                    p.get("source"),
                    p.get("med"),
                    p.get("local_pref"),
                    p.get("origin"),
                    p.get("as_path") or "",
                )
            )
    headers = ("", "Prefix", "Next hop", "From", "Source", "MED", "LocPrf", "Origin", "AS path")
    body = table(headers, rows, right=frozenset({5, 6}))
    reasons = sorted(
        {p["filtered"] for r in routes for p in r.get("paths") or () if p.get("filtered")}
    )
    note = "".join(f"\nF: filtered on import: {why}" for why in reasons)
    return f"{body}\n\n{len(routes)} prefixes, {n_paths} paths (> best, = multipath){note}"


# --- show bfd -------------------------------------------------------------------------------


def bfd_table(result: dict) -> str:
    sessions = result.get("sessions") or []
    if not sessions:
        return "No BFD sessions."
    rows = []
    for r in sessions:
        up = r.get("up_for_s")
        rows.append(
            (
                r.get("neighbor") or r.get("peer"),
                r.get("local"),
                "multihop" if r.get("multihop") else (r.get("interface") or "single hop"),
                r.get("state"),
                r.get("remote_state"),
                f"{r.get('tx_interval_ms', 0):g}/{r.get('detection_time_ms', 0):g}",
                duration(up) if up is not None else "-",
                r.get("flaps", 0),
                r.get("local_diag"),
            )
        )
    headers = (
        "Neighbor",
        "Local",
        "Path",
        "State",
        "Remote",
        "Tx/Detect ms",
        "Up",
        "Flaps",
        "Diag",
    )
    body = table(headers, rows, right=frozenset({7}))
    drops = {k: v for k, v in (result.get("drops") or {}).items() if v}
    tail = f"\npackets dropped: {drops}" if drops else ""
    downs = result.get("bgp_down_events", 0)
    return f"{body}\n\nBGP sessions taken down by BFD: {downs}{tail}"


# --- show monitoring ------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def monitoring(m: dict) -> str:
    """``show monitoring``: the MRT update log, the BMP stations, the table dumps."""
    lines = []
    mrt = m.get("mrt")
    if mrt is None:
        lines.append("MRT update log: off")
    else:
        lines.append(f"MRT update log: {mrt.get('pattern')} (rotate {mrt.get('rotate'):g} s)")
        lines.append(f"  current file   {mrt.get('file') or '-'}")
        lines.append(
            f"  records        {mrt.get('records', 0)} ({_size(mrt.get('bytes'))}), "
            f"waiting {_size(mrt.get('pending'))}"
        )
        lost = (
            f"  dropped        {mrt.get('dropped_records', 0)} records "
            f"({_size(mrt.get('dropped_bytes'))}); write errors {mrt.get('errors', 0)}"
        )
        if mrt.get("last_error"):
            lost += f" (last: {mrt['last_error']})"
        lines.append(lost)
    bmp = m.get("bmp")
    if bmp is None:
        lines.append("BMP: off")
    else:
        lines.append(f"BMP: {bmp.get('peers', 0)} peers up")
        rows = [
            (
                s["station"],
                s["state"] + (" (resync)" if s.get("resyncing") else ""),
                s.get("connects", 0),
                s.get("drops", 0),
                _size(s.get("sent_bytes")),
                _size(s.get("buffered")),
                s.get("last_error") or "",
            )
            for s in bmp.get("stations", [])
        ]
        headers = ("Station", "State", "Connects", "Drops", "Sent", "Queued", "Last error")
        lines += ["  " + x for x in table(headers, rows, right=frozenset({2, 3})).splitlines()]
    d = m.get("dumps") or {}
    last = d.get("last")
    text = f"Table dumps: {d.get('count', 0)}"
    if d.get("running"):
        text += f", writing {d['running']}"
    if last:
        text += (
            f"; last {last['file']}: {last.get('prefixes', 0)} prefixes, "
            f"{last.get('entries', 0)} entries, {_size(last.get('bytes'))} "
            f"in {last.get('seconds', 0):.1f} s"
        )
    lines.append(text)
    return "\n".join(lines)

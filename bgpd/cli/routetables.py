"""Human-readable renderings of ``route_list`` and ``show_services`` (docs/api.md)."""

from .tables import duration, table


def _seconds(value) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    return duration(value)


def _attrs(r: dict) -> str:
    parts = list(r.get("communities") or []) + list(r.get("large_communities") or [])
    return " ".join(parts)


def route_list(result: dict) -> str:
    routes = result.get("routes") or []
    if not routes:
        return "No routes added through the route API."
    rows = [
        (
            ">" if r.get("best") else "",
            r["prefix"],
            r["owner"],
            r.get("next_hop") or "self",
            r.get("local_pref"),
            r.get("med"),
            r.get("as_path_prepend") or "",
            _seconds(r.get("expires_in")) if r.get("lease") is not None else "",
            _attrs(r),
        )
        for r in routes
    ]
    headers = (
        "",
        "Prefix",
        "Owner",
        "Next hop",
        "LocPrf",
        "MED",
        "Prepend",
        "Expires",
        "Communities",
    )
    owners = result.get("owners") or []
    body = table(headers, rows, right=frozenset({4, 5, 6}))
    return f"{body}\n\n{len(routes)} routes, {len(owners)} owners (> best path of its prefix)"


def services(result: dict) -> str:
    items = result.get("services") or []
    if not items:
        return "No services configured."
    rows = []
    for s in items:
        last = s.get("last") or {}
        rows.append(
            (
                s["name"],
                s["state"],
                s["routes"],
                f"{s['check']} {s['target']}",
                f"{s['rise']}/{s['fall']}",
                s.get("checks"),
                s.get("failures"),
                last.get("detail", "") if last else "",
            )
        )
    headers = ("Service", "State", "Routes", "Check", "Rise/Fall", "Checks", "Failed", "Last")
    return table(headers, rows, right=frozenset({5, 6}))

"""BFD for BGP sessions (docs/bfd.md): the daemon's side of bgpd.bfd.

One :class:`~bgpd.bfd.transport.BfdService` serves every neighbor with a ``bfd:`` section.
When an Up BFD session fails (its detection time ran out, or the peer said Down), the BGP
session is ended at once with Cease subcode 10 "BFD Down" (RFC 9384), and graceful restart
keeps the routes as it does for any other loss; it starts again at once, or, with
``strict: true``, only once BFD is Up again (a strict neighbor's session is also not started
before its BFD session is Up). The peer's AdminDown is not a failure (RFC 5882 §3.2).

bgpd.bfd is imported with the first neighbor that has a ``bfd:`` section: a daemon without
BFD never loads it.
"""

from typing import TYPE_CHECKING

import structlog

from bgpd.wire.constants import CEASE_BFD_DOWN

if TYPE_CHECKING:
    from bgpd.bfd.transport import BfdService

log = structlog.get_logger("bgpd")


class BfdSessions:
    def __init__(self, speaker) -> None:
        self.speaker = speaker
        self.service: BfdService | None = None  # made with the first neighbor that wants it
        self.down_events = 0  # BGP sessions BFD took down
        self.held: set = set()  # neighbors (strict) whose BGP session waits for BFD Up

    def attach(self, n) -> None:
        """Give neighbor ``n`` its BFD session (its config says ``bfd:``)."""
        cfg = n.cfg.bfd
        if cfg is None or n.bfd is not None:
            return
        from bgpd.bfd.transport import BfdService

        if self.service is None:
            self.service = BfdService()
        try:
            local = str(n.cfg.source_address or "") or BfdService.local_address_for(
                n.address, cfg.interface
            )
        except OSError as e:
            log.error("bfd: no local address toward the neighbor", peer=n.address, error=str(e))
            return
        n.bfd = self.service.add_configured(
            n.address, local, cfg, on_change=lambda key, ev, n=n: self._changed(n, ev)
        )

    def detach(self, n) -> None:
        if n.bfd is not None and self.service is not None:
            self.service.remove_session(n.bfd)
        n.bfd = None
        self.held.discard(n)

    def holds(self, n) -> bool:
        """Whether a strict neighbor's BGP session must wait for its BFD session to be Up
        (it is then started when BFD comes Up)."""
        cfg = n.cfg.bfd
        if cfg is None or not cfg.strict:
            return False
        if n.bfd is not None and self.service is not None and self.service.is_up(n.bfd):
            return False
        self.held.add(n)
        return True

    def _changed(self, n, ev) -> None:
        from bgpd.bfd import State  # loaded: an event comes from the service
        from bgpd.bfd.packet import diag_label

        sp = self.speaker
        if sp.neighbors.get(n.address) is not n:
            return
        if ev.is_failure:
            self.down_events += 1
            strict = n.cfg.bfd.strict
            log.warning(
                "bfd: session down, ending the BGP session",
                peer=n.address,
                diag=diag_label(ev.diag),
                strict=strict,
            )
            if strict and n.session.enabled:
                self.held.add(n)
            n.session.drop(CEASE_BFD_DOWN, "BFD Down", restart=not strict)
            n.session.last_error = f"BFD Down ({diag_label(ev.diag)})"
        elif ev.new == State.UP and n in self.held:
            self.held.discard(n)
            if not n.cfg.shutdown and not n.session.enabled and not n.session.closed:
                log.info("bfd: session up, starting the BGP session", peer=n.address)
                n.session.start()

    def reconfigure(self, n, old_cfg) -> None:
        """The neighbor's ``bfd:`` section changed on a reload."""
        if old_cfg.bfd == n.cfg.bfd:
            return
        new = n.cfg.bfd
        if (
            new is not None
            and old_cfg.bfd is not None
            and n.bfd is not None
            and (new.multihop, new.interface, new.min_ttl)
            == (old_cfg.bfd.multihop, old_cfg.bfd.interface, old_cfg.bfd.min_ttl)
        ):
            self.service.update_session(n.bfd, new.params)  # a poll sequence tells the peer
            return
        self.detach(n)
        self.attach(n)

    def snapshot(self) -> dict:
        """``show bfd``: the service's snapshot, each session with its neighbor."""
        if self.service is None:
            return {"sessions": [], "drops": {}, "bgp_down_events": self.down_events}
        snap = self.service.snapshot()
        by_key = {
            (str(k.peer), str(k.local)): n.address
            for n in self.speaker.neighbors.values()
            if (k := n.bfd) is not None
        }
        for row in snap["sessions"]:
            row["neighbor"] = by_key.get((row["peer"], row["local"]))
        snap["bgp_down_events"] = self.down_events
        return snap

    def close(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None

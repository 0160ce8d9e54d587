"""The import pipeline: what a batch of received UPDATEs does to the Loc-RIB.

Per (peer, attribute set): the loop checks of RFC 4271 §9.1.2 and RFC 4456 §8
(:func:`bgpd.reflector.import_ok`) and an import policy that reads nothing but the set,
remembered on the set (:meth:`AttrSet.memo`), so that the prefixes of an UPDATE cost one
dict operation each. A policy that reads the prefix runs per prefix, and the accepted
prefixes are applied in groups of equal results.
"""

from bgpd.reflector import import_ok
from bgpd.wire import AttrSet


class Identity:
    """Who we are, as the import and export rules need it (changes only on a reload)."""

    __slots__ = ("router_id", "cluster_id", "asn")

    def __init__(self, router_id: bytes, cluster_id: bytes | None, asn: int) -> None:
        self.router_id = router_id
        self.cluster_id = cluster_id
        self.asn = asn


class ImportPipeline:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def apply(self, peer, locs: dict, updates) -> None:
        """Apply a batch of decoded UPDATEs from ``peer`` to the Loc-RIBs (not committed).

        What the loop checks or the import policy drop is kept in ``peer.filtered`` (as
        BIRD's ``import keep filtered``): it was received, it is shown with the reason, it
        is not a candidate. Costs nothing while a peer has nothing filtered.
        """
        src = peer.source
        filtered = peer.filtered
        accepted_for = self.accepted
        per_prefix = peer.import_policy is not None and not peer.import_policy.attr_only
        for u in updates:
            for fam, keys in u.unreach():
                t = locs.get(fam)
                if t is not None:
                    t.withdraw(src, keys)
                    flt = filtered[fam]
                    if flt:
                        for k in keys:
                            flt.pop(k, None)
            for fam, attrs, keys in u.reach():
                t = locs.get(fam)
                if t is None:
                    continue
                if per_prefix:
                    self._per_prefix(peer, t, attrs, fam, keys)
                    continue
                accepted = accepted_for(peer, attrs, fam)
                flt = filtered[fam]
                if accepted is None:
                    t.withdraw(src, keys)  # filtered: drop what we may have had
                    flt.update(dict.fromkeys(keys, attrs))
                else:
                    t.announce(src, keys, accepted)
                    if flt:
                        for k in keys:
                            flt.pop(k, None)

    def why_filtered(self, peer, attrs: AttrSet, fam, prefix: bytes) -> str:
        """Why import dropped a route (for ``show routes --received``): the loop check that
        failed, or the import policy."""
        ident = self.identity
        src = peer.source
        why = import_ok(
            attrs, src, src.local_as, ident.router_id, ident.cluster_id, peer.cfg.allow_own_as
        )
        return why or f"rejected by import policy {peer.import_policy.name}"

    def accepted(self, peer, attrs: AttrSet, fam):
        """Loop prevention and an attribute-only import policy, once per (peer, set)."""
        return attrs.memo(peer.import_key, self._check, peer, fam)

    def _check(self, attrs: AttrSet, peer, fam):
        ident = self.identity
        src = peer.source
        why = import_ok(
            attrs, src, src.local_as, ident.router_id, ident.cluster_id, peer.cfg.allow_own_as
        )
        result = None if why else attrs
        pol = peer.import_policy
        if result is not None and pol is not None and pol.attr_only:
            result = pol.evaluate(attrs, b"", fam, peer.route_info)
        if id(attrs) not in peer.cached_on:
            peer.cached_on[id(attrs)] = attrs
        return result

    def _per_prefix(self, peer, t, attrs: AttrSet, fam, keys) -> None:
        """An import policy that looks at the prefix: evaluate each one, then apply in
        groups (the loop checks are still per set: the policy is not attr-only, so
        :meth:`accepted` leaves it out)."""
        src = peer.source
        flt = peer.filtered[fam]
        if self.accepted(peer, attrs, fam) is None:
            t.withdraw(src, keys)
            flt.update(dict.fromkeys(keys, attrs))
            return
        pol = peer.import_policy
        info = peer.route_info
        groups: dict = {}
        rejected = []
        for key in keys:
            p = key[1] if type(key) is tuple else key
            r = pol.evaluate(attrs, p, fam, info)
            if r is None:
                rejected.append(key)
            else:
                groups.setdefault(r, []).append(key)
        if rejected:
            t.withdraw(src, rejected)
            flt.update(dict.fromkeys(rejected, attrs))
        for r, ks in groups.items():
            t.announce(src, ks, r)
            if flt:
                for k in ks:
                    flt.pop(k, None)

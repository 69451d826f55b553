"""The keep-or-resolve rule of `pinrepro lock`, per lock key: a pure function of the FROM lines that share the key,
the old lock's entry, the platforms wanted and ``--upgrade`` (tests/test_lock_plan.py covers each branch).

Like pip-compile, a pin stands until its input changes or the user asks to upgrade; a locked digest stands only
for exactly the normalised reference (registry, repository, tag) it was locked with - the lock key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pinrepro.discovery import ImageSite
from pinrepro.errors import PinreproError
from pinrepro.lockfile import ImageLock
from pinrepro.reference import ImageRef


@dataclass(frozen=True)
class Plan:
    """``keep``: the old entry stands, no request. ``check``: it stands unless its tag moved (--upgrade: one HEAD).
    ``describe``: ask the registry for ``ask`` (a tag, or a digest); ``replaced`` is a digest written beside the
    tag that this reference was never locked with, which the tag's current digest replaces."""

    action: Literal["keep", "check", "describe"]
    ask: ImageRef
    replaced: str | None = None


def plan_image(group: Sequence[ImageSite], prev: ImageLock | None, wanted: Sequence[str], *,
               upgrade: bool) -> Plan:
    """What to do for the sites in ``group`` (one lock key); PinreproError when they name different digests."""
    written = {s.ref.digest for s in group if s.ref.digest}
    ref = group[0].ref.without_digest()
    if len(written) > 1:
        places = ", ".join(s.location for s in group)
        raise PinreproError(f"{ref.familiar()} is pinned to different digests at {places}",
                            fix="make the FROM lines agree (or remove the digests) and run `pinrepro lock`")
    user_digest = next(iter(written), None)  # a digest-only reference's: its lock key carries it
    covered = prev is not None and set(wanted) <= set(prev.platforms)
    if prev is not None and covered and user_digest in (None, prev.digest):
        return Plan("check" if upgrade and ref.tag else "keep", ref)
    if user_digest and (not ref.tag or (prev is not None and not upgrade)):
        # A digest is kept only under the reference it was locked with (same registry, repository and tag: the
        # lock key), or when there is no tag to ask about (a digest-only reference).
        return Plan("describe", ref.with_digest(user_digest))
    # A new reference - a changed ARG, an edited tag, a digest written by hand - gets the digest its tag serves
    # now: the digest written next to it may belong to another tag.
    return Plan("describe", ref, replaced=user_digest)

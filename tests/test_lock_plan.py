"""The keep-or-resolve rule (pinrepro.lockflow.plan.plan_image) on its own: one case per branch, no registry."""

from __future__ import annotations

import pytest

from pinrepro.discovery import ImageSite
from pinrepro.dockerfile import FromSite
from pinrepro.errors import PinreproError
from pinrepro.lockfile import ImageLock, PlatformLock
from pinrepro.lockflow.plan import Plan, plan_image
from pinrepro.reference import ImageRef

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
AMD64 = ("linux/amd64",)
BOTH = ("linux/amd64", "linux/arm64")


def site(written: str, line: int = 1) -> ImageSite:
    return ImageSite(None, FromSite("Dockerfile", line, written, written, "image"), ImageRef.parse(written))


def locked(digest: str = OLD, platforms: tuple[str, ...] = AMD64) -> ImageLock:
    return ImageLock(digest=digest, media_type="application/vnd.oci.image.index.v1+json", sites=("Dockerfile:1",),
                     platforms={p: PlatformLock(digest="sha256:" + "c" * 64) for p in platforms})


def plan(*written: str, prev: ImageLock | None = None, wanted: tuple[str, ...] = AMD64,
         upgrade: bool = False) -> Plan:
    return plan_image([site(w, n) for n, w in enumerate(written, start=1)], prev, wanted, upgrade=upgrade)


def tag() -> ImageRef:
    return ImageRef.parse("ubuntu:22.04")


def test_a_reference_never_locked_asks_its_tag() -> None:
    assert plan("ubuntu:22.04") == Plan("describe", tag())


def test_a_locked_reference_is_kept_without_a_request() -> None:
    assert plan("ubuntu:22.04", prev=locked()) == Plan("keep", tag())
    assert plan(f"ubuntu:22.04@{OLD}", prev=locked()) == Plan("keep", tag())


def test_upgrade_checks_a_kept_tag_with_a_head() -> None:
    assert plan("ubuntu:22.04", prev=locked(), upgrade=True) == Plan("check", tag())


def test_a_digest_only_reference_is_never_checked() -> None:
    ref = ImageRef.parse(f"ubuntu@{OLD}")
    assert plan(f"ubuntu@{OLD}", prev=locked(), upgrade=True) == Plan("keep", ref.without_digest())
    assert plan(f"ubuntu@{OLD}", upgrade=True) == Plan("describe", ref)


def test_a_new_platform_describes_the_locked_digest_again() -> None:
    # The lock key is the same reference: its digest stands, only the platforms it lacks are read.
    assert plan(f"ubuntu:22.04@{OLD}", prev=locked(), wanted=BOTH) == Plan("describe", tag().with_digest(OLD))


def test_a_new_platform_with_upgrade_asks_the_tag() -> None:
    assert plan("ubuntu:22.04", prev=locked(), wanted=BOTH, upgrade=True) == Plan("describe", tag())


def test_a_digest_written_under_the_locked_reference_is_kept() -> None:
    # Same lock key, another digest written by hand: the user's digest for the reference it was locked with.
    assert plan(f"ubuntu:22.04@{NEW}", prev=locked()) == Plan("describe", tag().with_digest(NEW))


def test_a_digest_beside_a_reference_never_locked_is_replaced() -> None:
    # A changed tag or ARG keeps the old digest in the text: that digest belongs to another reference.
    assert plan(f"ubuntu:22.04@{OLD}") == Plan("describe", tag(), replaced=OLD)
    assert plan(f"ubuntu:22.04@{NEW}", prev=locked(), upgrade=True) == Plan("describe", tag(), replaced=NEW)


def test_different_digests_for_one_reference_are_an_error() -> None:
    with pytest.raises(PinreproError) as info:
        plan(f"ubuntu:22.04@{OLD}", f"ubuntu:22.04@{NEW}")
    assert str(info.value) == ("ubuntu:22.04 is pinned to different digests at Dockerfile:1, Dockerfile:2 - make the "
                               "FROM lines agree (or remove the digests) and run `pinrepro lock`")

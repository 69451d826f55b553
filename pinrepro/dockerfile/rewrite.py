"""The rewrite: every image FROM pinned to the digest asked for, every other byte of the file unchanged."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pinrepro.dockerfile.model import Dockerfile, FromSite, strip_digest
from pinrepro.dockerfile.pin import analyse
from pinrepro.dockerfile.slots import DIGEST
from pinrepro.errors import DockerfileError
from pinrepro.reference import DEFAULT_TAG, ImageRef

_SHARED_ARG_FIX = "use the ARG that holds the image only as the whole reference in FROM lines"


def rewrite(dockerfile: Dockerfile, digest_for: Callable[[FromSite], str | None]) -> str:
    """Return the Dockerfile text with each image site pinned to ``digest_for(site)`` (None: leave it)."""
    path = dockerfile.path
    sites, slots = analyse(dockerfile.text, path)
    edits: dict[tuple[int, int], str] = {}
    arg_choice: dict[str, tuple[str, FromSite]] = {}
    expected = [site.image for site in sites]
    for index, site in enumerate(sites):
        if site.kind != "image" or site.image is None:
            continue
        digest = digest_for(site)
        if digest is None:
            continue
        where = f"{path}:{site.line}"
        if not DIGEST.fullmatch(digest):
            raise DockerfileError(f"'{digest}' is not a digest for {site.image}", where=where,
                                  fix="pass the digest as sha256:<64 hex digits>")
        base, current = strip_digest(site.image)
        slot = slots[index]
        if slot is None:
            if current == digest:
                continue
            raise DockerfileError(
                f"cannot pin '{site.written}': its digest comes from an ARG value that is not the whole reference",
                where=where,
                fix="write the digest in the FROM line itself, or put the whole reference in one ARG",
            )
        if site.pin_target == "arg" and site.arg_name is not None:
            earlier = arg_choice.get(site.arg_name)
            if earlier is not None and earlier[0] != digest:
                raise DockerfileError(
                    f"ARG {site.arg_name} feeds the FROM lines {earlier[1].line} and {site.line}, which would need "
                    f"different digests ({earlier[0]} and {digest})",
                    where=where,
                    fix="give each FROM its own ARG, or use the same image in both",
                )
            arg_choice[site.arg_name] = (digest, site)
        tag = _implicit_tag(base)
        for start, end, replacement in slot.edits(f"{tag}@{digest}"):
            edits[(start, end)] = replacement
        expected[index] = f"{base}{tag}@{digest}"
    # A pinned ARG also pins every other FROM that uses it as the whole reference.
    for index, site in enumerate(sites):
        if site.pin_target == "arg" and site.arg_name in arg_choice and site.image is not None:
            base = strip_digest(site.image)[0]
            expected[index] = f"{base}{_implicit_tag(base)}@{arg_choice[site.arg_name][0]}"
    new_text = apply_edits(dockerfile.text, edits)
    if new_text != dockerfile.text:  # an unchanged text names what it named (a lock with nothing to do)
        _check_only_pins_changed(path, sites, expected, new_text)
    return new_text


def _implicit_tag(base: str) -> str:
    """``:latest`` for a reference written without a tag, else nothing.

    ``FROM ubuntu`` means ``ubuntu:latest`` (Docker's rule). Pinning it as ``ubuntu@sha256:...`` would drop
    the tag for good - nobody could tell later which tag to move - so the pin spells the tag out.
    """
    return f":{DEFAULT_TAG}" if ImageRef.parse(base).implicit_tag else ""


def apply_edits(text: str, edits: Mapping[tuple[int, int], str]) -> str:
    """``text`` with each ``(start, end)`` span replaced; every other character stays."""
    pieces: list[str] = []
    position = 0
    for (start, end), replacement in sorted(edits.items()):
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = max(position, end)
    pieces.append(text[position:])
    return "".join(pieces)


def _check_only_pins_changed(path: str, before: tuple[FromSite, ...], expected: list[str | None],
                             new_text: str) -> None:
    """Re-read the result: each FROM must name what it named before, plus exactly the digest asked for.

    This catches an ARG whose default also feeds another ARG or another FROM in a way a pin would change.
    """
    try:
        after, _ = analyse(new_text, path)
    except DockerfileError as error:
        raise DockerfileError(f"pinning would break this FROM: {error.what}", where=error.where,
                              fix=_SHARED_ARG_FIX) from None
    for old, new, want in zip(before, after, expected, strict=True):
        if (new.kind, new.image) != (old.kind, want):
            raise DockerfileError(
                f"pinning would change the FROM on this line from '{old.image or old.written}' to "
                f"'{new.image or new.written}'",
                where=f"{path}:{old.line}",
                fix=_SHARED_ARG_FIX,
            )

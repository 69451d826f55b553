"""An in-memory registry for lock/verify decision tests: tags -> descriptions, and a count of what was asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pinrepro.errors import NotFoundError, PinreproError
from pinrepro.reference import ImageRef
from pinrepro.registry.client import Descriptor, ImageDescription, PlatformManifest

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


class FakeRegistry:
    """Tags -> descriptions; counts what lock asks for."""

    def __init__(self) -> None:
        self.tags: dict[str, ImageDescription] = {}
        self.by_digest: dict[str, ImageDescription] = {}  # every image ever pushed stays pullable by digest
        self.described: list[str] = []
        self.headed: list[str] = []
        self.scanned: list[str] = []
        self.closed = 0  # lock closes the registry it made when it is done

    def scan(self, ref: ImageRef, platform_digest: str) -> dict[str, object]:
        self.scanned.append(platform_digest)
        return {"apt": {"libc6": "2.35"}, "python": "3.11.9"}

    def push(self, ref: str, n: int, platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8")) -> str:
        description = ImageDescription(
            digest=digest(n), media_type=INDEX,
            platforms={p: PlatformManifest(digest(n * 100 + i), MANIFEST, None) for i, p in enumerate(platforms)},
        )
        self.tags[str(ImageRef.parse(ref))] = self.by_digest[description.digest] = description
        return digest(n)

    def _lookup(self, ref: ImageRef) -> ImageDescription:
        if ref.digest and ref.digest in self.by_digest:
            return self.by_digest[ref.digest]
        if not ref.digest and str(ref) in self.tags:
            return self.tags[str(ref)]
        raise NotFoundError(f"{ref.familiar()} not found", where=ref.registry)

    def describe_many(self, refs: Sequence[ImageRef], *,
                      then: Callable[[ImageRef, ImageDescription], None] | None = None
                      ) -> dict[ImageRef, ImageDescription]:
        self.described.extend(str(r) for r in refs)
        found = {ref: self._lookup(ref) for ref in refs}
        for ref, description in found.items():
            if then is not None:
                then(ref, description)
        return found

    def head_many(self, refs: Sequence[ImageRef]) -> dict[ImageRef, Descriptor | PinreproError]:
        self.headed.extend(str(r) for r in refs)
        answers: dict[ImageRef, Descriptor | PinreproError] = {}
        for ref in refs:
            try:
                found = self._lookup(ref)
                answers[ref] = Descriptor(found.digest, found.media_type, None)
            except PinreproError as exc:
                answers[ref] = exc
        return answers

    def close(self) -> None:
        self.closed += 1

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

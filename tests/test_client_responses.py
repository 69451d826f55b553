"""RegistryClient against `responses`: digests, HEAD fallbacks, verification, describe, budgets, mirrors, blobs."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from pinrepro.errors import AuthError, NotFoundError, PinreproError, RegistryError, RepositoryNotFoundError
from pinrepro.reference import ImageRef
from pinrepro.registry import (
    ACCEPT_MANIFESTS,
    AnonymousKeychain,
    Descriptor,
    PlatformManifest,
    RegistryClient,
    match_platform,
    platform_key,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_BODY = (FIXTURES / "oci-index-with-attestation.json").read_bytes()
LIST_BODY = (FIXTURES / "docker-manifest-list-v2.json").read_bytes()
CONFIG_AMD64 = (FIXTURES / "image-config-amd64.json").read_bytes()
CONFIG_ARM64 = (FIXTURES / "image-config-arm64.json").read_bytes()
HUB_TOKEN = json.loads((FIXTURES / "dockerhub-token.json").read_text(encoding="utf-8"))
GHCR_CHALLENGE = 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def single_manifest(config: bytes) -> bytes:
    """The schema2 example with its config descriptor pointing at ``config``."""
    manifest = json.loads((FIXTURES / "docker-image-manifest-v2.json").read_text(encoding="utf-8"))
    manifest["config"]["digest"] = sha(config)
    manifest["config"]["size"] = len(config)
    return json.dumps(manifest, indent=3).encode()


MANIFEST_AMD64 = single_manifest(CONFIG_AMD64)
MANIFEST_ARM64 = single_manifest(CONFIG_ARM64)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def client(**options: object) -> RegistryClient:
    options.setdefault("sleep", Sleeps())
    return RegistryClient(AnonymousKeychain(), **options)  # type: ignore[arg-type]


def ghcr_auth(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=401, headers={"WWW-Authenticate": GHCR_CHALLENGE})
    rsps.get("https://ghcr.io/token", json={"token": "ghcr-anon", "expires_in": 300})


def serve_manifest(rsps: responses.RequestsMock, host: str, repository: str, reference: str, body: bytes,
                   media_type: str, *, digest_header: bool = True, get: bool = True, head: int | None = None) -> None:
    """The manifest by GET, and by HEAD with status ``head``: each test registers only what it expects asked."""
    headers = {"Content-Type": media_type}
    if digest_header:
        headers["Docker-Content-Digest"] = sha(body)
    url = f"https://{host}/v2/{repository}/manifests/{reference}"
    if get:
        rsps.get(url, body=body, headers=headers)
    if head is not None:
        rsps.head(url, status=head, headers={**headers, "Content-Length": str(len(body))} if head == 200 else {})


def serve_blob(rsps: responses.RequestsMock, host: str, repository: str, body: bytes,
               digest: str | None = None) -> None:
    rsps.get(f"https://{host}/v2/{repository}/blobs/{digest or sha(body)}", body=body,
             headers={"Content-Type": "application/octet-stream"})


def ref(text: str) -> ImageRef:
    return ImageRef.parse(text)


# -- platforms ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("parts", "key"),
    [(("linux", "arm64", "v8"), "linux/arm64/v8"), (("linux", "amd64", None), "linux/amd64"),
     (("linux", "arm", "v7"), "linux/arm/v7"), (("Linux", "AMD64", ""), "linux/amd64")],
)
def test_platform_key(parts: tuple[str, str, str | None], key: str) -> None:
    assert platform_key(*parts) == key


@pytest.mark.parametrize(
    ("wanted", "available", "expected"),
    [
        ("linux/arm64", ["linux/amd64", "linux/arm64/v8"], "linux/arm64/v8"),
        ("linux/arm64/v8", ["linux/arm64"], "linux/arm64"),
        ("linux/arm64", ["linux/arm64", "linux/arm64/v8"], "linux/arm64"),
        ("linux/arm/v7", ["linux/arm/v6", "linux/arm/v7"], "linux/arm/v7"),
        ("linux/arm/v7", ["linux/arm/v6"], None),
        ("linux/arm", ["linux/arm/v6", "linux/arm/v7"], "linux/arm/v7"),
        ("linux/arm", ["linux/arm/v6"], "linux/arm/v6"),
        ("linux/amd64", ["linux/amd64/v2", "linux/amd64/v3"], None),
        ("linux/amd64", ["linux/amd64/v3"], "linux/amd64/v3"),
        ("linux/x86_64", ["linux/amd64"], "linux/amd64"),
        ("linux/aarch64", ["linux/arm64/v8"], "linux/arm64/v8"),
        ("linux/ppc64le", ["linux/amd64", "linux/arm64/v8"], None),
        ("windows/amd64", ["linux/amd64"], None),
        ("linux/amd64", [], None),
    ],
)
def test_match_platform(wanted: str, available: list[str], expected: str | None) -> None:
    assert match_platform(wanted, available) == expected


# -- head_digest ---------------------------------------------------------------------------------------

def test_head_digest_sends_all_four_accept_types(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", INDEX_BODY, OCI_INDEX, get=False, head=200)
    c = client()
    assert c.head_digest(ref("ghcr.io/org/img:1.0")) == Descriptor(sha(INDEX_BODY), OCI_INDEX, len(INDEX_BODY))
    head = rsps.calls[2].request
    assert head.method == "HEAD"
    assert sorted(head.headers["Accept"].split(", ")) == sorted([
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json"])
    assert head.headers["Accept"] == ACCEPT_MANIFESTS
    assert head.headers["Accept-Encoding"] == "identity"
    assert c.transport.request_count == 3


def test_docker_hub_head_with_ratelimit_headers(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry-1.docker.io/v2/", status=401,
             body=(FIXTURES / "dockerhub-ping-401.json").read_bytes(),
             headers={"WWW-Authenticate": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'})
    rsps.get("https://auth.docker.io/token", json=HUB_TOKEN)
    rsps.head("https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04", headers={
        "Docker-Content-Digest": sha(LIST_BODY), "Content-Type": DOCKER_LIST, "Content-Length": str(len(LIST_BODY)),
        "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"})
    c = client()
    assert c.head_digest(ref("ubuntu:22.04")) == Descriptor(sha(LIST_BODY), DOCKER_LIST, len(LIST_BODY))
    assert parse_qs(urlsplit(str(rsps.calls[1].request.url)).query)["scope"] == ["repository:library/ubuntu:pull"]


def test_head_without_digest_header_falls_back_to_get(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", INDEX_BODY, OCI_INDEX, digest_header=False, head=200)
    c = client()
    assert c.head_digest(ref("ghcr.io/org/img:1.0")) == Descriptor(sha(INDEX_BODY), OCI_INDEX, len(INDEX_BODY))
    assert [call.request.method for call in rsps.calls] == ["GET", "GET", "HEAD", "GET"]


@pytest.mark.parametrize("status", [404, 405])
def test_head_404_or_405_falls_back_to_get(rsps: responses.RequestsMock, status: int) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", LIST_BODY, DOCKER_LIST, head=status)
    c = client()
    assert c.head_digest(ref("ghcr.io/org/img:1.0")) == Descriptor(sha(LIST_BODY), DOCKER_LIST, len(LIST_BODY))


def test_head_by_digest_must_match(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    wanted = sha(b"something else")
    rsps.head(f"https://ghcr.io/v2/org/img/manifests/{wanted}",
              headers={"Docker-Content-Digest": sha(INDEX_BODY), "Content-Type": OCI_INDEX})
    with pytest.raises(RegistryError) as info:
        client().head_digest(ref(f"ghcr.io/org/img:1.0@{wanted}"))
    assert str(info.value) == (f"digest mismatch for manifest of ghcr.io/org/img: expected {wanted}, got "
                               f"{sha(INDEX_BODY)} - the registry or a proxy altered the content; try again, or "
                               "report it")


def test_unknown_tag_and_unknown_repository(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    rsps.head("https://ghcr.io/v2/org/img/manifests/nope", status=404)
    rsps.get("https://ghcr.io/v2/org/img/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    rsps.get("https://ghcr.io/v2/org/img/tags/list?n=1", json={"name": "org/img", "tags": ["1.0"]})
    rsps.get("https://ghcr.io/v2/org/missing/manifests/1", status=404,
             body=(FIXTURES / "error-name-unknown.json").read_bytes())
    c = client()
    with pytest.raises(NotFoundError) as info:
        c.head_digest(ref("ghcr.io/org/img:nope"))
    assert str(info.value) == ("tag 'nope' not found in ghcr.io/org/img - check the tag (the registry's tag list "
                               "shows what exists)")
    with pytest.raises(NotFoundError) as info:
        c.describe(ref("ghcr.io/org/missing:1"))
    assert str(info.value) == ("repository ghcr.io/org/missing not found - check the image name (and log in if it is "
                               "private)")
    # The tag 404 asked the tag list once (the repository exists); NAME_UNKNOWN needs no second look.
    assert [urlsplit(str(call.request.url)).path for call in rsps.calls if "/v2/org/" in str(call.request.url)] == [
        "/v2/org/img/manifests/nope", "/v2/org/img/manifests/nope", "/v2/org/img/tags/list",
        "/v2/org/missing/manifests/1"]


def test_unknown_repository_behind_manifest_unknown(rsps: responses.RequestsMock) -> None:
    # distribution answers a manifest request in a repository that does not exist with MANIFEST_UNKNOWN;
    # its tag list tells the truth (NAME_UNKNOWN).
    ghcr_auth(rsps)
    rsps.get("https://ghcr.io/v2/org/typo/manifests/1", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    rsps.get("https://ghcr.io/v2/org/typo/tags/list?n=1", status=404,
             body=(FIXTURES / "error-name-unknown.json").read_bytes())
    with pytest.raises(RepositoryNotFoundError) as info:
        client().describe(ref("ghcr.io/org/typo:1"))
    assert str(info.value) == ("repository ghcr.io/org/typo not found - check the image name (and log in if it is "
                               "private)")


def test_tag_error_stands_when_the_tag_list_is_denied(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    rsps.get("https://ghcr.io/v2/org/img/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    rsps.get("https://ghcr.io/v2/org/img/tags/list?n=1", status=403,
             json={"errors": [{"code": "DENIED", "message": "tag listing is disabled"}]})
    with pytest.raises(NotFoundError) as info:
        client().describe(ref("ghcr.io/org/img:nope"))
    assert type(info.value) is NotFoundError
    assert str(info.value) == ("tag 'nope' not found in ghcr.io/org/img - check the tag (the registry's tag list "
                               "shows what exists)")


def test_docker_hub_unknown_tag_names_docker_io(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry-1.docker.io/v2/", status=200)
    rsps.get("https://registry-1.docker.io/v2/library/ubuntu/manifests/99.99", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    with pytest.raises(NotFoundError, match=r"^tag '99.99' not found in docker.io/library/ubuntu - "):
        client().describe(ref("ubuntu:99.99"))


# -- get_manifest verification ------------------------------------------------------------------------

def test_wrong_digest_header_is_an_error(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    wrong = sha(b"tampered")
    rsps.get("https://ghcr.io/v2/org/img/manifests/1.0", body=INDEX_BODY,
             headers={"Content-Type": OCI_INDEX, "Docker-Content-Digest": wrong})
    with pytest.raises(RegistryError) as info:
        client().get_manifest(ref("ghcr.io/org/img:1.0"))
    assert str(info.value) == (f"digest mismatch for manifest of ghcr.io/org/img: expected {wrong}, got "
                               f"{sha(INDEX_BODY)} - the registry or a proxy altered the content; try again, or "
                               "report it")


def test_get_by_digest_verifies_the_body(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    wanted = sha(MANIFEST_AMD64)
    rsps.get(f"https://ghcr.io/v2/org/img/manifests/{wanted}", body=MANIFEST_ARM64,
             headers={"Content-Type": DOCKER_MANIFEST})
    with pytest.raises(RegistryError, match=f"digest mismatch for manifest of ghcr.io/org/img: expected {wanted}"):
        client().get_manifest(ref(f"ghcr.io/org/img@{wanted}"))


def test_get_manifest_returns_exact_bytes(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", MANIFEST_AMD64, DOCKER_MANIFEST + "; charset=utf-8")
    assert client().get_manifest(ref("ghcr.io/org/img:1.0")) == (MANIFEST_AMD64, DOCKER_MANIFEST, sha(MANIFEST_AMD64))
    assert rsps.calls[2].request.headers["Accept-Encoding"] == "identity"


def test_media_type_from_body_when_header_is_generic(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", LIST_BODY, "application/json")
    assert client().get_manifest(ref("ghcr.io/org/img:1.0"))[1] == DOCKER_LIST


def test_unknown_media_type(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    schema1 = b'{"schemaVersion": 1, "name": "org/img", "tag": "old", "fsLayers": []}'
    serve_manifest(rsps, "ghcr.io", "org/img", "old", schema1,
                   "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(RegistryError) as info:
        client().describe(ref("ghcr.io/org/img:old"))
    assert str(info.value) == (
        "unsupported manifest media type 'application/vnd.docker.distribution.manifest.v1+prettyjws' for "
        "ghcr.io/org/img - pinrepro understands OCI and Docker v2 manifests and indexes; Docker schema 1 images must "
        "be re-pushed with a current Docker or skopeo")


def test_manifest_size_is_capped(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    big = b"{" + b" " * (4 << 20) + b"}"
    rsps.get("https://ghcr.io/v2/org/img/manifests/big", body=big, headers={"Content-Type": OCI_INDEX})
    with pytest.raises(RegistryError, match=r"the manifest of ghcr.io/org/img is 4194\d+ bytes, over the 4194304-byte"):
        client().get_manifest(ref("ghcr.io/org/img:big"))


# -- describe ------------------------------------------------------------------------------------------

def test_describe_index_skips_attestations(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", INDEX_BODY, OCI_INDEX)
    c = client()
    description = c.describe(ref("ghcr.io/org/img:1.0"))
    assert description.digest == sha(INDEX_BODY)
    assert description.media_type == OCI_INDEX
    assert dict(description.platforms) == {
        "linux/amd64": PlatformManifest("sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
                                        "application/vnd.oci.image.manifest.v1+json", None),
        "linux/arm64/v8": PlatformManifest("sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
                                           "application/vnd.oci.image.manifest.v1+json", None),
    }
    assert c.transport.request_count == 3  # ping, token, manifest: no per-platform requests
    assert c.blob_bytes == 0


def test_describe_docker_manifest_list(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1.0", LIST_BODY, DOCKER_LIST)
    description = client().describe(ref("ghcr.io/org/img:1.0"))
    assert sorted(description.platforms) == ["linux/amd64", "linux/ppc64le"]


def test_describe_single_platform_reads_the_config(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "arm", MANIFEST_ARM64, DOCKER_MANIFEST)
    serve_blob(rsps, "ghcr.io", "org/img", CONFIG_ARM64)
    c = client()
    description = c.describe(ref("ghcr.io/org/img:arm"))
    assert description.digest == sha(MANIFEST_ARM64)
    assert dict(description.platforms) == {
        "linux/arm64/v8": PlatformManifest(sha(MANIFEST_ARM64), DOCKER_MANIFEST, sha(CONFIG_ARM64))}
    assert c.blob_bytes == len(CONFIG_ARM64)
    assert c.transport.request_count == 4


def test_config_blob_digest_is_verified(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/img", "1", MANIFEST_AMD64, DOCKER_MANIFEST)
    serve_blob(rsps, "ghcr.io", "org/img", CONFIG_ARM64, digest=sha(CONFIG_AMD64))
    expected = sha(CONFIG_AMD64)
    with pytest.raises(RegistryError, match=f"digest mismatch for blob of ghcr.io/org/img: expected {expected}"):
        client().describe(ref("ghcr.io/org/img:1"))


# -- describe_many / head_many -------------------------------------------------------------------------

def test_describe_many_request_budget(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/multi", "1", INDEX_BODY, OCI_INDEX)
    serve_manifest(rsps, "ghcr.io", "org/amd", "1", MANIFEST_AMD64, DOCKER_MANIFEST)
    serve_blob(rsps, "ghcr.io", "org/amd", CONFIG_AMD64)
    serve_manifest(rsps, "ghcr.io", "org/arm", "1", MANIFEST_ARM64, DOCKER_MANIFEST)
    serve_blob(rsps, "ghcr.io", "org/arm", CONFIG_ARM64)
    progress: list[tuple[int, int]] = []
    lock = threading.Lock()

    def record(done: int, total: int) -> None:
        with lock:
            progress.append((done, total))

    c = client(progress=record, max_workers=4)
    refs = [ref("ghcr.io/org/multi:1"), ref("ghcr.io/org/amd:1"), ref("ghcr.io/org/arm:1"), ref("ghcr.io/org/amd:1")]
    described = c.describe_many(refs)
    assert list(described) == refs[:3]
    assert sorted(described[refs[1]].platforms) == ["linux/amd64"]
    assert sorted(described[refs[2]].platforms) == ["linux/arm64/v8"]
    n = 3
    # 1 ping + 1 token for all scopes + 3 manifests + 2 configs (single-platform only)
    assert c.transport.request_count == 7 <= 2 + 2 * n
    token_calls = [call for call in rsps.calls if urlsplit(call.request.url).path == "/token"]
    assert len(token_calls) == 1
    assert parse_qs(urlsplit(str(token_calls[0].request.url)).query)["scope"] == [
        "repository:org/amd:pull", "repository:org/arm:pull", "repository:org/multi:pull"]
    assert sorted(progress) == [(1, 3), (2, 3), (3, 3)]


def test_describe_many_raises_first_error_in_input_order_after_all(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/ok", "1", INDEX_BODY, OCI_INDEX)
    rsps.get("https://ghcr.io/v2/org/gone/manifests/1", status=404,
             body=(FIXTURES / "error-name-unknown.json").read_bytes())
    rsps.get("https://ghcr.io/v2/org/img/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    c = client()
    with pytest.raises(NotFoundError) as info:
        c.describe_many([ref("ghcr.io/org/ok:1"), ref("ghcr.io/org/img:nope"), ref("ghcr.io/org/gone:1")])
    assert str(info.value).startswith("tag 'nope' not found in ghcr.io/org/img")
    manifest_gets = [call for call in rsps.calls if "/manifests/" in str(call.request.url)]
    assert len(manifest_gets) == 3  # all finished before raising


def test_describe_many_unreachable_registry_fails_its_refs_once(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/ok", "1", INDEX_BODY, OCI_INDEX)
    sleeps = Sleeps()
    c = client(sleep=sleeps, max_retries=1)
    # nothing registered for registry.example.com: responses refuses the connection
    with pytest.raises(RegistryError, match=r"^cannot reach registry\.example\.com: connection refused \(for a\) - "):
        c.describe_many([ref("ghcr.io/org/ok:1"), ref("registry.example.com/a:1"), ref("registry.example.com/b:1")])
    assert len(sleeps.waits) == 1  # one ping with one retry, not one per ref


def test_head_many_returns_errors_per_ref(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    serve_manifest(rsps, "ghcr.io", "org/ok", "1", INDEX_BODY, OCI_INDEX, get=False, head=200)
    rsps.head("https://ghcr.io/v2/org/img/manifests/nope", status=404)
    rsps.get("https://ghcr.io/v2/org/img/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    c = client()
    results = c.head_many([ref("ghcr.io/org/ok:1"), ref("ghcr.io/org/img:nope")])
    assert results[ref("ghcr.io/org/ok:1")] == Descriptor(sha(INDEX_BODY), OCI_INDEX, len(INDEX_BODY))
    error = results[ref("ghcr.io/org/img:nope")]
    assert isinstance(error, NotFoundError)
    assert isinstance(error, PinreproError)


def test_head_many_private_repository_error_without_secret(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=401, headers={"WWW-Authenticate": GHCR_CHALLENGE})
    rsps.get("https://ghcr.io/token", status=403, json={"errors": [{"code": "DENIED", "message": "denied"}]})

    class Keys:
        def resolve(self, registry: str) -> object:
            from pinrepro.registry import Credential
            return Credential("octocat", "ghp_SECRETVALUE")

    c = RegistryClient(Keys(), sleep=Sleeps())  # type: ignore[arg-type]
    results = c.head_many([ref("ghcr.io/org/private:1")])
    error = results[ref("ghcr.io/org/private:1")]
    assert isinstance(error, AuthError)
    assert str(error) == ("403 from ghcr.io (token service of ghcr.io) for org/private: credentials were sent but do "
                          "not allow pulling org/private - check the account's access, or log in as another user with "
                          "`docker login ghcr.io`")
    assert "ghp_SECRETVALUE" not in repr(error)


# -- mirrors -------------------------------------------------------------------------------------------

def test_mirror_serves_docker_hub_refs(rsps: responses.RequestsMock) -> None:
    rsps.get("https://mirror.internal:5000/v2/", status=200)
    serve_manifest(rsps, "mirror.internal:5000", "library/ubuntu", "22.04", INDEX_BODY, OCI_INDEX)
    c = client(mirrors={"docker.io": "mirror.internal:5000"})
    image = ref("ubuntu:22.04")
    assert c.describe(image).digest == sha(INDEX_BODY)
    assert image.registry == "docker.io"  # the caller keeps the upstream name
    assert all(urlsplit(call.request.url).netloc == "mirror.internal:5000" for call in rsps.calls)


def test_mirror_errors_name_both(rsps: responses.RequestsMock) -> None:
    rsps.get("https://mirror.internal:5000/v2/", status=200)
    rsps.get("https://mirror.internal:5000/v2/library/ubuntu/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_bytes())
    rsps.get("https://mirror.internal:5000/v2/library/private/manifests/1", status=401, body=b"{}")
    c = client(mirrors={"docker.io": "mirror.internal:5000"})
    with pytest.raises(NotFoundError) as info:
        c.describe(ref("ubuntu:nope"))
    assert str(info.value).startswith("tag 'nope' not found in mirror.internal:5000/library/ubuntu (mirror of "
                                      "docker.io) - ")
    with pytest.raises(AuthError) as auth:
        c.describe(ref("private:1"))
    assert str(auth.value).startswith("401 from mirror.internal:5000 (mirror of docker.io) for library/private: no "
                                      "credentials found")


def test_plain_http_mirror(rsps: responses.RequestsMock) -> None:
    rsps.get("https://mirror.internal/v2/", body=requests.exceptions.ConnectionError("Connection refused"))
    rsps.get("http://mirror.internal/v2/", status=200)
    rsps.get("http://mirror.internal/v2/library/ubuntu/manifests/1", body=INDEX_BODY,
             headers={"Content-Type": OCI_INDEX})
    c = client(mirrors={"docker.io": "http://mirror.internal/"})
    assert c.host_for(ref("ubuntu:1")) == "mirror.internal"
    assert c.describe(ref("ubuntu:1")).digest == sha(INDEX_BODY)


# -- blobs ---------------------------------------------------------------------------------------------

def test_open_blob_streams_and_verifies(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    layer = bytes(range(256)) * 1000
    serve_blob(rsps, "ghcr.io", "org/img", layer)
    c = client()
    with c.open_blob(ref("ghcr.io/org/img:1"), sha(layer)) as stream:
        out = io.BytesIO()
        while chunk := stream.read(10000):
            out.write(chunk)
    assert out.getvalue() == layer
    assert c.blob_bytes == len(layer)


def test_open_blob_mismatch_raises_at_eof(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    expected = sha(b"the real layer")
    serve_blob(rsps, "ghcr.io", "org/img", b"a corrupted layer", digest=expected)
    stream = client().open_blob(ref("ghcr.io/org/img:1"), expected)
    with pytest.raises(RegistryError) as info:
        stream.read()
    assert str(info.value) == (f"digest mismatch for blob of ghcr.io/org/img: expected {expected}, got "
                               f"{sha(b'a corrupted layer')} - the registry or a proxy altered the content; try "
                               "again, or report it")
    stream.close()


def test_get_blob_size_limit(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    body = b"x" * 2048
    serve_blob(rsps, "ghcr.io", "org/img", body)
    with pytest.raises(RegistryError, match=f"blob {sha(body)} of ghcr.io/org/img is 2048 bytes, over the 1024-byte"):
        client().get_blob(ref("ghcr.io/org/img:1"), sha(body), max_size=1024)


def test_blob_not_found(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    missing = sha(b"missing")
    rsps.get(f"https://ghcr.io/v2/org/img/blobs/{missing}", status=404,
             json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]})
    with pytest.raises(NotFoundError, match=f"^blob {missing} not found in ghcr.io/org/img - "):
        client().get_blob(ref("ghcr.io/org/img:1"), missing)


def test_unsupported_digest_algorithm_in_the_header_names_the_image(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    odd = "md5:" + "0" * 32
    rsps.get("https://ghcr.io/v2/org/img/manifests/1.0", body=INDEX_BODY,
             headers={"Content-Type": OCI_INDEX, "Docker-Content-Digest": odd})
    with pytest.raises(RegistryError) as info:
        client().get_manifest(ref("ghcr.io/org/img:1.0"))
    assert str(info.value) == (f"unsupported digest algorithm 'md5' in {odd} for ghcr.io/org/img - pinrepro verifies "
                               "sha256, sha384 and sha512 digests")


def test_unsupported_digest_algorithm_of_a_layer_is_refused_before_its_download(
        rsps: responses.RequestsMock) -> None:
    odd = "md5:" + "0" * 32
    with pytest.raises(RegistryError) as info:
        client().open_blob(ref("ghcr.io/org/img:1.0"), odd)
    assert str(info.value) == (f"unsupported digest algorithm 'md5' in {odd} for ghcr.io/org/img - pinrepro verifies "
                               "sha256, sha384 and sha512 digests")
    assert len(rsps.calls) == 0


def test_broken_blob_download_names_the_image(rsps: responses.RequestsMock) -> None:
    ghcr_auth(rsps)
    digest = sha(b"layer")

    class Broken(io.BufferedReader):
        """A body whose connection drops on the first read."""

        def read(self, *args: object) -> bytes:
            raise ConnectionResetError("reset by peer")

    rsps.get(f"https://ghcr.io/v2/org/img/blobs/{digest}", body=Broken(io.BytesIO(b"layer")))
    stream = client().open_blob(ref("ghcr.io/org/img:1"), digest)
    with pytest.raises(RegistryError) as info:
        stream.read()
    assert str(info.value) == (f"the download of blob {digest} of ghcr.io/org/img broke off (ProtocolError) - "
                               "try again; check the network or proxy")
    stream.close()

"""Which requests `lock` sends to a Docker Hub-shaped registry (`responses`): Docker Hub counts manifest GETs
against its pull limit and not HEADs, so a tag is resolved with HEAD, and a manifest a HEAD answered is never
fetched again by its tag (issue #15). Also the per-registry cap and the default concurrency."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from pinrepro.config import load
from pinrepro.errors import ConfigError
from pinrepro.inventory.cache import Cache
from pinrepro.lock import LockServices, Upgrade, run_lock
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import AnonymousKeychain
from pinrepro.registry.client import RegistryClient
from pinrepro.registry.concurrency import DEFAULT_PER_REGISTRY, PER_REGISTRY_ENV

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
HUB = "https://registry-1.docker.io"
HUB_TOKEN = json.loads((FIXTURES / "dockerhub-token.json").read_text(encoding="utf-8"))
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def index_body(n: int) -> bytes:
    """A two-platform index whose children differ by ``n`` (so each push is a new digest)."""
    children = [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100 + n,
                 "digest": "sha256:" + f"{n:02x}{i}".ljust(64, "a"),
                 "platform": {"os": "linux", "architecture": arch}}
                for i, arch in enumerate(("amd64", "arm64"))]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, indent=3).encode()


class Hub:
    """registry-1.docker.io for library/ubuntu: the token dance, HEAD and GET of tags and digests."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.tags: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        rsps.get(f"{HUB}/v2/", status=401, headers={
            "WWW-Authenticate": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'})
        rsps.get("https://auth.docker.io/token", json=HUB_TOKEN)
        rsps.add_callback(responses.HEAD, _manifests_url(), callback=self._manifest)
        rsps.add_callback(responses.GET, _manifests_url(), callback=self._manifest)

    def push(self, tag: str, n: int) -> str:
        body = index_body(n)
        self.tags[tag] = body
        self.blobs[sha(body)] = body
        return sha(body)

    def _manifest(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        reference = request.path_url.rsplit("/", 1)[1]
        body = self.blobs.get(reference) or self.tags.get(reference)
        if body is None:
            return 404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        headers = {"Content-Type": OCI_INDEX, "Docker-Content-Digest": sha(body), "Content-Length": str(len(body)),
                   "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "99;w=21600"}
        return 200, headers, b"" if request.method == "HEAD" else body

    def manifest_calls(self) -> list[str]:
        """``METHOD reference`` for every manifest request, in order."""
        return [f"{call.request.method} {call.request.path_url.rsplit('/', 1)[1]}"
                for call in self.rsps.calls if "/manifests/" in call.request.path_url]


def _manifests_url() -> Any:
    import re

    return re.compile(re.escape(HUB) + r"/v2/library/ubuntu/manifests/[^/]+")


@pytest.fixture
def hub() -> Iterator[Hub]:
    # The hub answers whatever is asked, as a registry would: not every route is asked in every test, so
    # each test asserts the manifest requests it expects (``Hub.manifest_calls``) instead.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield Hub(rsps)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "svc"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (root / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    return root


def lock(root: Path, *, upgrade: bool = False) -> Any:
    def factory() -> RegistryClient:
        return RegistryClient(AnonymousKeychain(), blob_cache=Cache(), sleep=lambda _: None)

    # The contents scan is not what is counted here (scan tests cover it): it answers without a request.
    return run_lock(load(root), upgrade=Upgrade(everything=upgrade),
                    services=LockServices(registry=factory, scanner=lambda ref, digest: {}))


def test_first_lock_gets_each_tag_once_and_nothing_else(hub: Hub, project: Path) -> None:
    first = hub.push("22.04", 1)
    lock(project)
    # One GET gives the digest and the platforms; a HEAD before it would be a second round trip.
    assert hub.manifest_calls() == ["GET 22.04"]
    assert f"ubuntu:22.04@{first}" in (project / "Dockerfile").read_text()


def test_upgrade_with_unmoved_tag_sends_only_a_head(hub: Hub, project: Path) -> None:
    hub.push("22.04", 1)
    lock(project)
    hub.rsps.calls.reset()
    outcome = lock(project, upgrade=True)
    assert not outcome.changed
    assert hub.manifest_calls() == ["HEAD 22.04"]


def test_moved_tag_is_fetched_by_the_digest_the_head_answered(hub: Hub, project: Path) -> None:
    hub.push("22.04", 1)
    lock(project)
    moved = hub.push("22.04", 2)
    hub.rsps.calls.reset()
    outcome = lock(project, upgrade=True)
    assert outcome.changed
    # Never GET by tag a manifest a HEAD answered: by its digest, which the cache can serve next time.
    assert hub.manifest_calls() == ["HEAD 22.04", f"GET {moved}"]


def test_moved_tag_whose_manifest_is_cached_sends_no_get(hub: Hub, project: Path) -> None:
    hub.push("22.04", 1)
    lock(project)
    moved = hub.push("22.04", 2)
    Cache().put_blob(moved, hub.blobs[moved])  # e.g. restored by actions/cache, or read by another project
    hub.rsps.calls.reset()
    outcome = lock(project, upgrade=True)
    assert outcome.changed
    assert hub.manifest_calls() == ["HEAD 22.04"]
    assert moved in (project / "Dockerfile").read_text()


def test_a_corrupt_cached_manifest_is_fetched_again(hub: Hub, project: Path) -> None:
    hub.push("22.04", 1)
    lock(project)
    moved = hub.push("22.04", 2)
    cache = Cache()
    cache.put_blob(moved, b"not the manifest")  # a cached blob that does not hash to its name is ignored
    hub.rsps.calls.reset()
    lock(project, upgrade=True)
    assert hub.manifest_calls() == ["HEAD 22.04", f"GET {moved}"]


def test_default_concurrency_is_sized_for_a_wan_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PER_REGISTRY_ENV, raising=False)
    client = RegistryClient(AnonymousKeychain())
    try:
        assert client.per_registry == DEFAULT_PER_REGISTRY >= 16
        assert client.max_workers >= client.per_registry
        # One keep-alive connection per request a host admits at once.
        adapter = client.transport._session.get_adapter("https://registry-1.docker.io/")
        assert adapter._pool_maxsize >= client.per_registry  # type: ignore[attr-defined]
    finally:
        client.close()


def test_per_registry_cap_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PER_REGISTRY_ENV, "3")
    with RegistryClient(AnonymousKeychain()) as client:
        assert client.per_registry == 3
    monkeypatch.setenv(PER_REGISTRY_ENV, "many")
    with pytest.raises(ConfigError) as info:
        RegistryClient(AnonymousKeychain())
    assert str(info.value) == (f"{PER_REGISTRY_ENV}: 'many' is not a positive whole number - unset it, or set e.g. "
                               f"{PER_REGISTRY_ENV}=8")


def test_per_registry_cap_bounds_requests_in_flight_per_host() -> None:
    """12 HEADs with a cap of 3: never more than 3 at the registry at once, though 12 threads run."""
    in_flight = 0
    started = 0
    peak = 0
    guard = threading.Condition()
    body = index_body(7)

    def slow(request: Any) -> tuple[int, dict[str, str], bytes]:
        nonlocal in_flight, started, peak
        with guard:
            in_flight += 1
            started += 1
            peak = max(peak, in_flight)
            guard.notify_all()
            # Held open until the cap is reached (or every request has started), so a client that let more
            # through would show it in ``peak``; bounded, so a client that allows fewer cannot hang the test.
            guard.wait_for(lambda: in_flight >= 3 or started == 12, timeout=5)
            in_flight -= 1
        return 200, {"Content-Type": OCI_INDEX, "Docker-Content-Digest": sha(body)}, b""

    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get("https://ghcr.io/v2/", status=200)
        rsps.add_callback(responses.HEAD, _ghcr_manifests(), callback=slow)
        with RegistryClient(AnonymousKeychain(), per_registry=3, max_workers=12) as client:
            refs = [ImageRef.parse(f"ghcr.io/org/img:{n}") for n in range(12)]
            answers = client.head_many(refs)
    assert all(answer.digest == sha(body) for answer in answers.values())  # type: ignore[union-attr]
    assert peak == 3  # the cap is used, and never passed


def _ghcr_manifests() -> Any:
    import re

    return re.compile(r"https://ghcr\.io/v2/org/img/manifests/\d+")


def test_describe_many_hands_each_description_on_as_it_arrives(hub: Hub) -> None:
    """``then`` runs per reference in the worker, before describe_many returns: lock starts its scan there."""
    digests = {tag: hub.push(tag, n) for n, tag in enumerate(("22.04", "24.04"), start=1)}
    seen: dict[str, str] = {}
    with RegistryClient(AnonymousKeychain(), sleep=lambda _: None) as client:
        described = client.describe_many([ImageRef.parse(f"ubuntu:{tag}") for tag in digests],
                                         then=lambda ref, description: seen.update({ref.tag or "": description.digest}))
    assert seen == digests == {ref.tag: d.digest for ref, d in described.items()}


def test_the_environment_is_read_once_per_host(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests scans the whole environment for proxies on each request; the session reads it once per host."""
    import requests.sessions

    real = requests.sessions.get_environ_proxies
    reads: list[str] = []

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url.split("/")[2])
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    for n, tag in enumerate(("20.04", "22.04", "24.04"), start=1):
        hub.push(tag, n)
    with RegistryClient(AnonymousKeychain(), sleep=lambda _: None) as client:
        client.describe_many([ImageRef.parse(f"ubuntu:{tag}") for tag in ("20.04", "22.04", "24.04")])
    assert len([call for call in hub.rsps.calls if "/manifests/" in call.request.path_url]) == 3
    assert sorted(reads) == ["auth.docker.io", "registry-1.docker.io"]

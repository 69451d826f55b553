"""Pushing the OCI layouts of tests/support/images.py to a registry: with skopeo (``copy --all``, the independent
tool), or straight through the registry HTTP API (the fast path for benches; anonymous registries only). skopeo
also fetches manifests back, as the oracle for what a registry serves."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import requests

from tests.support.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    layout_descriptor,
    read_blob,
    sha256_digest,
)
from tests.support.tools import require_tool


# -- skopeo ----------------------------------------------------------------------------------------------
class SkopeoError(RuntimeError):
    pass


@functools.cache
def _skopeo_scratch() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="pinrepro-skopeo-"))
    atexit.register(shutil.rmtree, scratch, True)
    return scratch


def _skopeo_base() -> tuple[list[str], Path]:
    """``skopeo`` with a permissive policy of our own, plus an empty auth file so that skopeo never reads
    the machine's (``${XDG_RUNTIME_DIR}/containers/auth.json``, ``~/.docker/config.json``)."""
    skopeo = require_tool("skopeo")
    scratch = _skopeo_scratch()
    policy = scratch / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    authfile = scratch / "auth.json"
    authfile.write_text(json.dumps({"auths": {}}))
    return [skopeo, "--policy", str(policy)], authfile


def _run_skopeo(args: list[str], *, secret: str | None = None) -> bytes:
    proc = subprocess.run(args, capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).decode(errors="replace")
        shown = list(args)
        if secret:
            text = text.replace(secret, "***")
            shown = [a.replace(secret, "***") for a in shown]
        raise SkopeoError(f"{' '.join(shown)} failed ({proc.returncode}): {text.strip()}")
    return proc.stdout


def push(
    layout_dir: Path | str,
    tag: str,
    dest_host: str,
    repo: str,
    dest_tag: str,
    *,
    creds: tuple[str, str] | None = None,
    format: Literal["oci", "v2s2"] | None = None,
) -> str:
    """``skopeo copy --all`` the layout's ``tag`` to ``docker://dest_host/repo:dest_tag``; return the pushed
    digest. Without ``format`` the digests are preserved and checked against the layout; with
    ``format="v2s2"`` skopeo converts (a single-platform image) to Docker schema2, which changes the digest."""
    base, authfile = _skopeo_base()
    args = [*base, "copy", "--all", "--quiet", "--authfile", str(authfile), "--dest-tls-verify=false"]
    with tempfile.TemporaryDirectory(prefix="pinrepro-digest-") as tmp:
        digest_file = Path(tmp) / "digest"
        args += ["--digestfile", str(digest_file)]
        if format is None:
            args.append("--preserve-digests")
        else:
            args += ["--format", format]
        if creds is not None:
            args += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        else:
            args.append("--dest-no-creds")
        source = f"oci:{layout_dir}:{tag}"
        if layout_descriptor(Path(layout_dir), tag)["mediaType"] in (DOCKER_MANIFEST, DOCKER_LIST):
            # skopeo's oci: transport only sees OCI media types in index.json; its dir: transport
            # carries Docker schema2 manifests byte for byte.
            source = "dir:" + str(export_dir_transport(Path(layout_dir), tag, Path(tmp) / "dir"))
        args += [source, f"docker://{dest_host}/{repo}:{dest_tag}"]
        _run_skopeo(args, secret=creds[1] if creds else None)
        pushed = digest_file.read_text().strip()
    if format is None:
        built = layout_descriptor(Path(layout_dir), tag)["digest"]
        if pushed != built:
            raise SkopeoError(f"skopeo pushed {pushed} for {repo}:{dest_tag}, but the layout has {built}")
    return pushed


def export_dir_transport(layout: Path, tag: str, target: Path) -> Path:
    """Write the layout's ``tag`` in skopeo's ``dir:`` format: ``manifest.json``, child manifests as
    ``<hex>.manifest.json``, blobs named by their hex digest, and the ``version`` marker file."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "version").write_text("Directory Transport Version: 1.1\n")
    top = layout_descriptor(layout, tag)
    data = read_blob(layout, top["digest"])
    (target / "manifest.json").write_bytes(data)
    body = json.loads(data)
    manifests = [body]
    for child in body.get("manifests", []):
        child_data = read_blob(layout, child["digest"])
        (target / (child["digest"].split(":", 1)[1] + ".manifest.json")).write_bytes(child_data)
        manifests.append(json.loads(child_data))
    for manifest in manifests:
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if blob:
                hex_digest = blob["digest"].split(":", 1)[1]
                (target / hex_digest).write_bytes(read_blob(layout, blob["digest"]))
    return target


def skopeo_inspect_raw(host: str, repo: str, ref: str, *, creds: tuple[str, str] | None = None) -> bytes:
    """The manifest bytes as skopeo fetches them - the independent oracle for what the registry serves."""
    base, authfile = _skopeo_base()
    args = [*base, "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile)]
    if creds is not None:
        args += ["--creds", f"{creds[0]}:{creds[1]}"]
    else:
        args.append("--no-creds")
    separator = "@" if ref.startswith("sha256:") else ":"
    args.append(f"docker://{host}/{repo}{separator}{ref}")
    return _run_skopeo(args, secret=creds[1] if creds else None)


def skopeo_digest(host: str, repo: str, tag: str, creds: tuple[str, str] | None = None) -> str:
    """sha256 of the raw manifest skopeo gets for ``host/repo:tag``."""
    return sha256_digest(skopeo_inspect_raw(host, repo, tag, creds=creds))


# -- plain HTTP push (fast path for benches; anonymous registries only) ----------------------------------
def upload_blob(session: requests.Session, base_url: str, repo: str, data: bytes) -> str:
    """Monolithic upload (POST then PUT ?digest=), skipped when the registry already has the blob."""
    digest = sha256_digest(data)
    head = session.head(f"{base_url}/v2/{repo}/blobs/{digest}", timeout=30)
    if head.status_code == 200:
        return digest
    start = session.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=30)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = base_url + location
    joiner = "&" if "?" in location else "?"
    put = session.put(
        f"{location}{joiner}digest={digest}", data=data,
        headers={"Content-Type": "application/octet-stream"}, timeout=30,
    )
    put.raise_for_status()
    return digest


def put_manifest(session: requests.Session, base_url: str, repo: str, ref: str, data: bytes, media_type: str) -> str:
    response = session.put(
        f"{base_url}/v2/{repo}/manifests/{ref}", data=data, headers={"Content-Type": media_type}, timeout=30
    )
    response.raise_for_status()
    digest = sha256_digest(data)
    if response.headers.get("Docker-Content-Digest", digest) != digest:
        raise RuntimeError(f"registry stored {response.headers['Docker-Content-Digest']} for {digest}")
    return digest


def push_http(layout_dir: Path | str, tag: str, base_url: str, repo: str, dest_tag: str,
              *, session: requests.Session | None = None) -> str:
    """Push the layout's ``tag`` (image or index) through the registry HTTP API, without skopeo."""
    layout = Path(layout_dir)
    own = session is None
    http = session or requests.Session()
    try:
        top = layout_descriptor(layout, tag)
        _push_manifest_tree(http, layout, base_url, repo, top["digest"], top["mediaType"], dest_tag)
        return str(top["digest"])
    finally:
        if own:
            http.close()


def _push_manifest_tree(http: requests.Session, layout: Path, base_url: str, repo: str, digest: str,
                        media_type: str, ref: str) -> None:
    data = read_blob(layout, digest)
    body = json.loads(data)
    if media_type in (OCI_INDEX, DOCKER_LIST):
        for child in body["manifests"]:
            _push_manifest_tree(http, layout, base_url, repo, child["digest"], child["mediaType"], child["digest"])
    else:
        for blob in [body["config"], *body["layers"]]:
            upload_blob(http, base_url, repo, read_blob(layout, blob["digest"]))
    put_manifest(http, base_url, repo, ref, data, media_type)

"""The least a first `pinrepro lock` must ask a registry, asked by the leanest Python client: a floor for bench/resolve.

Standard library only (http.client, json, hashlib, threads), no retries, no deadlines, no auth, no cache, no lock
file, no Dockerfile: one thread and one keep-alive connection per tag, all at once. Per tag it asks what lock's
contents scan cannot do without: the tag (its index), the linux/amd64 manifest the index names, that manifest's
config, and each layer no other tag asked for yet (the scan reads a layer once per run). It prints the digest of
each tag as JSON, so the bench can check it asked the right things.

    python bench/bare_client.py HOST:PORT REPOSITORY TAG [TAG ...]

bench/resolve.py runs it beside `pinrepro lock` and container-source-policy `pin`: on a small machine, where the
loopback registry and the latency proxy share the CPU with the client, its time says how much of lock's time the
requests alone cost, whatever the client.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
import threading
from typing import Any

_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


# RuntimeError, not SystemExit: these are raised in the tags' threads, and threading prints every exception but
# SystemExit, which it drops without a word.
def _get(connection: http.client.HTTPConnection, path: str) -> bytes:
    connection.request("GET", path, headers={"Accept": _ACCEPT})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"bare client: GET {path}: {response.status}")
    return body


def _amd64(index: dict[str, Any]) -> str:
    for entry in index.get("manifests", []):
        if entry.get("platform", {}).get("architecture") == "amd64":
            return str(entry["digest"])
    raise RuntimeError("bare client: no linux/amd64 manifest in the index")


def main(argv: list[str]) -> int:
    host, repository, tags = argv[0], argv[1], argv[2:]
    name, _, port = host.rpartition(":")
    base = f"/v2/{repository}"
    digests: dict[str, str] = {}
    layers_asked: set[str] = set()
    lock = threading.Lock()

    def one(tag: str) -> None:
        connection = http.client.HTTPConnection(name, int(port), timeout=60)
        index = _get(connection, f"{base}/manifests/{tag}")
        manifest = json.loads(_get(connection, f"{base}/manifests/{_amd64(json.loads(index))}"))
        _get(connection, f"{base}/blobs/{manifest['config']['digest']}")
        for layer in manifest["layers"]:
            with lock:
                first = layer["digest"] not in layers_asked
                layers_asked.add(layer["digest"])
            if first:
                _get(connection, f"{base}/blobs/{layer['digest']}")
        connection.close()
        with lock:
            digests[tag] = "sha256:" + hashlib.sha256(index).hexdigest()

    ping = http.client.HTTPConnection(name, int(port), timeout=60)
    ping.request("GET", "/v2/")
    ping.getresponse().read()
    threads = [threading.Thread(target=one, args=(tag,)) for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(digests) != len(tags):
        return 1  # a thread failed (its error is printed)
    json.dump(digests, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Image references per deployment format, and the byte-exact rewrite (pinrepro.deploy.extract / rewrite)."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pinrepro.deploy.extract import extract
from pinrepro.deploy.model import DeployFileError, DeploySite
from pinrepro.deploy.rewrite import pin_text
from pinrepro.deploy.yamlread import parse_documents

D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64


def sites(name: str, text: str) -> list[DeploySite]:
    return [site for doc in parse_documents(text, name) for site in extract(doc)]


def pin_all(name: str, text: str, digest: str = D) -> str:
    return pin_text(text, name, [(s, digest) for s in sites(name, text) if s.edit])


@pytest.mark.parametrize(("value", "image", "pinned"), [
    ("redis:7", "redis:7", f"redis:7@{D}"),
    ("'redis'", "redis", f"'redis:latest@{D}'"),
    ("${REDIS:-redis:7}", "redis:7", f"${{REDIS:-redis:7@{D}}}"),
    ("${REDIS-redis:7}", "redis:7", f"${{REDIS-redis:7@{D}}}"),
    ("redis:${TAG:-7}", "redis:7", f"redis:${{TAG:-7@{D}}}"),  # inside: TAG=8 must not run the 7 image
    (f"redis:7@{E}", f"redis:7@{E}", f"redis:7@{D}"),
    ("$REDIS", None, "$REDIS"),
    ("${REDIS}", None, "${REDIS}"),
    ("${REDIS:?set it}", None, "${REDIS:?set it}"),
])
def test_compose_interpolation(value: str, image: str | None, pinned: str) -> None:
    text = f"services:\n  cache:\n    image: {value}  # note\n"
    found = sites("compose.yaml", text)
    assert [s.image for s in found] == [image]
    assert pin_all("compose.yaml", text) == f"services:\n  cache:\n    image: {pinned}  # note\n"
    if image is None:
        assert found[0].reason is not None and "no default" in found[0].reason


def test_compose_build_services_name_what_they_build() -> None:
    text = "services:\n  api:\n    build: .\n    image: me/api:dev\n  db:\n    image: postgres:16\n"
    assert [s.field for s in sites("compose.yaml", text)] == ["services.db.image"]


@pytest.mark.parametrize(("kind", "spec"), [
    ("Pod", "spec:\n  {lists}"),
    ("Deployment", "spec:\n  template:\n    spec:\n      {lists}"),
    ("StatefulSet", "spec:\n  template:\n    spec:\n      {lists}"),
    ("DaemonSet", "spec:\n  template:\n    spec:\n      {lists}"),
    ("ReplicaSet", "spec:\n  template:\n    spec:\n      {lists}"),
    ("Job", "spec:\n  template:\n    spec:\n      {lists}"),
    ("CronJob", "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          {lists}"),
])
def test_kubernetes_workloads(kind: str, spec: str) -> None:
    lists = ("containers: [{name: a, image: app:1}]\n  initContainers: [{name: i, image: init:1}]\n"
             "  ephemeralContainers: [{name: e, image: debug:1}]\n")
    indent = spec.split("{lists}")[0].rsplit("\n", 1)[1]
    body = spec.format(lists=lists.replace("\n  ", "\n" + indent))
    text = f"apiVersion: v1\nkind: Service\nspec: {{image: not:me}}\n---\napiVersion: x/v1\nkind: {kind}\n{body}"
    assert sorted(s.image or "" for s in sites("k8s/a.yaml", text)) == ["app:1", "debug:1", "init:1"]
    assert pin_all("k8s/a.yaml", text).count(f"@{D}") == 3


def test_kustomize_images() -> None:
    text = ("images:\n- name: nginx\n  newTag: '1.25'\n- name: redis\n  newName: reg:5000/redis\n  newTag: 7\n"
            f"  digest: {E}\n- name: notag\n")
    found = sites("k8s/kustomization.yaml", text)
    assert [s.image for s in found] == ["nginx:1.25", f"reg:5000/redis:7@{E}", None]
    assert pin_all("k8s/kustomization.yaml", text) == text.replace(
        "  newTag: '1.25'\n", f"  newTag: '1.25'\n  digest: {D}\n").replace(E, D)


@pytest.mark.parametrize(("values", "pinned"), [
    ("image:\n  repository: nginx\n  tag: \"1.25\"  # tag\n  pullPolicy: Always\n",
     f"image:\n  repository: nginx\n  tag: \"1.25\"  # tag\n  digest: {D}\n  pullPolicy: Always\n"),
    ("image:\r\n    repository: nginx\r\n    tag: 1.25",
     f"image:\r\n    repository: nginx\r\n    tag: 1.25\r\n    digest: {D}"),
    ("sidecar:\n  image: {registry: docker.io, repository: bitnami/redis, tag: '7.2', digest: \"\"}\n",
     f"sidecar:\n  image: {{registry: docker.io, repository: bitnami/redis, tag: '7.2', digest: \"{D}\"}}\n"),
    ("image: {repository: nginx, tag: '1'}\n", f"image: {{repository: nginx, tag: '1', digest: {D}}}\n"),
    ("image:\n  repository: nginx\n  tag: '1'\n  digest:\n",
     f"image:\n  repository: nginx\n  tag: '1'\n  digest: {D}\n"),
    ("workers:\n- image: python:3.11 # w\n- baseImage: \"python:3.12\"\n",
     f"workers:\n- image: python:3.11@{D} # w\n- baseImage: \"python:3.12@{D}\"\n"),
])
def test_helm_values(values: str, pinned: str) -> None:
    assert pin_all("charts/a/values.yaml", values) == pinned


def test_helm_tag_from_a_merged_mapping_is_reported_not_guessed() -> None:
    text = "defaults: &d\n  tag: '1'\nimage:\n  <<: *d\n  repository: nginx\n"
    (site,) = sites("charts/a/values.yaml", text)
    assert site.image == "nginx:1" and site.edit is None and site.reason and "add a 'digest' key" in site.reason
    with pytest.raises(DeployFileError, match="cannot pin image"):
        pin_text(text, "charts/a/values.yaml", [(site, D)])


def test_workflow_and_devcontainer() -> None:
    text = ("jobs:\n  a:\n    container: node:20\n    services:\n      pg: {image: 'postgres:16'}\n"
            "    steps:\n    - uses: actions/checkout@v4\n    - uses: docker://alpine:3.19  # runs the image\n"
            "  b:\n    container:\n      image: ${{ matrix.image }}\n")
    assert [(s.field, s.image) for s in sites(".github/workflows/ci.yml", text)] == [
        ("jobs.a.container", "node:20"), ("jobs.a.services.pg.image", "postgres:16"),
        ("jobs.a.steps[1].uses", "alpine:3.19"), ("jobs.b.container.image", None)]
    assert pin_all(".github/workflows/ci.yml", text) == text.replace("node:20", f"node:20@{D}").replace(
        "postgres:16", f"postgres:16@{D}").replace("docker://alpine:3.19", f"docker://alpine:3.19@{D}")
    json_text = '{\n  /* base */ "image": "python:3.11", // dev\n  "features": {}\n}\n'
    assert pin_all(".devcontainer/devcontainer.json", json_text) == json_text.replace("python:3.11",
                                                                                     f"python:3.11@{D}")


def test_escaped_scalars_are_reported_and_never_rewritten() -> None:
    text = 'services:\n  a:\n    image: "redis:\\x37"\n'
    (site,) = sites("compose.yaml", text)
    assert site.image == "redis:7" and site.edit is None
    with pytest.raises(DeployFileError, match="escapes"):
        pin_text(text, "compose.yaml", [(site, D)])
    assert pin_text(text, "compose.yaml", []) == text


def test_anchor_pinned_once_for_every_alias() -> None:
    text = "x: &img redis:7\nservices:\n  a: {image: *img}\n  b:\n    image: *img\n"
    found = sites("compose.yaml", text)
    assert len(found) == 1
    assert pin_all("compose.yaml", text) == text.replace("redis:7", f"redis:7@{D}")


# --- property: the rewrite changes only reference bytes -------------------------------------------------------

_REFS = ["redis:7-alpine", "nginx", "reg.example:5000/team/app:1.0", "nvcr.io/nvidia/tritonserver:24.05-py3"]
_service = st.fixed_dictionaries({
    "ref": st.sampled_from(_REFS),
    "quote": st.sampled_from(["", "'", '"']),
    "comment": st.sampled_from(["", "  # pinned by pinrepro", " #x"]),
    "flow": st.booleans(),
    "extra": st.sampled_from(["", "ports: ['80:80']", "environment: {A: '1'}"]),
})


@settings(max_examples=60, deadline=None)
@given(services=st.lists(_service, min_size=1, max_size=4), crlf=st.booleans(), indent=st.sampled_from([2, 4]),
       anchor=st.booleans())
def test_rewrite_changes_only_reference_bytes(services: list[dict[str, object]], crlf: bool, indent: int,
                                               anchor: bool) -> None:
    pad = " " * indent
    lines = ["# deployment", "services:"]
    if anchor:
        lines[1:1] = ["x-base: &base", f"{pad}image: redis:7-alpine  # shared"]
    for number, service in enumerate(services):
        image = f"{service['quote']}{service['ref']}{service['quote']}"
        if service["flow"]:
            extra = f", {service['extra']}" if service["extra"] else ""
            lines.append(f"{pad}s{number}: {{image: {image}{extra}}}{service['comment']}")
        else:
            lines.append(f"{pad}s{number}:")
            lines.append(f"{pad}{pad}image: {image}{service['comment']}")
            if service["extra"]:
                lines.append(f"{pad}{pad}{service['extra']}")
    if anchor:
        lines += [f"{pad}shared:", f"{pad}{pad}<<: *base"]
    newline = "\r\n" if crlf else "\n"
    text = newline.join(lines) + newline
    new = pin_all("compose.yaml", text)
    # Taking out exactly what pinning adds (":latest" for a tag-less name, "@<digest>") gives the old bytes back.
    assert re.sub(rf"(:latest)?@{D}", "", new) == text.replace(":latest", "")
    old_data, new_data = yaml.safe_load(text), yaml.safe_load(new)
    for name, service in old_data["services"].items():
        image = service["image"]
        expected = f"{image}{'' if ':' in image.rsplit('/', 1)[-1] else ':latest'}@{D}"
        assert new_data["services"][name] == {**service, "image": expected}


def test_application_tags_do_not_stop_the_rewrite_check() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: !Sub '${A}-x'}\nspec:\n  containers:\n  - image: app:1\n"
    assert pin_all("k8s/pod.yaml", text) == text.replace("app:1", f"app:1@{D}")

"""Checklist item 10: resource limits configured where the service is deployed (compose, Kubernetes, Helm values).

Every compose service or Kubernetes container that runs a locked image (an image in pinrepro.lock, or a compose
service built from one of the project's Dockerfiles) needs a memory limit, and a GPU request when the image is a
CUDA image. Without deployment files this is one note, not a failure.

The files and their YAML come from pinrepro.deploy (the one reader of deployment files, which `lock` and
`verify` use to pin these images); the image a workload runs is the reference that reader extracted at the
image's line, so compose's ``${VAR:-default}`` means here what it means for pinning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pinrepro.check.model import CheckContext, finding
from pinrepro.deploy.discovery import file_kind, find_deploy_files, is_templated
from pinrepro.deploy.extract import extract
from pinrepro.deploy.yamlread import (
    YamlDocument,
    line_of,
    mapping_entry,
    mapping_get,
    mapping_items,
    parse_documents,
    read_text,
    scalar,
    sequence_items,
)
from pinrepro.errors import PinreproError
from pinrepro.findings import Finding
from pinrepro.inventory.contents import PlatformContents
from pinrepro.reference import ImageRef

_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"})
_GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class Workload:
    """One compose service or Kubernetes container, with what rule 10 needs from it."""

    path: str
    line: int
    what: str  # "service 'api'", "container 'server'"
    image: str | None
    built_from: str | None  # compose `build:` -> the Dockerfile it builds (relative to the project)
    memory_limit: bool
    gpu_request: bool


def check(ctx: CheckContext, paths: Sequence[Path] = ()) -> tuple[list[Finding], list[str]]:
    globs = ctx.settings.deploy_files or ctx.config.deploy_files
    names = [n for n in find_deploy_files(ctx.root, globs) if file_kind(n) not in ("workflow", "devcontainer",
                                                                                   "kustomize")]
    if paths:
        chosen = [p.resolve() for p in paths]
        names = [n for n in names if any((ctx.root / n) == p or (ctx.root / n).is_relative_to(p) for p in chosen)]
    if not names:
        return [], ["no compose or Kubernetes files found (deploy_files): resource limits (item 10) not checked"]
    findings: list[Finding] = []
    for name in names:
        text = read_text(ctx.root, name)
        if is_templated(text):
            continue  # a Helm template is not YAML until rendered; its values file is checked
        for doc in parse_documents(text, name):
            for workload in workloads(ctx.root, doc):
                cuda = _runs_cuda(ctx, workload)
                if cuda is None:
                    continue  # not a locked image
                shown = workload.image or f"built from {workload.built_from}"
                if not workload.memory_limit:
                    findings.append(finding("deploy-no-memory-limit", workload.path, workload.line,
                                            f"{workload.what} ({shown}) has no memory limit"))
                if cuda and not workload.gpu_request:
                    findings.append(finding("deploy-no-gpu-request", workload.path, workload.line,
                                            f"{workload.what} runs a CUDA image ({shown}) without requesting a GPU"))
    return findings, []


def workloads(root: Path, doc: YamlDocument) -> Iterator[Workload]:
    images = {site.line: site.image for site in extract(doc)}
    kind = file_kind(doc.path)
    if kind == "compose":
        yield from _compose(root, doc, images)
    elif kind == "helm":
        yield from _helm_values(doc, images)
    elif scalar(mapping_get(doc.root, "kind")) is not None:
        yield from _kubernetes(doc, images)


def _compose(root: Path, doc: YamlDocument, images: dict[int, str | None]) -> Iterator[Workload]:
    for name, key, service in mapping_items(mapping_get(doc.root, "services")):
        build = mapping_get(service, "build")
        built_from: str | None = None
        if build is not None:
            context = scalar(build) or scalar(mapping_get(build, "context")) or "."
            dockerfile = scalar(mapping_get(build, "dockerfile")) or "Dockerfile"
            target = ((root / doc.path).parent / context / dockerfile).resolve()
            built_from = target.relative_to(root.resolve()).as_posix() if target.is_relative_to(root.resolve()) \
                else ""
        image_node = mapping_get(service, "image")
        image = images.get(line_of(image_node)) if image_node is not None else None
        limits = mapping_get(mapping_get(mapping_get(service, "deploy"), "resources"), "limits")
        memory = mapping_get(limits, "memory") is not None or mapping_get(service, "mem_limit") is not None
        reservations = mapping_get(mapping_get(mapping_get(service, "deploy"), "resources"), "reservations")
        devices = sequence_items(mapping_get(reservations, "devices"))
        gpu = mapping_get(service, "gpus") is not None or any(
            "gpu" in [scalar(c) for c in sequence_items(mapping_get(device, "capabilities"))] for device in devices)
        yield Workload(doc.path, line_of(key), f"service '{name}'", image, built_from, memory, gpu)


def _kubernetes(doc: YamlDocument, images: dict[int, str | None]) -> Iterator[Workload]:
    kind = scalar(mapping_get(doc.root, "kind"))
    spec = mapping_get(doc.root, "spec")
    if kind == "CronJob":
        spec = mapping_get(mapping_get(mapping_get(mapping_get(spec, "jobTemplate"), "spec"), "template"), "spec")
    elif kind in _WORKLOADS:
        spec = mapping_get(mapping_get(spec, "template"), "spec")
    elif kind != "Pod":
        return
    for field in ("initContainers", "containers"):
        for container in sequence_items(mapping_get(spec, field)):
            resources = mapping_get(container, "resources")
            limits, requests = mapping_get(resources, "limits"), mapping_get(resources, "requests")
            image_node = mapping_get(container, "image")
            image = images.get(line_of(image_node)) if image_node is not None else None
            name = scalar(mapping_get(container, "name")) or "?"
            yield Workload(doc.path, line_of(container), f"{kind} container '{name}'", image, None,
                           mapping_get(limits, "memory") is not None,
                           mapping_get(limits, _GPU) is not None or mapping_get(requests, _GPU) is not None)


def _helm_values(doc: YamlDocument, images: dict[int, str | None]) -> Iterator[Workload]:
    """The common chart shape: top-level ``image`` and ``resources``."""
    entry = mapping_entry(doc.root, "image")
    if entry is None:
        return
    key, image_node = entry
    image = images.get(line_of(image_node))
    if image is None and isinstance(image_node, yaml.MappingNode):
        image = next((i for line, i in images.items() if line >= line_of(image_node) and i), None)
    limits = mapping_get(mapping_get(doc.root, "resources"), "limits")
    yield Workload(doc.path, line_of(key), "chart values", image, None,
                   mapping_get(limits, "memory") is not None, mapping_get(limits, _GPU) is not None)


def _runs_cuda(ctx: CheckContext, workload: Workload) -> bool | None:
    """True/False: a locked image that is / is not CUDA; None: not a locked image."""
    lock = ctx.lock
    if workload.built_from is not None:
        views = [v for v in ctx.dockerfiles if v.path == workload.built_from]
        if not views:
            return None
        images = [s.site.image for s in views[0].final if s.site.kind == "image" and s.site.image]
        return any(_is_cuda(ctx, image) for image in images)
    if workload.image is None or lock is None:
        return None
    try:
        ref = ImageRef.parse(workload.image)
    except PinreproError:
        return None  # an image name that does not parse is not a locked image
    key = ref.without_digest().tagged if ref.tag else ref.tagged
    if key not in lock.images:
        return None
    return _is_cuda(ctx, workload.image)


def _is_cuda(ctx: CheckContext, image: str) -> bool:
    lock = ctx.lock
    try:
        ref = ImageRef.parse(image)
    except PinreproError:
        return False
    key = ref.without_digest().tagged if ref.tag else ref.tagged
    entry = lock.images.get(key) if lock else None
    if entry is None:
        return "cuda" in ref.repository or "cuda" in (ref.tag or "")
    for platform in entry.platforms.values():
        if platform.contents:
            try:
                contents = PlatformContents.from_toml(platform.contents)
            except PinreproError:
                continue  # a corrupt entry is the lock checks' business
            if contents.cuda is not None and contents.cuda.version:
                return True
    return False

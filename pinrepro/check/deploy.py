"""Checklist item 10: resource limits configured where the service is deployed (compose, Kubernetes, Helm values).

Every compose service or Kubernetes container that runs a locked image (an image in pinrepro.lock, or a compose
service built from one of the project's Dockerfiles) needs a memory limit, and a GPU request when the image is a
CUDA image. Without deployment files this is one note, not a failure.

TODO(#12): the YAML reading below (file discovery, nodes with line numbers) is a small reader of check's own,
to be replaced by pinrepro/deploy/'s reader when that lands, so there is one reader of deployment files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from pinrepro.check.model import CheckContext, finding
from pinrepro.errors import ConfigError, PinreproError
from pinrepro.findings import Finding
from pinrepro.inventory.contents import PlatformContents
from pinrepro.reference import ImageRef

_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"})
_SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Workload:
    """One compose service or Kubernetes container, with what rule 10 needs from it."""

    path: str
    line: int
    name: str
    image: str | None
    built_from: str | None  # compose `build:` -> the Dockerfile it builds (relative to the project)
    memory_limit: bool
    gpu_request: bool


def check(ctx: CheckContext, paths: Sequence[Path] = ()) -> tuple[list[Finding], list[str]]:
    files = find_deploy_files(ctx.root, ctx.settings.deploy_files)
    if paths:
        chosen = [p.resolve() for p in paths]
        files = [f for f in files if any(f == p or f.is_relative_to(p) for p in chosen)]
    if not files:
        return [], ["no compose or Kubernetes files found (deploy_files): resource limits (item 10) not checked"]
    findings: list[Finding] = []
    for file in files:
        for workload in read_workloads(ctx.root, file):
            cuda = _runs_cuda(ctx, workload)
            if cuda is None:
                continue  # not a locked image
            what = f"service '{workload.name}'" if workload.built_from is not None or "compose" in workload.path \
                else f"container '{workload.name}'"
            if not workload.memory_limit:
                findings.append(finding("deploy-no-memory-limit", workload.path, workload.line,
                                        f"{what} ({workload.image or 'built here'}) has no memory limit"))
            if cuda and not workload.gpu_request:
                findings.append(finding("deploy-no-gpu-request", workload.path, workload.line,
                                        f"{what} runs a CUDA image ({workload.image or 'built here'}) without "
                                        "requesting a GPU"))
    return findings, []


def find_deploy_files(root: Path, globs: Sequence[str]) -> list[Path]:
    found: set[Path] = set()
    for pattern in globs:
        for path in root.glob(pattern):
            if path.is_file() and not _SKIPPED_DIRS.intersection(path.relative_to(root).parts[:-1]):
                found.add(path)
    return sorted(found)


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


# -- the small YAML reader (see the module docstring) --------------------------------------------


def read_workloads(root: Path, file: Path) -> Iterator[Workload]:
    name = relative_name(root, file)
    try:
        documents = list(yaml.compose_all(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read it as YAML: {str(exc).splitlines()[0]}", where=name,
                          fix="fix the file, or narrow `deploy_files` in [tool.pinrepro.check]") from None
    for document in documents:
        if not isinstance(document, yaml.MappingNode):
            continue
        services = _get(document, "services")
        if isinstance(services, yaml.MappingNode):
            yield from _compose(root, file, name, services)
            continue
        kind = _scalar(_get(document, "kind"))
        if kind is not None:
            yield from _kubernetes(name, kind, document)
        elif PurePosixPath(name).name.startswith("values"):
            yield from _helm_values(name, document)


def relative_name(root: Path, file: Path) -> str:
    return file.relative_to(root).as_posix()


def _get(node: yaml.Node | None, *keys: str) -> yaml.Node | None:
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((value for k, value in node.value if _scalar(k) == key), None)
    return node


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _compose(root: Path, file: Path, name: str, services: yaml.MappingNode) -> Iterator[Workload]:
    for key, service in services.value:
        service_name = _scalar(key) or "?"
        build = _get(service, "build")
        built_from: str | None = None
        if build is not None:
            context = _scalar(build) or _scalar(_get(build, "context")) or "."
            dockerfile = _scalar(_get(build, "dockerfile")) or "Dockerfile"
            target = (file.parent / context / dockerfile).resolve()
            built_from = target.relative_to(root).as_posix() if target.is_relative_to(root) else ""
        memory = _get(service, "deploy", "resources", "limits", "memory") is not None \
            or _get(service, "mem_limit") is not None
        devices = _items(_get(service, "deploy", "resources", "reservations", "devices"))
        gpu = _get(service, "gpus") is not None or any(
            "gpu" in [_scalar(c) for c in _items(_get(device, "capabilities"))] for device in devices)
        yield Workload(name, key.start_mark.line + 1, service_name, _scalar(_get(service, "image")), built_from,
                       memory, gpu)


def _kubernetes(name: str, kind: str, document: yaml.MappingNode) -> Iterator[Workload]:
    if kind == "Pod":
        spec = _get(document, "spec")
    elif kind == "CronJob":
        spec = _get(document, "spec", "jobTemplate", "spec", "template", "spec")
    elif kind in _WORKLOADS:
        spec = _get(document, "spec", "template", "spec")
    else:
        return
    for field in ("initContainers", "containers"):
        for container in _items(_get(spec, field)):
            limits = _get(container, "resources", "limits")
            requests = _get(container, "resources", "requests")
            gpu = _get(limits, "nvidia.com/gpu") is not None or _get(requests, "nvidia.com/gpu") is not None
            yield Workload(name, container.start_mark.line + 1, _scalar(_get(container, "name")) or "?",
                           _scalar(_get(container, "image")), None, _get(limits, "memory") is not None, gpu)


def _helm_values(name: str, document: yaml.MappingNode) -> Iterator[Workload]:
    image = _get(document, "image")
    if image is None:
        return
    text = _scalar(image)
    if text is None:
        repository, tag = _scalar(_get(image, "repository")), _scalar(_get(image, "tag"))
        text = f"{repository}:{tag}" if repository and tag else repository
    limits = _get(document, "resources", "limits")
    yield Workload(name, image.start_mark.line + 1, "values", text, None, _get(limits, "memory") is not None,
                   _get(limits, "nvidia.com/gpu") is not None)

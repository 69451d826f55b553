"""Per format, the image references a deployment document names and where a digest for each would go.

Formats and the fields read (each one a reference an orchestrator pulls):

- compose: ``services.*.image``, with compose's interpolation: ``${VAR:-default}`` / ``${VAR-default}`` pin the
  default, a bare ``$VAR`` / ``${VAR}`` cannot be known and is reported. A service with ``build:`` names the
  image the build *tags*, not one it pulls, so it is left alone.
- Kubernetes: ``image`` of ``containers``, ``initContainers`` and ``ephemeralContainers`` in the pod spec of a
  Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob (every document of a file).
- Kustomize: ``images:`` entries (``name`` / ``newName`` / ``newTag`` / ``digest``): the digest goes into ``digest``.
- Helm values: ``image: {registry?, repository, tag, digest?}`` (``digest`` written, ``tag`` kept) and plain
  ``image: repo:tag`` strings, anywhere in the values tree.
- GitHub workflows: ``jobs.*.container`` (a string or ``.image``), ``jobs.*.services.*.image`` and steps that
  run an image directly (``uses: docker://image:tag``).
- devcontainer.json: ``image``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from pinrepro.deploy.discovery import file_kind
from pinrepro.deploy.model import DeployFileError, DeploySite, Edit, FileKind
from pinrepro.deploy.yamlread import (
    YamlDocument,
    line_of,
    mapping_entry,
    mapping_get,
    mapping_items,
    scalar,
    sequence_items,
    verbatim_span,
)
from pinrepro.errors import InvalidReferenceError
from pinrepro.reference import ImageRef

_WORKLOADS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController"}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_DOCKER_ACTION = "docker://"  # a workflow step that runs an image: ``uses: docker://alpine:3.19``
# compose's interpolation (compose-spec, "Interpolation"): $$ escapes, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ...
_COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^{}$]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def extract(doc: YamlDocument) -> Iterator[DeploySite]:
    """Every image reference of one document; the same node reached twice (an alias) is yielded once."""
    kind = file_kind(doc.path)
    seen: set[int] = set()
    for site in _by_kind(doc, kind):
        node_at = site.edit.node if site.edit else -site.line
        if node_at not in seen:
            seen.add(node_at)
            yield site


def _by_kind(doc: YamlDocument, kind: FileKind | None) -> Iterator[DeploySite]:
    root = doc.root
    if kind == "compose":
        yield from _compose(doc)
    elif kind == "workflow":
        yield from _workflow(doc)
    elif kind == "devcontainer":
        site = _reference(doc, mapping_get(root, "image"), "devcontainer", "image")
        if site:
            yield site
    elif kind == "helm":
        yield from _helm(doc, root, "")
    elif kind == "kustomize" or scalar(mapping_get(root, "kind")) == "Kustomization":
        yield from _kustomize(doc)
    elif scalar(mapping_get(root, "apiVersion")) and scalar(mapping_get(root, "kind")):
        yield from _kubernetes(doc)


def _compose(doc: YamlDocument) -> Iterator[DeploySite]:
    for name, _, service in mapping_items(mapping_get(doc.root, "services")):
        if mapping_get(service, "build") is not None:
            continue  # ``image`` is the tag the build produces
        site = _reference(doc, mapping_get(service, "image"), "compose", f"services.{name}.image", compose=True)
        if site:
            yield site


def _kubernetes(doc: YamlDocument) -> Iterator[DeploySite]:
    root = doc.root
    kind = scalar(mapping_get(root, "kind"))
    if kind not in _WORKLOADS:
        return
    spec = mapping_get(root, "spec")
    path = "spec"
    if kind == "CronJob":
        spec = mapping_get(mapping_get(spec, "jobTemplate"), "spec")
        path += ".jobTemplate.spec"
    if kind != "Pod":
        spec = mapping_get(mapping_get(spec, "template"), "spec")
        path += ".template.spec"
    for list_name in _CONTAINER_LISTS:
        for container in sequence_items(mapping_get(spec, list_name)):
            name = scalar(mapping_get(container, "name")) or "?"
            site = _reference(doc, mapping_get(container, "image"), "kubernetes",
                              f"{kind} {path}.{list_name}[{name}].image")
            if site:
                yield site


def _kustomize(doc: YamlDocument) -> Iterator[DeploySite]:
    for entry in sequence_items(mapping_get(doc.root, "images")):
        name = scalar(mapping_get(entry, "newName")) or scalar(mapping_get(entry, "name"))
        if not name:
            continue
        site = _object_site(doc, entry, "kustomize", f"images[{name}]", name, "newTag")
        if site:
            yield site


def _workflow(doc: YamlDocument) -> Iterator[DeploySite]:
    for job_name, _, job in mapping_items(mapping_get(doc.root, "jobs")):
        container = mapping_get(job, "container")
        if isinstance(container, yaml.ScalarNode):
            site = _reference(doc, container, "workflow", f"jobs.{job_name}.container")
        else:
            site = _reference(doc, mapping_get(container, "image"), "workflow", f"jobs.{job_name}.container.image")
        if site:
            yield site
        for service_name, _, service in mapping_items(mapping_get(job, "services")):
            site = _reference(doc, mapping_get(service, "image"), "workflow",
                              f"jobs.{job_name}.services.{service_name}.image")
            if site:
                yield site
        for position, step in enumerate(sequence_items(mapping_get(job, "steps"))):
            uses = mapping_get(step, "uses")
            if (scalar(uses) or "").startswith(_DOCKER_ACTION):
                site = _reference(doc, uses, "workflow", f"jobs.{job_name}.steps[{position}].uses",
                                  prefix=_DOCKER_ACTION)
                if site:
                    yield site


def _helm(doc: YamlDocument, node: yaml.Node | None, path: str) -> Iterator[DeploySite]:
    """Walk the values tree: keys named ``image`` (or ending in ``Image``) hold a string or an image object."""
    if isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            yield from _helm(doc, item, f"{path}[{position}]")
        return
    for key, _, value in mapping_items(node):
        field = f"{path}.{key}" if path else key
        if key.lower().endswith("image"):
            if isinstance(value, yaml.ScalarNode):
                site = _reference(doc, value, "helm", field, lenient=key != "image")
                if site:
                    yield site
                continue
            repository = scalar(mapping_get(value, "repository"))
            if repository:
                registry = scalar(mapping_get(value, "registry"))
                name = f"{registry}/{repository}" if registry else repository
                site = _object_site(doc, value, "helm", field, name, "tag")
                if site:
                    yield site
                continue
        yield from _helm(doc, value, field)


def _reference(doc: YamlDocument, node: yaml.Node | None, kind: FileKind, field: str, *,
               compose: bool = False, lenient: bool = False, prefix: str = "") -> DeploySite | None:
    """A site for a scalar that holds a whole reference (after ``prefix``); None when it is absent or empty."""
    value = scalar(node)
    if node is None or value is None or not value.strip():
        return None
    written = value[len(prefix):]
    line = line_of(node)
    span = verbatim_span(doc.text, node)
    if span is not None:
        span = (span[0] + len(prefix), span[1])
    image: str | None = written
    reason = None
    inner = (0, len(written))  # the part of the value that is the reference, as offsets into the value
    if compose and "$" in written:
        image, reason, default_at = _compose_value(written)
        if default_at is None and image is not None:
            default_at, reason = _tag_variable(written)
            image = None if reason else image
        if default_at is not None:
            inner = default_at
    elif "${{" in written:
        image, reason = None, "a workflow expression decides it"
    elif "$" in written:
        image, reason = None, "it is built from a variable"
    elif "{{" in written:
        image, reason = None, "a template decides it"
    if image is not None:
        try:
            ImageRef.parse(image)
        except InvalidReferenceError as exc:
            if lenient:
                return None
            raise DeployFileError(exc.what, where=f"{doc.path}:{line}", fix=f"fix {field}") from None
    edit = None
    if image is not None and span is not None:
        edit = Edit("reference", span[0] + inner[0], span[0] + inner[1], int(node.start_mark.index))
    elif image is not None:
        reason = "its value is written with escapes or folded lines, so no digest can be spliced into it"
    return DeploySite(doc.path, line, kind, field, written, image, reason, edit)


def _compose_value(value: str) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """Expand compose interpolation with defaults only: (image, why unknown, where the default is if it is all)."""
    whole = _COMPOSE_VAR.fullmatch(value)
    if whole and whole.group(2) in ("-", ":-") and whole.group(3):
        return whole.group(3), None, (whole.start(3), whole.end(3))
    unknown: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        if match.group(2) in ("-", ":-") and match.group(3) is not None:
            return match.group(3)
        unknown.append(name)
        return ""

    expanded = _COMPOSE_VAR.sub(substitute, value)
    if unknown:
        return None, f"${{{unknown[0]}}} has no default (write ${{{unknown[0]}:-image:tag}} to pin one)", None
    return expanded, None, None


def _tag_variable(value: str) -> tuple[tuple[int, int] | None, str | None]:
    """A variable in the tag (``redis:${TAG:-7}``) picks the image, so the digest goes inside its default: written
    after it, the digest would pin every tag anyone sets to this one, silently. (where the default is, why not)"""
    variables = [m for m in _COMPOSE_VAR.finditer(value) if m.group(0) != "$$"]
    masked = list(value)
    for match in variables:
        masked[match.start():match.end()] = "x" * (match.end() - match.start())
    # A variable in the name only picks the repository: a digest after it then fails loudly where it does not belong.
    text = "".join(masked)
    name_end = text.rfind("/") + 1
    colon = text.find(":", name_end)
    tag_from = colon + 1 if colon >= 0 else min((m.start() for m in variables if m.start() >= name_end),
                                                default=len(value))
    in_tag = [m for m in variables if m.start() >= tag_from]
    if not in_tag:
        return None, None
    last = in_tag[-1]
    if last.end() == len(value) and last.group(2) in ("-", ":-") and last.group(3):
        return (last.start(3), last.end(3)), None
    return None, (f"${{{last.group(1) or last.group(4)}}} picks the tag, and a digest after it would pin every "
                  f"tag to one image; end the value with ${{VAR:-tag}} so the digest can go inside the default")


def _object_site(doc: YamlDocument, node: yaml.Node, kind: FileKind, field: str, name: str,
                 tag_key: str) -> DeploySite | None:
    """``{repository|newName, tag|newTag, digest}``: the digest goes into ``digest``, the tag stays."""
    line = line_of(node)
    tag_entry = mapping_entry(node, tag_key)
    tag = scalar(tag_entry[1]) if tag_entry else None
    digest_entry = mapping_entry(node, "digest")
    digest = scalar(digest_entry[1]) if digest_entry else None
    written = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    if "$" in written or "{{" in written:
        return DeploySite(doc.path, line, kind, field, written, None, "it is built from a variable")
    if not tag:
        if digest:  # pinned by digest alone: nothing moves, the lock only records it
            return DeploySite(doc.path, line, kind, field, written, written)
        why = f"it has no {tag_key}, so another file decides the tag"
        return DeploySite(doc.path, line, kind, field, written, None, why)
    try:
        ImageRef.parse(written)
    except InvalidReferenceError as exc:
        raise DeployFileError(exc.what, where=f"{doc.path}:{line}", fix=f"fix {field}") from None
    edit = _digest_edit(doc, node, digest_entry, tag_entry)
    reason = None if edit else f"no place to write its digest: add a 'digest' key next to '{tag_key}'"
    return DeploySite(doc.path, line, kind, field, written, written, reason, edit)


def _digest_edit(doc: YamlDocument, node: yaml.Node, digest_entry: tuple[yaml.Node, yaml.Node] | None,
                 tag_entry: tuple[yaml.Node, yaml.Node] | None) -> Edit | None:
    text = doc.text
    if digest_entry is not None:
        value = digest_entry[1]
        span = verbatim_span(text, value)
        if span is None:
            return None
        # ``digest:`` with nothing after it needs a space before the value.
        bare = isinstance(value, yaml.ScalarNode) and value.style is None and span[0] == span[1]
        return Edit("value", span[0], span[1], int(value.start_mark.index), prefix=" " if bare else "")
    if tag_entry is None or not any(k is tag_entry[0] for k, _ in node.value):
        return None  # the tag comes from a merged mapping: no safe place in this one
    tag_value = tag_entry[1]
    if not isinstance(node, yaml.MappingNode) or not isinstance(tag_value, yaml.ScalarNode):
        return None
    if node.flow_style:
        at = int(tag_value.end_mark.index)
        return Edit("insert", at, at, int(node.start_mark.index), prefix=", ")
    if tag_value.style not in (None, "'", '"') or tag_value.start_mark.line != tag_value.end_mark.line:
        return None
    line_end = _line_end(text, int(tag_value.end_mark.index))
    if line_end < len(text):
        newline = "\r\n" if text.startswith("\r\n", line_end) else "\n"
    else:
        newline = "\r\n" if "\r\n" in text else "\n"
    indent = " " * int(tag_entry[0].start_mark.column)
    return Edit("insert", line_end, line_end, int(node.start_mark.index), prefix=newline + indent)


def _line_end(text: str, index: int) -> int:
    """The offset of the line break ending the line that holds ``index`` (or of the end of the text)."""
    ends = [pos for pos in (text.find("\r\n", index), text.find("\n", index)) if pos >= 0]
    return min(ends) if ends else len(text)

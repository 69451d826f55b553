"""Every deployment file of a project: its image sites, what cannot be pinned, and the pinned texts.

This is what ``lock`` and ``verify`` call. Templated files (Helm templates, ``{{ }}``) are not YAML until Helm
renders them, so they are skipped with a note instead of failing the run.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pinrepro.deploy.discovery import TEMPLATE_ACTION, find_deploy_files, is_templated
from pinrepro.deploy.model import DeployFileError, DeploySite
from pinrepro.findings import Finding

if TYPE_CHECKING:
    from pinrepro.deploy.yamlread import YamlDocument


@dataclass(frozen=True)
class DeployScan:
    sites: tuple[DeploySite, ...] = ()
    findings: tuple[Finding, ...] = ()
    texts: Mapping[str, str] = field(default_factory=dict)  # file name -> its text, as read


def scan_project(root: Path, globs: tuple[str, ...]) -> DeployScan:
    sites: list[DeploySite] = []
    findings: list[Finding] = []
    texts: dict[str, str] = {}
    for name in find_deploy_files(root, globs):
        # PyYAML is imported only for a project that has deployment files (start-up time, issue #15).
        from pinrepro.deploy.extract import extract
        from pinrepro.deploy.yamlread import read_text

        text = read_text(root, name)
        docs = _documents(text, name)
        if docs is None:
            findings.append(Finding(name, None, "note", "templated",
                                    "skipped: a template ({{ }}) is not YAML until it is rendered; pin the images "
                                    "in the chart's values file"))
            continue
        texts[name] = text
        for doc in docs:
            for site in extract(doc):
                sites.append(site)
                if site.image is None:
                    findings.append(Finding(name, site.line, "warning", "unresolved",
                                            f"cannot pin {site.field} '{site.written}': {site.reason}; "
                                            "it is left alone"))
                elif site.edit is None and "@" not in site.image:
                    findings.append(Finding(name, site.line, "warning", "unpinnable",
                                            f"cannot pin {site.field} '{site.written}': {site.reason}"))
    return DeployScan(tuple(sites), tuple(findings), texts)


def _documents(text: str, name: str) -> list[YamlDocument] | None:
    """The file's YAML documents, parsed once; None for a template ({{ }} outside string values), which is not
    YAML until it is rendered."""
    from pinrepro.deploy.yamlread import parse_documents

    if name.lower().endswith(".json") or not is_templated(text):
        return parse_documents(text, name)
    try:
        docs = parse_documents(text, name)
    except DeployFileError:
        return None
    return docs if _braces_only_in_strings(text, docs) else None


def _braces_only_in_strings(text: str, docs: list[YamlDocument]) -> bool:
    """True for a YAML file whose every ``{{`` is inside a string value - a Prometheus alert's
    ``"{{ $labels.instance }}"``, an Argo parameter - not a template to render: its images are read and pinned."""
    import yaml  # only for a project with deployment files (start-up time, issue #15)

    from pinrepro.deploy.yamlread import child_nodes

    spans: list[tuple[int, int]] = []
    for doc in docs:
        stack = [doc.root] if doc.root is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.ScalarNode):
                spans.append((int(node.start_mark.index), int(node.end_mark.index)))
            stack.extend(child_nodes(node))
    spans.sort()
    starts = [start for start, _ in spans]
    for match in TEMPLATE_ACTION.finditer(text):
        at = bisect.bisect_right(starts, match.start()) - 1
        if at < 0 or not spans[at][0] <= match.start() < spans[at][1]:
            return False
    return True


def pin_files(scan: DeployScan, digest_for: Callable[[DeploySite], str | None]) -> dict[str, str]:
    """The new text of every deployment file that changes when each site gets ``digest_for(site)``."""
    by_file: dict[str, list[tuple[DeploySite, str]]] = {}
    for site in scan.sites:
        digest = digest_for(site)
        if digest is not None and site.image is not None and (site.edit is not None or "@" in site.image):
            by_file.setdefault(site.path, []).append((site, digest))
    changed = {}
    from pinrepro.deploy.rewrite import pin_text

    for name, pins in sorted(by_file.items()):
        new_text = pin_text(scan.texts[name], name, pins)
        if new_text != scan.texts[name]:
            changed[name] = new_text
    return changed

"""Which files of a project are deployment files, and what kind each one is.

The default globs are the places real projects keep them (compose at the root, manifests under ``k8s/`` or
``deploy/``, chart values, GitHub workflows, the devcontainer); ``deploy_files`` in the configuration replaces
them. Version-control, virtualenv and cache folders are never searched, like for Dockerfiles.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pinrepro.config import DEFAULT_DEPLOY_GLOBS
from pinrepro.deploy.model import FileKind

__all__ = ["DEFAULT_DEPLOY_GLOBS", "file_kind", "find_deploy_files", "is_deploy_path", "is_templated"]


# Folders that never hold the project's own files but can be huge or vendored (same list as for Dockerfiles).
_SKIPPED_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}
# A Go template action: Helm's ``{{ .Values.x }}``. GitHub's ``${{ expr }}`` is not one, hence the lookbehind.
TEMPLATE_ACTION = re.compile(r"(?<!\$)\{\{|\{%")


def find_deploy_files(root: Path, globs: Iterable[str] = DEFAULT_DEPLOY_GLOBS) -> list[str]:
    """Every file under ``root`` matching ``globs``, as sorted '/'-separated paths relative to ``root``."""
    found: set[str] = set()
    for pattern in globs:
        for path in root.glob(pattern):
            relative = path.relative_to(root)
            if path.is_file() and not _SKIPPED_DIRS.intersection(relative.parts[:-1]):
                found.add(relative.as_posix())
    return sorted(found)


def file_kind(name: str) -> FileKind | None:
    """The format a file's name and place imply; None means "Kubernetes manifests, judged per document"."""
    path = PurePosixPath(name)
    base = path.name.lower()
    if base.endswith(".json"):
        return "devcontainer"
    if path.parent.as_posix().endswith(".github/workflows"):
        return "workflow"
    if fnmatch.fnmatch(base, "compose*.y*ml") or fnmatch.fnmatch(base, "docker-compose*.y*ml"):
        return "compose"
    if fnmatch.fnmatch(base, "kustomization.y*ml"):
        return "kustomize"
    if fnmatch.fnmatch(base, "values*.y*ml"):
        return "helm"
    return None


def is_deploy_path(name: str) -> bool:
    """True for a deployment file's name (YAML or JSON); Dockerfiles never end that way."""
    return name.lower().endswith((".yaml", ".yml", ".json"))


def is_templated(text: str) -> bool:
    """True for a file with Go template actions (a Helm template): it is not YAML until Helm renders it."""
    return TEMPLATE_ACTION.search(text) is not None

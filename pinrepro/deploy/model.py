"""Value objects shared by the deploy modules: a reference found in a deployment file, and where its digest goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pinrepro.errors import PinreproError

FileKind = Literal["compose", "kubernetes", "kustomize", "helm", "workflow", "devcontainer"]
# "reference": the characters [start, end) are the reference (maybe with "@sha256:..."): the digest goes after them;
# "value": [start, end) is the value of an existing ``digest`` key (maybe empty), replaced by the digest;
# "insert": a ``digest`` key is inserted at ``start``, written with ``prefix`` before it (newline and indent, or ", ").
EditKind = Literal["reference", "value", "insert"]


class DeployFileError(PinreproError):
    """A deployment file that cannot be read, is not valid YAML / JSON, or names an invalid image."""


@dataclass(frozen=True)
class Edit:
    kind: EditKind
    start: int  # character offsets into the file's text
    end: int
    node: int  # start offset of the YAML node the edit changes (the scalar, or the mapping that gains a key)
    prefix: str = ""  # "insert": what goes before ``digest: <value>``; "value": a space after a bare ``digest:``


@dataclass(frozen=True)
class DeploySite:
    """One image reference in a deployment file."""

    path: str  # relative to the project root, '/'-separated
    line: int  # 1-based
    kind: FileKind
    field: str  # where in the document, e.g. "services.web.image", for messages
    written: str  # the value as written, e.g. "${REDIS:-redis:7}" or "nginx"
    image: str | None  # the reference it names, "@sha256:..." included when written; None when unknown
    reason: str | None = None  # why ``image`` is unknown
    edit: Edit | None = None  # where a digest goes; None when nothing may be written (reported)

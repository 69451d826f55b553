"""Write digests into a deployment file by splicing characters, then prove by re-parsing that nothing else moved.

The document is never re-serialised: each edit replaces the characters of one reference (or of a ``digest``
value, or inserts one ``digest:`` entry), every other character stays - comments, quotes, anchors, key order,
indentation, CRLF. The check parses the old text, applies the intended changes to its node graph (so aliases
and merge keys see them exactly as a YAML reader would), and requires the new text to load to the same data.
"""

from __future__ import annotations

from collections.abc import Iterable

import yaml

from pinrepro.deploy.model import DeployFileError, DeploySite
from pinrepro.deploy.yamlread import parse_documents, to_python, verbatim_span
from pinrepro.dockerfile import strip_digest
from pinrepro.reference import ImageRef

_STR_TAG = "tag:yaml.org,2002:str"
_NodeKey = tuple[int, str]


def pin_text(text: str, name: str, pins: Iterable[tuple[DeploySite, str]]) -> str:
    """``text`` with each site pinned to its digest; raises DeployFileError when a site has no place for one."""
    edits: dict[tuple[int, int], tuple[str, DeploySite]] = {}
    for site, digest in pins:
        edit = site.edit
        if edit is None or site.image is None:
            if site.image is not None and strip_digest(site.image)[1] == digest:
                continue
            raise DeployFileError(f"cannot pin {site.field} ('{site.written}'): {site.reason}",
                                  where=f"{site.path}:{site.line}", fix="write the reference plainly on one line")
        current = text[edit.start:edit.end]
        if edit.kind == "reference":
            base, written_digest = strip_digest(current)
            if written_digest == digest:
                continue
            implied = ":latest" if ImageRef.parse(site.image).implicit_tag else ""
            replacement = f"{base}{implied}@{digest}"
        elif edit.kind == "value":
            if current == digest:
                continue
            replacement = edit.prefix + digest
        else:
            replacement = f"{edit.prefix}digest: {digest}"
        key = (edit.start, edit.end)
        earlier = edits.get(key)
        if earlier is not None and earlier[0] != replacement:
            raise DeployFileError(
                f"{earlier[1].field} and {site.field} share one value but would need different digests",
                where=f"{site.path}:{site.line}", fix="give each its own value (not an anchor they share)")
        edits[key] = (replacement, site)
    if not edits:
        return text
    new_text = _splice(text, {key: value[0] for key, value in edits.items()})
    _check(text, new_text, name, edits)
    return new_text


def _splice(text: str, edits: dict[tuple[int, int], str]) -> str:
    out = []
    position = 0
    for (start, end), replacement in sorted(edits.items()):
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


def _check(old_text: str, new_text: str, name: str,
           edits: dict[tuple[int, int], tuple[str, DeploySite]]) -> None:
    where = name
    try:
        new_docs = parse_documents(new_text, name)
    except DeployFileError as exc:
        raise DeployFileError(f"pinning would make the file unreadable ({exc.what})", where=where,
                              fix="report this as a pinrepro bug; the file was not changed") from None
    old_docs = parse_documents(old_text, name)
    nodes: dict[_NodeKey, yaml.Node] = {}
    for doc in old_docs:
        _index(doc.root, nodes, set())
    for (start, end), (replacement, site) in edits.items():
        edit = site.edit
        assert edit is not None
        if edit.kind == "insert":
            digest = replacement[len(edit.prefix) + len("digest: "):]
            nodes[(edit.node, "map")].value.append(
                (yaml.ScalarNode(_STR_TAG, "digest"), yaml.ScalarNode(_STR_TAG, digest)))
            continue
        node = nodes[(edit.node, "scalar")]
        if edit.kind == "value":
            node.value = replacement.strip()
        else:
            span = verbatim_span(old_text, node)
            assert span is not None  # extract made a "reference" edit only for a verbatim scalar
            node.value = node.value[:start - span[0]] + replacement + node.value[end - span[0]:]
        if node.tag.startswith("tag:yaml.org,2002:"):
            node.tag = _STR_TAG  # a plain value read as a number or date reads as a string once pinned
    expected = [to_python(doc.root, name) for doc in old_docs]
    actual = [to_python(doc.root, name) for doc in new_docs]
    if expected != actual:
        raise DeployFileError("pinning would change more than the image references", where=where,
                              fix="report this as a pinrepro bug; the file was not changed")


def _index(node: yaml.Node | None, nodes: dict[_NodeKey, yaml.Node], seen: set[int]) -> None:
    if node is None or id(node) in seen:
        return
    seen.add(id(node))
    start = int(node.start_mark.index)
    if isinstance(node, yaml.ScalarNode):
        nodes.setdefault((start, "scalar"), node)
    elif isinstance(node, yaml.MappingNode):
        nodes.setdefault((start, "map"), node)
        for key, value in node.value:
            _index(key, nodes, seen)
            _index(value, nodes, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _index(item, nodes, seen)

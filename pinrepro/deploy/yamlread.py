"""The one reader of YAML (and JSON-with-comments) deployment files: documents whose nodes know where they are.

PyYAML's ``compose`` gives a node graph before any Python objects are built; each node carries ``start_mark``
and ``end_mark`` with the character ``index``, ``line`` and ``column`` in the text. That is what lets pinrepro
splice a digest into the exact characters of a scalar instead of re-serialising the document (which would lose
comments, quotes, anchors and key order). The pure-Python loader is used on purpose: its marks count characters
of the decoded text, which is what the splicing indexes.

For reuse: ``read_documents(root, name)`` (or ``parse_documents(text, name)``) returns the documents of a file;
``mapping_get``, ``mapping_items`` and ``sequence_items`` walk the graph (merge keys ``<<`` included, explicit
keys winning, as YAML 1.1 says); ``line_of`` gives a node's 1-based line; ``to_python`` builds plain data.
JSON files (devcontainer.json) are read as YAML flow documents after their ``//`` and ``/* */`` comments are
blanked out character for character, so offsets stay those of the original text.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pinrepro.deploy.model import DeployFileError

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class YamlDocument:
    """One document of a file. ``root`` is None for an empty document."""

    path: str  # relative to the project root, '/'-separated, for messages
    number: int  # 0-based position of the document in the file
    text: str  # the whole file's text, as parsed (JSON comments blanked)
    root: yaml.Node | None

    def data(self) -> Any:
        """The document as plain Python data (what ``yaml.safe_load`` gives)."""
        return to_python(self.root, self.path)


def read_text(root: Path, name: str) -> str:
    """A deployment file's text, exactly as stored (no newline translation, so offsets match the bytes)."""
    try:
        raw = (root / name).read_bytes()
    except OSError as exc:
        raise DeployFileError(f"cannot read it: {exc.strerror}", where=name,
                              fix="check that the file is readable, or narrow the `deploy_files` globs") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeployFileError("is not UTF-8 text", where=name, fix="save the file as UTF-8") from None


def read_documents(root: Path, name: str) -> list[YamlDocument]:
    """Read ``root / name`` and parse it; errors name the file and line."""
    return parse_documents(read_text(root, name), name)


def parse_documents(text: str, name: str) -> list[YamlDocument]:
    """Every document of ``text``; a ``.json`` name is read as JSON with comments."""
    source = blank_json_comments(text) if name.lower().endswith(".json") else text
    try:
        roots = list(yaml.compose_all(source, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, name) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise DeployFileError("is nested too deeply to read", where=name,
                              fix="flatten the document, or leave the file out of `deploy_files`") from None
    for root in roots:
        _check_aliases(root, name)
    return [YamlDocument(name, number, source, node) for number, node in enumerate(roots)]


# Aliases make a document a graph: every walk over it (and PyYAML's own construction, which copies merged
# mappings) costs as much as the document with each alias expanded. "Billion laughs" files expand to far more
# nodes than they hold; real files expand to a few times their size at most.
_MAX_EXPANSION = 100_000
_MAX_DEPTH = 100  # building data from a node graph recurses per level; real files stay far below


def _check_aliases(root: yaml.Node | None, name: str) -> None:
    """Refuse a document whose aliases contain themselves or expand to far more nodes than it has."""
    if root is None:
        return
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 0)]
    while stack:  # depth-first without recursion: documents may be nested deeper than Python's stack
        node, finished, depth = stack.pop()
        key = id(node)
        children = child_nodes(node)
        if finished:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children)
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise DeployFileError("an alias refers to a node that contains it", where=f"{name}:{line_of(node)}",
                                  fix="YAML readers cannot build a recursive document; remove the alias")
        if depth > _MAX_DEPTH:
            raise DeployFileError(f"is nested more than {_MAX_DEPTH} levels deep", where=f"{name}:{line_of(node)}",
                                  fix="flatten the document, or leave the file out of `deploy_files`")
        open_nodes.add(key)
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in children)
    if expanded[id(root)] > 10 * len(expanded) + _MAX_EXPANSION:
        raise DeployFileError(f"its aliases expand to {expanded[id(root)]} nodes (from {len(expanded)})",
                              where=f"{name}:{line_of(root)}",
                              fix="write the repeated parts out, or leave the file out of `deploy_files`")


def child_nodes(node: yaml.Node) -> list[yaml.Node]:
    """A mapping's keys and values, a sequence's items; none for a scalar."""
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _syntax_error(exc: yaml.YAMLError, name: str) -> DeployFileError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"{name}:{mark.line + 1}" if mark is not None else name
    kind = "JSON" if name.lower().endswith(".json") else "YAML"
    return DeployFileError(f"not valid {kind}: {problem}", where=where,
                           fix="fix the syntax, or leave the file out of `deploy_files`")


class _DataLoader(yaml.SafeLoader):
    """SafeLoader that builds application tags (``!Ref``, ``!reference``) as (tag, value) instead of failing."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return (node.tag, value)


_DataLoader.add_multi_constructor("", _tagged)


def to_python(node: yaml.Node | None, name: str = "document") -> Any:
    """Plain data for ``node``. Works on a copy: building data flattens merge keys in place. A value no YAML
    reader accepts (``<<: 5``, ``!!int abc``, bad ``!!binary``) raises DeployFileError naming ``name``."""
    if node is None:
        return None
    loader = _DataLoader("")
    try:
        return loader.construct_document(copy.deepcopy(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DeployFileError(f"not valid YAML: {exc.problem or exc.context}",
                              where=f"{name}:{mark.line + 1}" if mark else name,
                              fix="fix the value, or leave the file out of `deploy_files`") from None
    except (ValueError, TypeError) as exc:  # a core-schema tag on a value it cannot hold (!!int abc)
        raise DeployFileError(f"not valid YAML: {exc}", where=f"{name}:{line_of(node)}",
                              fix="fix the value, or leave the file out of `deploy_files`") from None
    finally:
        loader.dispose()


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def scalar(node: yaml.Node | None) -> str | None:
    """The text of a non-null scalar node, else None."""
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
        return str(node.value)
    return None


def mapping_items(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(key, key node, value node) of a mapping with scalar keys; merged mappings (``<<``) come after, skipping
    keys the mapping sets itself. Anything that is not a mapping has no items."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    merges: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merges.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
            continue
        key = scalar(key_node)
        if key is not None and key not in seen:
            seen.add(key)
            yield key, key_node, value_node
    for merged in merges:
        for key, key_node, value_node in mapping_items(merged):
            if key not in seen:
                seen.add(key)
                yield key, key_node, value_node


def mapping_get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    for name, _, value in mapping_items(node):
        if name == key:
            return value
    return None


def mapping_entry(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) pair for ``key``, merge keys included."""
    for name, key_node, value in mapping_items(node):
        if name == key:
            return key_node, value
    return None


def sequence_items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def verbatim_span(text: str, node: yaml.Node) -> tuple[int, int] | None:
    """The characters of ``text`` that spell a scalar's value verbatim (inside the quotes, for a quoted one).

    None when the value is not written verbatim - escapes, folded lines, block scalars - so a caller knows it
    cannot splice into it safely.
    """
    if not isinstance(node, yaml.ScalarNode):
        return None
    # An anchored or tagged scalar (``&img redis:7``) starts at its properties; the value is at the end.
    first, end = int(node.start_mark.index), int(node.end_mark.index)
    style = node.style
    if style in ("'", '"'):
        end -= 1
        opening = end - len(node.value) - 1
        if opening < first or text[opening] != style:
            return None
    elif style is None:
        opening = end - len(node.value)
    else:
        return None  # a block scalar (| or >)
    start = end - len(node.value)
    properties = text[first:opening]
    if properties and (properties[0] not in "&!" or properties[-1] not in " \t\r\n"):
        return None
    if start < first or text[start:end] != node.value:
        return None
    return start, end


def blank_json_comments(text: str) -> str:
    """``text`` with JSONC comments replaced by spaces (line breaks kept), so offsets and lines do not move."""
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    while i < n:
        char = text[i]
        if in_string:
            if char == "\\":
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
        elif char == '"':
            in_string = True
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] not in "\r\n":
                out[i] = " "
                i += 1
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            stop = n if close < 0 else close + 2
            for j in range(i, stop):
                if text[j] not in "\r\n":
                    out[j] = " "
            i = stop
        else:
            i += 1
    return "".join(out)

"""YAML loading that remembers where each value came from, so errors can name file and line.

libyaml (PyYAML's C parser) scans, parses and composes the file into nodes that carry their marks;
this module builds the values from those nodes itself, as LineDict / LineList that know the line
of each key and item. That keeps the C loader's speed (a 200,000-host inventory loads in a few
seconds, not minutes) and lets every value be checked as it is built, so hostile input is one
ConfigError naming the file and line, never an internal error, a hang or a memory blow-up:

- only YAML's core tags (null, bool, int, float, str, timestamp, binary, map, seq, merge) and
  Ansible's `!unsafe`; a value its tag cannot read (`!!bool maybe`, `2001-13-45`) is an error;
- nesting is at most MAX_DEPTH deep, and aliases may not expand the document beyond
  MAX_EXPANSION times its own size (the "billion laughs" of nested anchors);
- integers too long to print (Python refuses more than 4,300 digits) are refused;
- mapping keys are scalars; a date or binary key keeps the text it was written as.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from remoteenv import paths
from remoteenv.errors import ConfigError

# How deep a document may nest (libyaml itself stops at 1000; building stays within Python's stack).
MAX_DEPTH = 100
# Aliases may expand a document to MAX_EXPANSION times its own node count, or EXPANSION_FLOOR nodes.
MAX_EXPANSION = 10
EXPANSION_FLOOR = 1_000_000
# Python prints an int of at most 4,300 digits (sys.get_int_max_str_digits); keep well inside.
MAX_INT_BITS = 14_000

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE, _VALUE = (f"{_TAG}{t}" for t in ("str", "map", "seq", "merge", "value"))
_UNSAFE = "!unsafe"  # Ansible's marker for text it must not render: the value as written
# `=` and `<<` as values (not keys) are plain text, not the constructor errors PyYAML gives.
_TEXT_TAGS = {_STR, _UNSAFE, _VALUE, _MERGE}
_SCALAR_KINDS = {f"{_TAG}{t}": kind for t, kind in (
    ("null", "null"), ("bool", "boolean (true or false)"), ("int", "integer"), ("float", "number"),
    ("timestamp", "date"), ("binary", "base64 binary value"))}
_SCALAR_TAGS = set(_SCALAR_KINDS)
_KEY_TYPES = (str, int, float, bool, type(None))


class LineDict(dict):
    """A mapping from a YAML file; `line_of(key)` is the 1-based line of that key."""

    line: int = 0
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LineList(list):
    line: int = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


class _Builder:
    """Values from composed nodes. Each collection node is built once (aliases share the value),
    with its expanded size and depth, so limits are checked in time linear in the file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.loader = yaml.CSafeLoader("")  # only for its scalar constructors (int, float, dates, ...)
        self.built: dict[int, tuple[Any, int, int]] = {}  # id(node) -> (value, expanded size, depth)
        self.building: set[int] = set()
        self.distinct = 0

    def fail(self, node: yaml.Node, problem: str, hint: str | None = None) -> None:
        raise ConfigError(f"{self.source}:{node.start_mark.line + 1}: {problem}", hint)

    def build(self, node: yaml.Node, depth: int = 1) -> tuple[Any, int, int]:
        """(value, expanded size in nodes, expanded depth)."""
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node), 1, 1
        if depth > MAX_DEPTH:
            self.fail(node, f"nested more than {MAX_DEPTH} levels deep", "flatten the structure")
        key = id(node)
        if key in self.built:
            return self.built[key]
        if key in self.building:
            self.fail(node, "an alias refers to a value that contains it (a recursive alias)",
                      "an anchor's value cannot use its own alias")
        self.building.add(key)
        tag = node.tag
        if isinstance(node, yaml.MappingNode) and tag in (_MAP, _UNSAFE):
            done = self.mapping(node, depth)
        elif isinstance(node, yaml.SequenceNode) and tag in (_SEQ, _UNSAFE):
            done = self.sequence(node, depth)
        else:
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
            self.fail(node, f"YAML tag {_tag_name(tag)} is not supported on a {kind}",
                      "remove the tag (remoteenv reads plain YAML: maps, lists, text, numbers, booleans)")
        self.building.discard(key)
        self.distinct += 1
        self.built[key] = done
        return done

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag not in _SCALAR_TAGS:
            if tag in (_MAP, _SEQ):
                self.fail(node, f"YAML tag {_tag_name(tag)} does not fit the value {node.value!r}",
                          "remove the tag")
            self.fail(node, f"YAML tag {_tag_name(tag)} is not supported",
                      "remove the tag, or quote the value to keep it as text")
        try:
            value = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):
            self.fail(node, f"{node.value[:80]!r} is not a valid {_SCALAR_KINDS[tag]}",
                      "fix the value, or quote it to keep it as text")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.fail(node, "a number too long to use", "quote it to keep it as text")
        return value

    def key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, "a mapping key must be text or a number, not a list or mapping",
                      "write the key as plain text")
        key = self.scalar(node)
        return key if isinstance(key, _KEY_TYPES) else node.value  # dates, binary: as written

    def mapping(self, node: yaml.MappingNode, depth: int) -> tuple[LineDict, int, int]:
        result = LineDict()
        result.line = node.start_mark.line + 1
        lines: dict[Any, int] = {}
        result.lines = lines
        size, deepest = 1, 0
        pairs = node.value
        if any(k.tag == _MERGE for k, _ in pairs):
            size, deepest = self.merge(node, depth, result)
            pairs = [(k, v) for k, v in pairs if k.tag != _MERGE]
        own: set[Any] = set()
        for key_node, value_node in pairs:
            key = self.key(key_node)
            if key in own:
                self.fail(key_node, f"duplicate key {key!r}", "a key appears once in a mapping")
            own.add(key)
            value, vsize, vdepth = self.build(value_node, depth + 1)
            result[key] = value
            lines[key] = key_node.start_mark.line + 1
            size += vsize
            deepest = max(deepest, vdepth)
        return result, size, deepest + 1

    def merge(self, node: yaml.MappingNode, depth: int, into: LineDict) -> tuple[int, int]:
        """`<<: *defaults` (or a list of them, the first winning), as YAML 1.1's merge key."""
        sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for item in items:
                if not isinstance(item, yaml.MappingNode):
                    self.fail(item, "a merge key (<<) takes a mapping or a list of mappings",
                              "write <<: *anchor of a mapping")
                sources.append(item)
        size, deepest = 1, 0
        for source in sources:
            merged, msize, mdepth = self.build(source, depth)
            for key, value in merged.items():
                if key not in into:
                    into[key] = value
                    into.lines[key] = merged.line_of(key)
            size += msize
            deepest = max(deepest, mdepth - 1)
        return size, deepest

    def sequence(self, node: yaml.SequenceNode, depth: int) -> tuple[LineList, int, int]:
        result = LineList()
        result.line = node.start_mark.line + 1
        result.lines = [child.start_mark.line + 1 for child in node.value]
        size, deepest = 1, 0
        for child in node.value:
            value, vsize, vdepth = self.build(child, depth + 1)
            result.append(value)
            size += vsize
            deepest = max(deepest, vdepth)
        return result, size, deepest + 1


def _compose(text: str, source: str) -> yaml.Node | None:
    loader = yaml.CSafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        line = text.encode("utf-8", "surrogatepass")[: exc.position].count(b"\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
        raise ConfigError(f"{source}:{line}: unacceptable character U+{char:04X} ({exc.reason})",
                          "remove it: YAML allows no control characters") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join((exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"{source}{line}: {problem}", "fix the YAML syntax there") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {' '.join(str(exc).split())}", "fix the YAML syntax") from None
    finally:
        loader.dispose()


def load_text(text: str, source: str) -> Any:
    """Parse YAML text; any problem becomes a ConfigError naming `source` and the line."""
    root = _compose(text, source)
    if root is None:
        return None
    builder = _Builder(source)
    value, size, depth = builder.build(root)
    if depth > MAX_DEPTH:  # aliases nested inside aliases
        raise ConfigError(f"{source}: aliases nest this file more than {MAX_DEPTH} levels deep",
                          "use fewer nested aliases (*name) of anchors (&name)")
    if size > max(EXPANSION_FLOOR, MAX_EXPANSION * builder.distinct):
        raise ConfigError(f"{source}: aliases expand this file to {size:,} values, "
                          f"more than {MAX_EXPANSION} times its own size",
                          "use fewer nested aliases (*name) of anchors (&name)")
    return value


def load_file(path: Path, what: str = "YAML file") -> Any:
    return load_text(paths.read_text_file(path, what), str(path))


def kind_of(value: Any) -> str:
    """What a YAML value is, in the words of an error message ("a mapping", "a list", "str")."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def where(source: str, container: Any, key: Any = None) -> str:
    """`file:line` for a key of a mapping (or index of a list) loaded by this module."""
    if key is not None and hasattr(container, "line_of"):
        return f"{source}:{container.line_of(key)}"
    line = getattr(container, "line", 0)
    return f"{source}:{line}" if line else source

"""YAML loading that remembers where each value came from, so errors can name file and line.

libyaml (PyYAML's C parser) scans and parses the file into events that carry their marks; this
module builds the values from those events itself, as LineDict / LineList that know the line of
each key and item, without PyYAML's composer and its graph of nodes. That is faster than PyYAML's
own C loader and needs no more memory than the values, and every value is checked as it is built,
so hostile input is one ConfigError naming the file and line, never an internal error, a hang or
a memory blow-up:

- only YAML's core tags (null, bool, int, float, str, timestamp, binary, map, seq, merge) and
  Ansible's `!unsafe` and `!vault` (kept as `{"__ansible_vault": TEXT}`, as ansible-inventory shows
  it); a value its tag cannot read (`!!bool maybe`, `2001-13-45`) is an error;
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
_VAULT = "!vault"  # Ansible's inline encrypted value: kept as ansible-inventory shows it, never decrypted
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


class _Frame:
    """A mapping or list being built: its value, where it started, and what its items add up to."""

    __slots__ = ("anchor", "depth", "key", "key_line", "merges", "size", "value")

    def __init__(self, value: LineDict | LineList, anchor: str | None) -> None:
        self.value = value
        self.anchor = anchor
        self.size = 1  # nodes, aliases expanded
        self.depth = 0  # of the deepest item, aliases expanded
        self.key: Any = _NO_KEY  # a mapping's key waiting for its value
        self.key_line = 0
        self.merges: list[LineDict] | None = None  # `<<:` sources, the first winning


_NO_KEY = object()
_MERGE_KEY = object()


class _Builder:
    """Values straight from libyaml's events (no node graph is kept, so memory stays that of the
    values). Aliases share the value of their anchor; expanded size and depth are counted as the
    values are built, so every limit is checked in time linear in the file."""

    def __init__(self, source: str, loader: yaml.CSafeLoader) -> None:
        self.source = source
        self.loader = loader  # its resolver (implicit tags) and scalar constructors
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # anchor -> (value, expanded size, depth)
        self.stack: list[_Frame] = []
        self.distinct = 0
        self.resolved: dict[str, str] = {}  # plain scalar text -> its implicit tag

    def fail(self, at: Any, problem: str, hint: str | None = None) -> None:
        """`at`: a libyaml mark or a 1-based line."""
        line = at if isinstance(at, int) else at.line + 1
        raise ConfigError(f"{self.source}:{line}: {problem}", hint)

    def document(self) -> tuple[Any, int, int]:
        """The single document's (value, expanded size, depth); (None, 0, 0) for an empty stream."""
        loader = self.loader
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return None, 0, 0
        loader.get_event()  # DocumentStart
        result = self.node()
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            self.fail(loader.peek_event().start_mark, "more than one YAML document (---) in the file",
                      "keep one document")
        return result

    def node(self) -> tuple[Any, int, int]:
        """Build one node (with everything inside it) from the events; iterative, not recursive."""
        get = self.loader.get_event
        stack = self.stack
        while True:
            event = get()
            kind = type(event)
            line = event.start_mark.line + 1
            if kind is yaml.ScalarEvent:
                done = (self.scalar(event, stack[-1] if stack else None), 1, 1)
                self.distinct += 1
                if event.anchor:
                    self.anchors[event.anchor] = done
            elif kind is yaml.AliasEvent:
                done = self.alias(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                self.start(event, kind is yaml.MappingStartEvent)
                continue
            else:  # MappingEnd / SequenceEnd: the item's line is where it started
                frame = stack.pop()
                line = frame.value.line
                done = self.end(frame)
            if not stack:
                return done
            self.add(stack[-1], done, line)

    def start(self, event: Any, mapping: bool) -> None:
        if self.stack and self.stack[-1].key is _NO_KEY and isinstance(self.stack[-1].value, LineDict):
            self.fail(event.start_mark, "a mapping key must be text or a number, not a list or mapping",
                      "write the key as plain text")
        if len(self.stack) >= MAX_DEPTH:
            self.fail(event.start_mark, f"nested more than {MAX_DEPTH} levels deep", "flatten the structure")
        tag = event.tag
        if tag not in (None, "!", _UNSAFE, _MAP if mapping else _SEQ):
            self.fail(event.start_mark, f"YAML tag {_tag_name(tag)} is not supported on a "
                      f"{'mapping' if mapping else 'list'}",
                      "remove the tag (remoteenv reads plain YAML: maps, lists, text, numbers, booleans)")
        value: LineDict | LineList
        if mapping:
            value = LineDict()
            value.lines = {}
        else:
            value = LineList()
            value.lines = []
        value.line = event.start_mark.line + 1
        if event.anchor:
            self.anchors.pop(event.anchor, None)  # redefined: until it ends, an alias of it is recursive
        self.stack.append(_Frame(value, event.anchor))

    def end(self, frame: _Frame) -> tuple[Any, int, int]:
        value = frame.value
        if frame.merges:
            own = value
            value = LineDict()
            value.line, value.lines = own.line, {}
            for source in frame.merges:
                for key, item in source.items():
                    if key not in value and key not in own:
                        value[key] = item
                        value.lines[key] = source.line_of(key)
            value.update(own)
            value.lines.update(own.lines)
        done = (value, frame.size, frame.depth + 1)
        self.distinct += 1
        if frame.anchor:
            self.anchors[frame.anchor] = done
        return done

    def alias(self, event: Any) -> tuple[Any, int, int]:
        done = self.anchors.get(event.anchor)
        if done is None:
            if any(frame.anchor == event.anchor for frame in self.stack):
                self.fail(event.start_mark, "an alias refers to a value that contains it (a recursive alias)",
                          "an anchor's value cannot use its own alias")
            self.fail(event.start_mark, f"alias *{event.anchor} names no anchor (&{event.anchor}) before it")
        if len(self.stack) + done[2] > MAX_DEPTH:
            self.fail(event.start_mark, f"aliases nest this file more than {MAX_DEPTH} levels deep",
                      "use fewer nested aliases (*name) of anchors (&name)")
        return done

    def add(self, frame: _Frame, done: tuple[Any, int, int], line: int) -> None:
        value, size, depth = done
        container = frame.value
        if isinstance(container, LineList):
            container.append(value)
            container.lines.append(line)
        elif frame.key is _NO_KEY:
            if isinstance(value, (dict, list)):
                self.fail(line, "a mapping key must be text or a number, not a list or mapping",
                          "write the key as plain text")
            if value is not _MERGE_KEY and value in container:
                self.fail(line, f"duplicate key {value!r}", "a key appears once in a mapping")
            frame.key, frame.key_line = value, line
            return
        elif frame.key is _MERGE_KEY:
            sources = value if isinstance(value, LineList) else [value]
            if not all(isinstance(source, LineDict) for source in sources):
                self.fail(line, "a merge key (<<) takes a mapping or a list of mappings",
                          "write <<: *anchor of a mapping")
            frame.merges = (frame.merges or []) + list(sources)
            frame.key = _NO_KEY
        else:
            container[frame.key] = value
            container.lines[frame.key] = frame.key_line
            frame.key = _NO_KEY
        frame.size += size
        frame.depth = max(frame.depth, depth)

    def scalar(self, event: Any, parent: _Frame | None) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                tag = _STR  # quoted: text
            else:
                tag = self.resolved.get(value)
                if tag is None:
                    tag = self.loader.resolve(yaml.ScalarNode, value, event.implicit)
                    if len(self.resolved) < 100_000:
                        self.resolved[value] = tag
        if tag == _MERGE and parent is not None and parent.key is _NO_KEY and isinstance(parent.value, LineDict):
            return _MERGE_KEY
        if tag in _TEXT_TAGS:
            return value
        if tag == _VAULT:
            return {"__ansible_vault": value}
        if tag not in _SCALAR_TAGS:
            if tag in (_MAP, _SEQ):
                self.fail(event.start_mark, f"YAML tag {_tag_name(tag)} does not fit the value {value[:80]!r}",
                          "remove the tag")
            self.fail(event.start_mark, f"YAML tag {_tag_name(tag)} is not supported",
                      "remove the tag, or quote the value to keep it as text")
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
        try:
            built = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):
            self.fail(event.start_mark, f"{value[:80]!r} is not a valid {_SCALAR_KINDS[tag]}",
                      "fix the value, or quote it to keep it as text")
        if isinstance(built, int) and built.bit_length() > MAX_INT_BITS:
            self.fail(event.start_mark, "a number too long to use", "quote it to keep it as text")
        if parent is not None and parent.key is _NO_KEY and isinstance(parent.value, LineDict) \
                and not isinstance(built, _KEY_TYPES):
            return value  # a date or binary key: as written
        return built


def load_text(text: str, source: str) -> Any:
    """Parse YAML text; any problem becomes a ConfigError naming `source` and the line."""
    loader = yaml.CSafeLoader(text)
    try:
        builder = _Builder(source, loader)
        value, size, _ = builder.document()
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

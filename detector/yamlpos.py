"""YAML read once into data and its node tree, so an error found in the data can name its line and column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based, as editors count
    column: int


@dataclass(frozen=True, slots=True)
class Document:
    data: Any
    root: Node | None

    def position(self, loc: Sequence[Any], key: bool = False) -> Position | None:
        """Where `loc` (a pydantic error location) is written: its value, or with `key` its key.

        Parts the document does not have are skipped, so a missing field points at the mapping
        that lacks it and a union tag (`http_json`) in the location changes nothing.
        """
        found = self._walk(loc)
        if found is None:
            return None
        node, key_node = found
        mark = (key_node if key and key_node is not None else node).start_mark
        return Position(mark.line + 1, mark.column + 1)

    def has(self, loc: Sequence[Any]) -> bool:
        """Every part of `loc` is written in the document."""
        node = self.root
        for part in loc:
            step = _step(node, part)
            if step is None:
                return False
            node = step[0]
        return node is not None

    def _walk(self, loc: Sequence[Any]) -> tuple[Node, Node | None] | None:
        if self.root is None:
            return None
        node, key_node = self.root, None
        for part in loc:
            step = _step(node, part)
            if step is not None:
                node, key_node = step
        return node, key_node


def _step(node: Node | None, part: Any) -> tuple[Node, Node | None] | None:
    if isinstance(node, MappingNode):
        # the last of duplicate keys wins, as in the constructed data
        for k, v in reversed(node.value):
            if isinstance(k, ScalarNode) and k.value == str(part):
                return v, k
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], None
    return None


def parse(text: str) -> Document:
    """One parse: the node tree and the data built from it (safe types only).

    Raises:
        yaml.YAMLError: not YAML; a `MarkedYAMLError` carries the position in `problem_mark`.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return Document(data, root)

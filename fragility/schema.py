"""The config schema (``config.schema.yaml``, package data) and how to read it: loading and
following its local ``$ref``s. Only PyYAML: the config validation and the generated
configuration reference both read the schema through here."""

from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")  # package data: a plain install validates too


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def resolve(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/definitions/name``, ``#/$defs/name``) followed,
    the referring node's own keys (a description, a default) kept over the target's."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node

"""The documentation: the config reference is generated from the schema and cannot drift,
it names every key, the README stays short, and every relative link resolves."""

import re
from pathlib import Path

import pytest
import yaml

from fragility import schema_docs

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
SCHEMA = ROOT / "fragility" / "config.schema.yaml"
# Files the docs link to that a workflow run draws (docs/figures/ is filled from results/):
# a missing one is skipped with its reason, never reported as a broken link.
EXPECTED_GENERATED = {"docs/figures/verdict.png"}
LINKED_DOCS = [
    "README.md",
    "CHANGELOG.md",
    "config/README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REGENERATE = "run `python -m fragility.schema_docs --write` (from the repository root) and commit docs/configuration.md"


def schema():
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def resolve(node, root):
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def schema_keys(node, root, prefix=""):
    """(dotted key, is_leaf) of every key of nested mappings, and ("name", True) of every key
    of a mapping that list items may be (``datasets``: ``imagefolder``, ``npz``, ...)."""
    for name, sub in resolve(node, root).get("properties", {}).items():
        key, sub = f"{prefix}{name}", resolve(sub, root)
        nested = bool(sub.get("properties"))
        yield key, not nested
        if nested:
            yield from schema_keys(sub, root, key + ".")
        items = resolve(sub.get("items", {}), root)
        for branch in [resolve(b, root) for b in items.get("oneOf", []) + items.get("anyOf", [])] + [items]:
            for item_key in branch.get("properties", {}):
                yield item_key, True


def test_configuration_md_is_the_generators_output():
    if not CONFIGURATION.exists():
        pytest.fail(f"docs/configuration.md is missing: {REGENERATE}")
    written = CONFIGURATION.read_text(encoding="utf-8")
    generated = schema_docs.render()
    if written != generated:
        lines = list(zip(written.splitlines(), generated.splitlines()))
        first = next((i for i, (a, b) in enumerate(lines) if a != b), len(lines))
        pytest.fail(f"docs/configuration.md differs from the schema's reference (from line {first + 1}): {REGENERATE}")


def test_generator_is_deterministic():
    assert schema_docs.render() == schema_docs.render()


def test_every_schema_key_is_documented():
    root = schema()
    text = schema_docs.render(root)
    keys = list(schema_keys(root, root))
    assert keys, "the schema has no keys"
    missing = [key for key, _ in keys if f"`{key}`" not in text]
    assert not missing, f"keys of the schema missing from the generated reference: {missing}"
    for key in root["properties"]:
        assert f"\n## `{key}`\n" in text, f"top-level key {key} has no section of its own"
    for key, leaf in keys:
        if leaf and "." in key:
            assert f"\n### `{key}`\n" in text, f"key {key} has no section of its own"


def test_notes_name_keys_of_the_schema():
    root = schema()
    known = {key for key, _ in schema_keys(root, root)}
    assert not set(schema_docs.NOTES) - known, "notes for keys the schema no longer has"


def test_generator_follows_a_new_key():
    root = schema()
    root["properties"]["sweep"]["properties"]["new_knob"] = {
        "description": "A knob added later.",
        "type": "integer",
        "minimum": 3,
        "maximum": 9,
        "default": 4,
    }
    root["properties"]["per_model_thing"] = {
        "description": "A per-model setting.",
        "type": "object",
        "required": ["default"],
        "additionalProperties": {"enum": ["on", "off"]},
        "default": {"default": "on"},
    }
    text = schema_docs.render(root)
    section = text.split("### `sweep.new_knob`", 1)[1].split("\n#", 1)[0]
    for fact in ("A knob added later.", "- type: integer", "- minimum: `3`", "- maximum: `9`", "- default: `4`"):
        assert fact in section
    section = text.split("## `per_model_thing`", 1)[1].split("\n#", 1)[0]
    assert "per-model mapping" in section and "`on`, `off`" in section and "`{default: on}`" in section


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    head = "\n".join(lines[:40])
    assert "make run" in head and "make test" in head


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def without_code(text):
    """``text`` without fenced code blocks and with inline code emptied."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "`code`", text)


def anchors(path):
    found, seen = set(), {}
    for line in re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            found.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return found


def relative_links():
    """(document, link, target path relative to the root, anchor) of every relative link."""
    for doc in LINKED_DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        for link in LINK.findall(without_code(path.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):  # http:, https:, mailto:
                continue
            target, _, fragment = link.partition("#")
            resolved = (path.parent / target).resolve() if target else path
            yield doc, link, resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved), fragment


def test_every_relative_link_resolves():
    broken = []
    for doc, link, target, fragment in relative_links():
        if target in EXPECTED_GENERATED:
            continue
        path = ROOT / target
        if not path.exists():
            broken.append(f"{doc}: {link} (no {target})")
        elif fragment and path.suffix == ".md" and fragment.lower() not in anchors(path):
            broken.append(f"{doc}: {link} (no heading #{fragment} in {target})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_links_are_found():
    links = {(doc, target) for doc, _, target, _ in relative_links()}
    assert ("README.md", "docs/configuration.md") in links
    assert ("README.md", "docs/figures/verdict.png") in links


@pytest.mark.parametrize("target", sorted(EXPECTED_GENERATED))
def test_expected_generated_file(target):
    if not (ROOT / target).exists():
        pytest.skip(f"{target} is not there yet: a workflow run draws it (the README links to it)")
    assert (ROOT / target).stat().st_size > 0


def test_the_paper_symbols_are_used_everywhere_a_reader_looks():
    """METHOD §4: r_x (Eq. 14), r_xε (Eq. 15), r_ε (Eq. 16). The old names — Δr for Eq. 16, r_ε
    for Eq. 15 — would make a reader with the paper beside a figure read the wrong quantity."""
    from fragility.figures import FIGURES

    texts = {f"caption of {name}": spec.caption for name, spec in FIGURES.items()}
    texts |= {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    }
    texts |= {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in (ROOT / "fragility").rglob("*.py")}
    for where, text in texts.items():
        assert "Δr" not in text, f"{where} names Eq. 16 Δr: it is r_ε"
        assert "clean score r " not in text and "clean score r," not in text, f"{where}: the clean score is r_x"
    from fragility.plots import SCORES

    assert SCORES == {"score_clean": "clean r_x", "score_adv": "adversarial r_xε", "score_diff": "difference r_ε"}

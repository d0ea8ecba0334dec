"""Write the configuration reference from the settings models: ``python -m cloudwatcher.config.reference``.

The README's settings table, the tables of docs/configuration.md and the example
configuration are generated (``make docs``) rather than written by hand, because the hand
copies drifted from the models: a key's default or meaning lives once, on its ``Field``. The
markdown tables replace what lies between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
markers, so the prose around them stays hand-written. ``--check`` writes nothing and exits 1
naming the files that differ (the drift test runs the same comparison).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudwatcher.config.catalog import REQUIRED, Catalog, Computed, Key, catalog, toml_literal
from cloudwatcher.config.example import example_toml
from cloudwatcher.config.settings import Settings

REPOSITORY = Path(__file__).resolve().parents[2]
FIX_COMMAND = "make docs"


def default_cell(default: Any) -> str:
    """How the tables show a default: required, unset, a computed default in words, or the value."""
    if default is REQUIRED:
        return "required"
    if default is None:
        return "unset"
    if isinstance(default, Computed):
        return default.text
    if isinstance(default, str) and default:
        return f"`{default}`"
    return f"`{toml_literal(default)}`"


def table(keys: tuple[Key, ...], *, dotted: bool = True) -> str:
    """A markdown table of ``keys``: key, default, meaning."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key in keys:
        name = key.path if dotted else key.name
        cells = [f"`{name}`", default_cell(key.default), key.description]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def settings_table(found: Catalog) -> str:
    """Every top-level and section key, dotted (``retry.max_attempts``); the target keys have their own tables."""
    return table(found.keys)


def target_tables(found: Catalog) -> str:
    """The keys every target takes, then a table per kind of target with its own keys."""
    parts = ["Every target takes:", "", table(found.common, dotted=False)]
    for kind in found.kinds:
        heading = f'### `{found.tag_key} = "{kind.tag}"`' if found.tag_key else f"### `{kind.tag}`"
        parts += ["", heading, ""]
        if kind.doc:
            parts += [kind.doc, ""]
        parts.append(table(kind.keys, dotted=False) if kind.keys else "No keys of its own.")
    return "\n".join(parts)


# Each generated file: its path in the repository and how its new text is made from the old one.
Generator = Callable[[str, Catalog], str]


def replace_region(text: str, name: str, content: str) -> str:
    """``text`` with what lies between the ``name`` markers replaced by ``content``."""
    pattern = re.compile(rf"(<!-- {re.escape(name)}:start -->\n).*?(\n<!-- {re.escape(name)}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers <!-- {name}:start --> / <!-- {name}:end --> not found")
    return pattern.sub(lambda match: match.group(1) + content + match.group(2), text, count=1)


def _readme(text: str, found: Catalog) -> str:
    return replace_region(text, "settings-table", settings_table(found))


def _configuration_page(text: str, found: Catalog) -> str:
    text = replace_region(text, "settings-table", settings_table(found))
    return replace_region(text, "target-tables", target_tables(found))


def _example(_text: str, found: Catalog) -> str:
    return example_toml(found)


GENERATED: dict[str, Generator] = {
    "README.md": _readme,
    "docs/configuration.md": _configuration_page,
    "systemd/cloudwatcher.toml.example": _example,
}


def expected_files(root: Path = REPOSITORY) -> dict[Path, str]:
    """Each generated file and the text the models call for."""
    found = catalog(Settings)
    return {root / name: generate((root / name).read_text(), found) for name, generate in GENERATED.items()}


def stale_files(root: Path = REPOSITORY) -> list[Path]:
    """The generated files whose committed text differs from what the models call for."""
    return [path for path, text in expected_files(root).items() if path.read_text() != text]


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """Write the generated files under ``root`` (the checkout), or with ``--check`` only name the stale ones."""
    arguments = sys.argv[1:] if argv is None else argv
    root = REPOSITORY if root is None else root
    if arguments not in ([], ["--check"]):
        print("usage: python -m cloudwatcher.config.reference [--check]", file=sys.stderr)
        return 2
    if not all((root / name).is_file() for name in GENERATED):
        print(f"not a source checkout: {root} lacks the generated files", file=sys.stderr)
        return 2
    if arguments == ["--check"]:
        stale = stale_files(root)
        for path in stale:
            print(f"{path.relative_to(root)} is out of date: run `{FIX_COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files(root).items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

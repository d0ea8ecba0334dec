"""The repository carries its own documentation: nothing points outside it, and README's links resolve.

Comments and docs once cited two files that lived outside the repository; a reader of a clone
could not follow those references. The rules they held are now in ``docs/``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

# Spelled in pieces so that this file does not match its own check.
OUTSIDE_DOCUMENTS = ("CONTRACT" + ".md", "API-NOTES" + ".md", "API-NOTES" + " ", "CONTRACT" + " §")

DOCS_LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)")


def repository_files() -> list[Path]:
    """Every file git knows of or would add (tracked, plus untracked not ignored), so .venv stays out."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [REPOSITORY / name for name in listed.split("\0") if name and (REPOSITORY / name).is_file()]


def mentions_outside_document(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [name for name in OUTSIDE_DOCUMENTS if name in text]


def test_no_file_in_the_repository_cites_a_document_outside_it() -> None:
    files = repository_files()
    assert any(path.name == "README.md" for path in files)
    offenders = {
        str(path.relative_to(REPOSITORY)): names for path in files if (names := mentions_outside_document(path))
    }
    assert offenders == {}


def test_the_check_catches_a_file_that_cites_an_outside_document(tmp_path: Path) -> None:
    citing = tmp_path / "module.py"
    citing.write_text('"""Behaves as ' + "CONTRACT" + '.md section 5 says."""\n')
    assert mentions_outside_document(citing) == [OUTSIDE_DOCUMENTS[0]]


def test_every_docs_link_in_the_readme_points_to_an_existing_page() -> None:
    links = DOCS_LINK.findall((REPOSITORY / "README.md").read_text())
    assert links, "README.md links no page under docs/"
    missing = [link for link in links if not (REPOSITORY / link).is_file()]
    assert missing == []


def test_the_readme_links_every_page_under_docs() -> None:
    linked = set(DOCS_LINK.findall((REPOSITORY / "README.md").read_text()))
    pages = {f"docs/{page.name}" for page in (REPOSITORY / "docs").glob("*.md")}
    assert pages <= linked


def setting_keys() -> set[str]:
    """Every configuration key the settings models accept, nested ones dotted (``retry.max_attempts``)."""
    from pydantic import BaseModel

    from cloudwatcher.config.settings import GoogleDriveTarget, LocalTarget, S3Target, Settings, SharePointTarget

    keys: set[str] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= {f"{name}.{nested}" for nested in annotation.model_fields}
        else:
            keys.add(name)
    for target in (LocalTarget, SharePointTarget, GoogleDriveTarget, S3Target):
        keys |= set(target.model_fields)
    return keys


def test_the_configuration_page_describes_every_setting() -> None:
    page = (REPOSITORY / "docs" / "configuration.md").read_text()
    keys = setting_keys()
    assert "retry.max_attempts" in keys and "bucket" in keys
    assert sorted(key for key in keys if f"`{key}`" not in page) == []

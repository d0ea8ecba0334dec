"""The configuration reference is generated from the models, complete, and committed up to date."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from cloudwatcher.config.catalog import REQUIRED, Computed, catalog, toml_literal
from cloudwatcher.config.example import example_toml
from cloudwatcher.config.reference import (
    FIX_COMMAND,
    GENERATED,
    REPOSITORY,
    main,
    replace_region,
    stale_files,
    target_tables,
)
from cloudwatcher.config.settings import Settings
from cloudwatcher.providers.registry import PROVIDERS


def test_the_committed_reference_matches_the_models() -> None:
    stale = [str(path.relative_to(REPOSITORY)) for path in stale_files()]
    assert stale == [], f"generated from the settings models and out of date: {stale}; run `{FIX_COMMAND}`"


def copy_of_the_generated_files(root: Path) -> None:
    for name in GENERATED:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / name, root / name)


def test_the_drift_check_notices_an_edited_table(tmp_path: Path) -> None:
    copy_of_the_generated_files(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("| `upload_concurrency` | `4` |", "| `upload_concurrency` | `8` |"))
    assert stale_files(tmp_path) == [readme]


def test_the_command_names_a_stale_file_and_regenerates_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_of_the_generated_files(tmp_path)
    example = tmp_path / "systemd" / "cloudwatcher.toml.example"
    example.write_text(example.read_text().replace("upload_concurrency = 4", "upload_concurrency = 8"))
    assert main(["--check"], tmp_path) == 1
    assert capsys.readouterr().err == f"systemd/cloudwatcher.toml.example is out of date: run `{FIX_COMMAND}`\n"
    assert main([], tmp_path) == 0
    assert "upload_concurrency = 4" in example.read_text()
    assert main(["--check"], tmp_path) == 0
    assert main(["--check"], tmp_path / "elsewhere") == 2


def test_every_core_key_has_a_description() -> None:
    found = catalog(Settings)
    undescribed = [key.path for key in found.keys if not key.description.strip()]
    assert undescribed == []
    assert all(section.description for section in found.sections[1:])


def test_every_provider_the_registry_knows_gets_a_table() -> None:
    found = catalog(Settings)
    assert found.list_key == "targets" and found.tag_key == "provider"
    assert [kind.tag for kind in found.kinds] == list(PROVIDERS)
    page = (REPOSITORY / "docs" / "configuration.md").read_text()
    assert all(f'### `provider = "{tag}"`' in page for tag in PROVIDERS)


def test_defaults_are_read_from_the_models() -> None:
    found = catalog(Settings)
    by_path = {key.path: key for key in found.keys}
    assert by_path["upload_concurrency"].default == 4
    assert by_path["retry.max_attempts"].default == 10
    assert by_path["watch_root"].default is None
    assert isinstance(by_path["state_dir"].default, Computed)
    assert "$STATE_DIRECTORY" in by_path["state_dir"].default.text
    assert {key.name: key.default for key in found.common}["include"] == []
    drive = next(kind for kind in found.kinds if kind.tag == "google-drive")
    assert {key.name: key.default for key in drive.keys}["requests_per_second"] == 10  # Drive's own default
    assert {key.name: key.default for key in drive.keys}["folder_id"] is REQUIRED


class _Base(BaseModel):
    name: str = Field(description="The name.")
    pace: float | None = Field(default=None, description="The pace; unset means unlimited.")


class _Ftp(_Base):
    kind: Literal["ftp"]
    host: str = Field(description="The server.")


class _Tape(_Base):
    """Writes to tape."""

    kind: Literal["tape"]
    pace: float | None = 2.0


class _Made(BaseModel):
    level: int = Field(default=3, description="How loud.")
    sinks: list[Annotated[_Ftp | _Tape, Field(discriminator="kind")]] | None = Field(
        default=None, description="Where things go."
    )


def test_the_walk_finds_any_tagged_union_and_the_defaults_a_kind_changes() -> None:
    found = catalog(_Made)
    assert (found.list_key, found.tag_key) == ("sinks", "kind")
    assert [key.name for key in found.common] == ["name", "kind", "pace"]
    ftp, tape = found.kinds
    assert [key.name for key in ftp.keys] == ["host"]
    assert [(key.name, key.default, key.description) for key in tape.keys] == [
        ("pace", 2.0, "The pace; unset means unlimited.")
    ]
    assert tape.doc == "Writes to tape."
    example = tomllib.loads(example_toml(found).replace("#[[sinks]]", "[[sinks]]").replace("\n#host", "\nhost"))
    assert example["level"] == 3


class _TaggedBase(BaseModel):
    kind: str = Field(description="Which sink.")
    name: str = Field(description="The name.")


class _Disk(_TaggedBase):
    kind: Literal["disk"] = Field(description="A disk.")
    path: str = Field(description="The folder.")


class _Null(_TaggedBase):
    kind: Literal["null"]


class _MadeWithTaggedBase(BaseModel):
    sinks: list[Annotated[_Disk | _Null, Field(discriminator="kind")]] = Field(description="Where things go.")


def test_a_tag_the_base_declares_is_listed_once_with_the_kinds() -> None:
    found = catalog(_MadeWithTaggedBase)
    assert [(key.name, key.description) for key in found.common] == [
        ("kind", "Which sink: one of `disk`, `null`; each kind's own keys are listed under it."),
        ("name", "The name."),
    ]
    assert [[key.name for key in kind.keys] for kind in found.kinds] == [["path"], []]
    assert "No keys of its own." in target_tables(found)


def test_toml_literals_round_trip() -> None:
    values = {"text": 'a "quoted" \\ path', "whole": 300.0, "half": 0.5, "flag": True, "globs": ["**/*.jpg"]}
    text = "\n".join(f"{name} = {toml_literal(value)}" for name, value in values.items())
    assert tomllib.loads(text) == values


def test_a_file_without_its_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="settings-table:start"):
        replace_region("no markers here\n", "settings-table", "| table |")
    assert replace_region("a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n", "t", "new") == (
        "a\n<!-- t:start -->\nnew\n<!-- t:end -->\nb\n"
    )

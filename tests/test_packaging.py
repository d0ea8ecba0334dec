"""What the installed package declares: everything its commands import at run time."""

from __future__ import annotations

from importlib.metadata import requires

from packaging.requirements import Requirement


def declared_dependencies() -> set[str]:
    return {Requirement(line).name.lower() for line in requires("cloudwatcher") or [] if "extra ==" not in line}


def test_loading_yaml_reference_data_needs_no_undeclared_package() -> None:
    assert "pyyaml" in declared_dependencies()

"""Package exports imported on first use (PEP 562), so that a provider's package stays SDK-free.

``cloudwatcher.providers.<name>`` re-exports its provider class and constants for callers'
convenience; imported eagerly, those would load the provider's SDK whenever anything in the
package is imported, the SDK-free ``config`` module included, which the settings need on every
machine, with or without the optional extras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name in ``exports`` comes from the submodule named there."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__

"""SharePoint's naming rule (the table in the package docstring)."""

from __future__ import annotations

import re

MAX_PATH_LENGTH = 400


_FULLWIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in '"*:<>?\\|'})
_DEVICE_NAMES = {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}
_VTI = re.compile("_vti_", re.IGNORECASE)


def sanitize_segment(name: str) -> str:
    """One path segment as SharePoint will accept it (the table in the package docstring)."""
    name = name.translate(_FULLWIDTH)
    stripped = name.strip(" ")
    if stripped != name:
        lead = len(name) - len(name.lstrip(" "))
        trail = len(name) - len(name.rstrip(" "))
        name = "\u2420" * lead + stripped + "\u2420" * trail
    if name.endswith("."):
        name = name[:-1] + "\uff0e"
    if name.startswith("~$"):
        name = "_" + name
    name = _VTI.sub("_vti\uff3f", name)
    stem, dot, extension = name.partition(".")
    if stem.lower() in _DEVICE_NAMES:
        name = f"{stem}_{dot}{extension}"
    elif name.lower() in (".lock", "desktop.ini"):
        name += "_"
    return name

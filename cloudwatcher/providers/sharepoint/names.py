"""SharePoint's naming rule (the table in the package docstring) and the types it rewrites on upload."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

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


# ----------------------------------------------------------------------------------- server rewrites

#: What SharePoint document libraries rewrite on upload: Office documents (property promotion,
#: co-authoring metadata), PDF and HTML, and images whose metadata it touches. The stored copy's
#: size and quickXorHash then differ from the bytes sent, and differ again on every upload.
SERVER_REWRITTEN_TYPES = frozenset(
    {".doc", ".docx", ".docm", ".dotx", ".xls", ".xlsx", ".xlsm", ".xltx", ".ppt", ".pptx", ".pptm", ".potx"}
    | {".vsdx", ".one", ".pdf", ".htm", ".html", ".aspx", ".mht", ".mhtml"}
    | {".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".heic", ".heif", ".webp"}
)


def rewritten_by_server(name: str, stored_size: int | None, sent_size: int) -> bool:
    """Whether a hash mismatch after an acknowledged upload is SharePoint's own rewrite.

    A changed size cannot come from the transfer (the session acknowledged every byte of the
    declared total), so it is the library's doing; a type SharePoint is known to rewrite may
    also keep its size. A same-size mismatch on any other file is corruption: an error.
    """
    if stored_size is not None and stored_size != sent_size:
        return True
    return PurePosixPath(name).suffix.lower() in SERVER_REWRITTEN_TYPES

"""Per-target include/exclude globs (docs/configuration.md, Target settings).

Python 3.11's fnmatch lets ``*`` cross folder boundaries and has no ``**``; ``glob.translate``
arrives only in 3.13. The contract needs ``*`` within one folder and ``**`` across folders,
case-sensitive, so we compile the pattern to a regular expression here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")  # zero or more whole folders
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z")


def target_takes(local_path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when ``local_path`` matches an include (or there is none) and no exclude."""
    if include and not any(compile_glob(p).match(local_path) for p in include):
        return False
    return not any(compile_glob(p).match(local_path) for p in exclude)

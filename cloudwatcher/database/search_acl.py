"""Give one account search (``x``) permission on a folder through a POSIX ACL entry.

Why: as root, the embedded server runs as ``postgres`` and must reach its data folder, which
by default lies under ``/root`` (mode 0700). Opening the parents to everyone (``chmod o+x``)
would let every account on the machine walk in; a named-user ACL entry lets ``postgres`` in
and nobody else. The ACL is written as the kernel's ``system.posix_acl_access`` extended
attribute: the maintained Python binding (pylibacl) needs libacl's headers to build, and the
format is small and stable (``acl_ea.h``: a version word, then sorted (tag, perm, id) entries).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

_XATTR = "system.posix_acl_access"
_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_SEARCH = 0x1


def _entries_from_mode(mode: int) -> dict[tuple[int, int], int]:
    return {
        (_USER_OBJ, _UNDEFINED_ID): (mode >> 6) & 7,
        (_GROUP_OBJ, _UNDEFINED_ID): (mode >> 3) & 7,
        (_OTHER, _UNDEFINED_ID): mode & 7,
    }


def _read(path: Path) -> dict[tuple[int, int], int]:
    try:
        blob = os.getxattr(path, _XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return _entries_from_mode(os.lstat(path).st_mode)
        raise
    entries: dict[tuple[int, int], int] = {}
    for offset in range(_HEADER.size, len(blob), _ENTRY.size):
        tag, perm, ident = _ENTRY.unpack_from(blob, offset)
        entries[(tag, ident)] = perm
    return entries


def _write(path: Path, entries: dict[tuple[int, int], int]) -> None:
    # As setfacl does: the mask becomes the union of the group-class entries' permissions.
    mask = entries[(_GROUP_OBJ, _UNDEFINED_ID)]
    for (tag, _), perm in entries.items():
        if tag in (_USER, _GROUP):
            mask |= perm
    entries[(_MASK, _UNDEFINED_ID)] = mask
    blob = _HEADER.pack(_VERSION) + b"".join(
        _ENTRY.pack(tag, perm, ident) for (tag, ident), perm in sorted(entries.items())
    )
    os.setxattr(path, _XATTR, blob, follow_symlinks=False)


def can_search(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (in groups ``gids``) may pass through folder ``path`` by mode or ACL."""
    info = os.lstat(path)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    entries = _read(path)
    mask = entries.get((_MASK, _UNDEFINED_ID), 7)
    if (_USER, uid) in entries:
        return bool(entries[(_USER, uid)] & mask & _SEARCH)
    groups = [entries[(_GROUP_OBJ, _UNDEFINED_ID)] & mask] if info.st_gid in gids else []
    groups += [perm & mask for (tag, ident), perm in entries.items() if tag == _GROUP and ident in gids]
    if groups:
        return any(perm & _SEARCH for perm in groups)
    return bool(info.st_mode & stat.S_IXOTH)


def grant_search(path: Path, uid: int) -> None:
    """Add (or widen) the named-user entry ``u:<uid>:x`` on folder ``path``; nothing else changes."""
    entries = _read(path)
    entries[(_USER, uid)] = entries.get((_USER, uid), 0) | _SEARCH
    _write(path, entries)

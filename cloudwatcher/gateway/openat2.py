"""``openat2(2)`` through ctypes, with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS``.

Python's standard library has neither ``openat2`` nor the ``RESOLVE_*`` flags, and the one
binding on PyPI (``pathrs``) needs the libpathrs shared library installed on the host, which
distributions do not ship; the system call is a few lines of ctypes. Kept apart from the
gateway's logic so that the foreign-function details (argument types, the ``open_how``
structure, ``EAGAIN`` retries) are read and reviewed on their own.

:data:`HAS_OPENAT2` is False on kernels before 5.6 and under seccomp filters that answer
``ENOSYS``; the gateway then walks a path one ``openat`` per component instead.
"""

from __future__ import annotations

import ctypes
import errno
import os

__all__ = ["HAS_OPENAT2", "kernel_has_openat2", "openat2"]

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_SYS_OPENAT2 = 437  # the same number on every Linux architecture (new system calls share one table)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
# syscall(2) is variadic; declaring the types of the four arguments this call passes lets ctypes
# take plain ints and bytes (building ctypes objects per call cost more than the system call).
# Integer and pointer arguments travel the same way through a variadic call on Linux's ABIs.
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_HOW_SIZE = ctypes.sizeof(_OpenHow)
_hows: dict[int, tuple[_OpenHow, int]] = {}  # flags -> (open_how, its address): a handful of flag sets


def openat2(dirfd: int, relative: bytes, flags: int, mode: int = 0) -> int:
    """``openat2(dirfd, relative, {flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS})``."""
    key = flags if not mode else -1
    found = _hows.get(key)
    if found is None:
        how = _OpenHow(flags, mode, _RESOLVE)
        found = (how, ctypes.addressof(how))
        if key != -1:
            _hows[key] = found
    for _ in range(8):  # EAGAIN: a concurrent rename somewhere made the kernel unsure; ask again
        fd = _syscall(_SYS_OPENAT2, dirfd, relative, found[1], _HOW_SIZE)
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code != errno.EAGAIN:
            raise OSError(code, os.strerror(code), os.fsdecode(relative))
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), os.fsdecode(relative))


def kernel_has_openat2() -> bool:
    """True when ``openat2`` works here (any answer but "not implemented" or "not allowed")."""
    try:
        os.close(openat2(-100, b".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))  # -100: AT_FDCWD
    except OSError as exc:
        return exc.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG)
    return True


HAS_OPENAT2 = kernel_has_openat2()

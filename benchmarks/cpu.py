"""CPU seconds spent by the daemon and by its embedded PostgreSQL, read from ``/proc``.

Hand-written rather than psutil: the benchmarks need two numbers from ``/proc/<pid>/stat``
(utime+stime, plus cutime+cstime so that backends that exited during the burst still count,
their time having been folded into the postmaster when it reaped them), and psutil is not a
dependency of the project.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name; None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or ')': split after the last one.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, reaped_children: bool = True) -> float:
    """utime+stime of ``pid`` (all its threads), plus its reaped children's when asked."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS_PER_SECOND


def _parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None else None


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster serving ``data_dir``: the process whose command line names that directory."""
    wanted = str(data_dir.absolute()).encode()
    for pid in _pids():
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in arguments and _parent_of(pid) is not None:
            program = os.path.basename(arguments[0].decode(errors="replace"))
            if program in ("postgres", "postmaster"):
                return pid
    return None


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU of the embedded server: its postmaster, its live children, and the children it reaped."""
    postmaster = postmaster_pid(data_dir)
    if postmaster is None:
        return 0.0
    children = [pid for pid in _pids() if _parent_of(pid) == postmaster]
    # A live child's own reaped children do not exist (backends do not fork), so only the
    # postmaster's cutime/cstime is needed; count the children's own utime+stime alone.
    return cpu_seconds(postmaster) + sum(cpu_seconds(pid, reaped_children=False) for pid in children)

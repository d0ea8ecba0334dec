"""``cloudwatcher status`` for people: the status snapshot as plain lines that fit the terminal.

Wide tables cut names once a terminal is 80 columns and a target or device name is long, so
each entry is a short record instead: its name first, whole, then its facts flowed onto as
many indented lines as they need. Names fit by construction (device ids are at most 50
characters, target names at most 63); only free text (paths, error messages) is wrapped.
Times are ages ("3 s ago") or countdowns ("in 5 s"), which people read faster than stamps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime

from rich.cells import cell_len

from cloudwatcher.daemon.ops.status import StatusSnapshot, TargetStatus

__all__ = ["age", "printable", "render_status"]

_INDENT = "  "
_MORE = "    "


def age(stamp: str | None, now: datetime) -> str:
    """``"3 s ago"``, ``"12 min ago"``, ``"5 h ago"``, ``"2 d ago"``; a future time as ``"in 3 s"``."""
    if stamp is None:
        return "never"
    seconds = (now - datetime.fromisoformat(stamp)).total_seconds()
    amount = _duration(abs(seconds))
    return f"{amount} ago" if seconds >= 0 else f"in {amount}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def printable(text: str) -> str:
    """``text`` with control characters, lone surrogates and the like shown as escapes.

    Paths come from devices: a file name may hold a newline, a terminal escape sequence or
    bytes that are not UTF-8 (kept as lone surrogates). Printed raw, these would forge lines,
    drive the terminal or make the write fail.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
    )


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` terminal cells after the deeper indent."""
    room = width - len(_MORE)
    if cell_len(text) == len(text):  # one cell per character: word-wrap
        return textwrap.wrap(text, width, initial_indent=_MORE, subsequent_indent=_MORE, break_on_hyphens=False)
    # Wide characters (CJK, emoji) take two cells, which textwrap does not know: cut by cells.
    lines: list[str] = []
    current = ""
    for char in text:
        if cell_len(current + char) > room:
            lines.append(_MORE + current)
            current = ""
        current += char
    return [*lines, _MORE + current]


def _flow(head: str, facts: Iterable[str], width: int) -> list[str]:
    """``head`` at the indent, then each fact on the same line while it fits, else on the next.

    A fact wider than a line by itself (a long path or error) is wrapped at the deeper indent.
    """
    head = printable(head)
    lines = [_INDENT + head] if cell_len(_INDENT + head) <= width else _wrap(head, width)
    for fact in map(printable, facts):
        if not fact:
            continue
        candidate = f"{lines[-1]}  {fact}"
        if cell_len(candidate) <= width:
            lines[-1] = candidate
        elif cell_len(_MORE + fact) <= width:
            lines.append(_MORE + fact)
        else:
            lines.extend(_wrap(fact, width))
    return lines


def _target_lines(target: TargetStatus, now: datetime, width: int) -> list[str]:
    state = target.get("state") or "ok"
    provider = target.get("provider")
    head = f"{target['name']} ({provider})" if provider and provider != target["name"] else target["name"]
    counts = f"{target['pending']} pending, {target['uploading']} uploading, {target['synced']} synced"
    failed = f"{target['failed']} failed" + (f" ({target['gave_up']} gave up)" if target["gave_up"] else "")
    oldest = target.get("oldest_pending_age_seconds")
    waiting = f"oldest pending {_duration(float(oldest))} ago" if oldest is not None else ""
    facts = [state, counts, failed, waiting]
    facts.append(f"last synced {age(target.get('last_synced_at'), now)}")
    reason = target.get("state_reason")
    if state != "ok" and reason:
        until = target.get("state_until")
        told = reason if reason.startswith(state) else f"{state}: {reason}"  # not "paused: paused by ..."
        facts.append(told + (f" (until {age(until, now)})" if until else ""))
    return _flow(head, facts, width)


def render_status(snapshot: StatusSnapshot, *, width: int = 80, now: datetime | None = None) -> str:
    """The snapshot of ``collect_status`` as text of at most ``width`` columns per line."""
    now = now or datetime.now(UTC)
    width = max(width, 70)  # below that a 63-character target name plus its indent cannot fit
    lines: list[str] = ["Targets"]
    for target in snapshot["targets"]:
        lines += _target_lines(target, now, width)
    r = snapshot["requests"]
    counts = f"{r['pending']} pending, {r['processing']} processing, {r['completed']} completed, {r['failed']} failed"
    lines += ["", *textwrap.wrap(f"Requests: {counts}", width, subsequent_indent=_MORE)]
    if snapshot["devices"]:
        lines += ["", "Devices"]
        for d in snapshot["devices"]:
            facts = [
                "online" if d["online"] else "offline",
                f"last seen {age(d['last_seen_at'], now)}",
                f"{d['files']} files",
            ]
            if "skipped" in d:  # per-device count of skipped files, where the snapshot has it
                facts.append(f"{d['skipped']} skipped")
            lines += _flow(d["device_id"], facts, width)
    if snapshot["recent_failures"]:
        lines += ["", "Recent failures"]
        for f in snapshot["recent_failures"]:
            retry = f"retry {age(f['next_attempt_at'], now)}" if f["next_attempt_at"] else "gave up"
            facts = [f["local_path"], f"attempt {f['attempts']}, {retry}", f["last_error"] or "", f"ref {f['ref_id']}"]
            lines += _flow(f["target"], facts, width)
    if snapshot.get("instances"):
        lines += ["", "Instances"]
        for i in snapshot["instances"]:
            facts = [
                f"pid {i['pid']}",
                f"version {i['version']}",
                f"started {age(i['started_at'], now)}",
                f"heartbeat {age(i['last_heartbeat'], now)}",
                "stopped" if i.get("stopped") else ("stale" if i["stale"] else ""),
                f"id {i['id']}",
            ]
            lines += _flow(i["host"], facts, width)
    if snapshot.get("instances_not_listed"):
        lines.append(f"and {snapshot['instances_not_listed']} older stopped instance(s) not listed")
    return "\n".join(lines) + "\n"

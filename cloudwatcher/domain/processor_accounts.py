"""Which local account wrote an external processor's answer (``agent_decisions.processor_account``).

A device cannot write into its ``responses/`` folder (the shipped deployment makes it read-only
for the device); the daemon and the processors can, each under its own account. The owner of an
answer file therefore says which processor answered, which the agent block in the file (written
by the processor itself) cannot prove.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

ACCOUNT_LENGTH = 100  # agent_decisions.processor_account is varchar(100)


def account_name(uid: int) -> str:
    """The user name of ``uid``, or the number when the system has no name for it."""
    try:
        return pwd.getpwuid(uid).pw_name[:ACCOUNT_LENGTH]
    except KeyError:
        return str(uid)


def processor_account(path: Path) -> str | None:
    """The owner of ``path`` (not following a symbolic link); None when it is gone.

    Called right after the file's recorded bytes were read and verified; a processor that swaps
    the file in between could only attribute its answer to another processor account.
    """
    try:
        return account_name(os.lstat(path).st_uid)
    except OSError:
        return None

"""Shell completion is Typer's: ``--install-completion`` / ``--show-completion``, and the
protocol the installed script speaks (the program re-run with ``_CLOUDWATCHER_COMPLETE`` set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("cloudwatcher"))


def completion(mode: str, **env: str) -> str:
    result = subprocess.run(
        [COMMAND],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "_CLOUDWATCHER_COMPLETE": mode, **env},
    )
    return result.stdout


def test_help_offers_to_install_and_show_completion() -> None:
    result = subprocess.run([COMMAND, "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


def test_the_bash_script_completes_the_cloudwatcher_command() -> None:
    script = completion("source_bash")
    assert "complete -o default -F _cloudwatcher_completion cloudwatcher" in script


def test_bash_completion_offers_commands_and_their_options() -> None:
    assert completion("complete_bash", COMP_WORDS="cloudwatcher sta", COMP_CWORD="1").split() == ["status"]
    assert completion("complete_bash", COMP_WORDS="cloudwatcher status --js", COMP_CWORD="2").split() == ["--json"]


def test_completion_of_a_word_no_command_starts_with_offers_nothing() -> None:
    assert completion("complete_bash", COMP_WORDS="cloudwatcher zzz", COMP_CWORD="1").split() == []

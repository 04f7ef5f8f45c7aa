"""The CLI with invalid arguments: a usage error and exit code 2, never a traceback; and, for
any argument list, only the exit codes it documents (0, 1, 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from rollwise.cli.main import app
from rollwise.errors import RollwiseError

from ..helpers import rollwise
from .fuzz import FUZZ

BAD = {
    "unknown command": ["frobnicate"],
    "missing app": ["deploy"],
    "missing --version": ["deploy", "app"],
    "not a number": ["undo", "app", "--to-revision", "two"],
    "unknown output": ["get", "app", "-o", "xml"],
    "bad duration": ["status", "app", "--timeout", "banana"],
    "unknown option": ["promote", "app", "--fast"],
    "both targets": ["smoke", "app", "--revision", "1", "--url", "http://x/"],
    "out of range": ["up", "--proxy-workers", "0"],
    "no events to show": ["events", "app", "--tail", "0"],
    "bad load rate": ["load", "http://127.0.0.1:9/", "--duration", "soon"],
    "missing backup file": ["restore", "/nonexistent/backup.db"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_invalid_arguments_are_usage_errors(argv: list[str], tmp_path: Path) -> None:
    result = rollwise(*argv, state_dir=tmp_path / "state", check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip(), "a usage error says what is wrong"


# commands that only read, or talk to a controller that is not there: safe to fuzz
COMMANDS = [
    "get",
    "list",
    "history",
    "events",
    "status",
    "promote",
    "abort",
    "undo",
    "deploy",
    "logs",
]
COMMANDS += ["smoke", "lint", "version", "doctor", "a2a", "analysis", "retry", "pause"]
WORDS = ["app", "--version", "--to-revision", "-o", "json", "--full", "--revision", "-1", "1"]
WORDS += [
    "--timeout",
    "0",
    "--tail",
    "--watch",
    "--url",
    "--help",
    "diff",
    "matrix",
    "replay",
    "",
    "é",
]


@FUZZ
@given(
    st.sampled_from(COMMANDS), st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=5)
)
def test_any_arguments_end_in_a_documented_exit_code(command: str, args: list[str]) -> None:
    runner = CliRunner()
    argv = [command, *args, "--state-dir", "/nonexistent/rollwise-fuzz"]
    result = runner.invoke(app, argv, catch_exceptions=True)
    # `rollwise` turns RollwiseError into one line and its exit code (cli.main.run)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, RollwiseError), repr(result.exception)
        assert result.exception.exit_code in (1, 2)
    else:
        assert result.exit_code in (0, 1, 2), (argv, result.output)

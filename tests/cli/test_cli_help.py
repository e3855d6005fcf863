"""Every command and group answers `--help`, and shell completion works.

The tree is walked from the app itself, so commands added later are covered
without editing this file. In-process (click's CliRunner) to stay fast; one
deep command also runs through the real entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from strongroom.cli.main import app
from tests.conftest import STRONGROOM

ROOT_COMMAND = typer.main.get_command(app)


def command_paths(cmd: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's path below `cmd` (Typer's click-style groups have list_commands/get_command)."""
    paths = [path]
    if hasattr(cmd, "list_commands"):
        ctx = typer.Context(cmd)
        for name in cmd.list_commands(ctx):
            paths += command_paths(cmd.get_command(ctx, name), (*path, name))
    return paths


PATHS = command_paths(ROOT_COMMAND)


def test_the_tree_is_the_whole_cli() -> None:
    """The walk reaches the deep commands (a walk that stopped at the root would pass vacuously)."""
    assert ("keyvault", "secret", "show") in PATHS
    assert ("keyvault", "certificate", "list-versions") in PATHS
    assert len(PATHS) > 100


def run_help(path: tuple[str, ...]) -> tuple[int, str]:
    """`strongroom PATH --help` in-process on the one built command tree (CliRunner.invoke rebuilds it per call)."""
    with CliRunner().isolation() as streams:
        stdout = streams[0]
        try:
            ROOT_COMMAND.main(args=[*path, "--help"], prog_name="strongroom", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        return code, stdout.getvalue().decode()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "strongroom")
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    code, output = run_help(path)  # an exception (the MarkupError) propagates and fails the test
    assert code == 0, output
    assert f"Usage: strongroom {' '.join(path)}".rstrip() in output


def test_help_shows_brackets_in_help_text_as_written() -> None:
    """`[/<version>]` in `--id`'s help is text, not markup (it used to end in a MarkupError traceback)."""
    proc = subprocess.run([*STRONGROOM, "keyvault", "secret", "show", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[/<version>]" in proc.stdout.replace("\n", "").replace(" ", "")


def test_show_completion_prints_a_bash_script() -> None:
    proc = subprocess.run([*STRONGROOM, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _strongroom_completion strongroom" in proc.stdout


def test_bash_completion_completes_subcommands() -> None:
    env = {**os.environ, "_STRONGROOM_COMPLETE": "complete_bash", "COMP_WORDS": "strongroom keyvault sec", "COMP_CWORD": "2"}
    proc = subprocess.run(STRONGROOM, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["secret"]


def test_install_completion_then_bash_completes(tmp_path) -> None:
    """`--install-completion bash` (into a temporary HOME) and the installed script completing in a real bash."""
    bin_dir = os.path.dirname(sys.executable)  # the venv's bin, where the `strongroom` script is
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run([os.path.join(bin_dir, "strongroom"), "--install-completion", "bash"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / ".bash_completions" / "strongroom.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    complete = (f"source '{script}'; COMP_WORDS=(strongroom keyvault secret sh); COMP_CWORD=3; "
                "_strongroom_completion strongroom; printf '%s\\n' \"${COMPREPLY[@]}\"")
    bash = subprocess.run(["bash", "-c", complete], capture_output=True, text=True, env=env, timeout=60)
    assert bash.stdout.split() == ["show", "show-deleted"], bash.stderr

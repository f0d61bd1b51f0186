"""The `openbert` command, and the commands the README shows: each names a real subcommand and uses only
options that subcommand's parser knows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from openbert.training import cli

README = Path(__file__).resolve().parents[1] / "README.md"
MODULE_COMMANDS = {command.module: words for words, command in cli.COMMANDS.items() if not command.extra_args}


def help_text(words: tuple[str, ...], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--help"])
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    cli.main(["--help"])
    listing = capsys.readouterr().out
    for words, command in cli.COMMANDS.items():
        assert f"{' '.join(words)}" in listing and command.summary in listing


def test_group_help_and_unknown_command(capsys):
    cli.main(["finetune"])
    listing = capsys.readouterr().out
    assert "finetune classification" in listing and "pretrain " not in listing
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pretrian"])
    assert exit_info.value.code == 2
    assert "unknown command 'pretrian'" in capsys.readouterr().err


@pytest.mark.parametrize("words", list(cli.COMMANDS))
def test_every_subcommand_explains_itself(words, capsys):
    text = help_text(words, capsys)
    assert "usage:" in text and len(text) > 200


def readme_commands() -> list[list[str]]:
    """Shell commands of the README's bash blocks that run openbert, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("#", 1)[0])
            if words and words[0] in ("openbert", "torchrun", "accelerate", "python"):
                commands.append(words)
    return commands


def test_readme_shows_commands():
    assert len(readme_commands()) >= 8


@pytest.mark.parametrize("command", readme_commands(), ids=lambda words: " ".join(words[:3]))
def test_readme_command_is_valid(command, capsys):
    if command[0] == "openbert":
        words = next(w for w in cli.COMMANDS if tuple(command[1: 1 + len(w)]) == w)
        arguments = command[1 + len(words):]
    else:  # python -m X / torchrun ... -m X / accelerate launch -m X
        module = command[command.index("-m") + 1]
        words = MODULE_COMMANDS[module]
        arguments = command[command.index("-m") + 2:]
    text = help_text(words, capsys)
    for flag in (a.split("=", 1)[0] for a in arguments if a.startswith("--")):
        assert re.search(rf"(^|[\s\[(,|]){re.escape(flag)}\b", text, flags=re.M), f"{flag} unknown to {words}"

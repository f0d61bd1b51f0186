"""The `openbert` command: every subcommand follows one convention (the same name for the same concept, the old
names of openbert 0.1 still accepted with a warning), the README's commands are valid, and the `python -m` paths
of openbert 0.1 still run from a checkout."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from transformers import HfArgumentParser

from openbert.modeling import convert
from openbert.tokenization.command_line import parse_command_line
from openbert.training import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MODULE_COMMANDS = {command.module: words for words, command in cli.COMMANDS.items() if not command.extra_args}
# Concepts several commands share, and names they must not go by: their openbert 0.1 names or other tools' words.
CONCEPTS = {
    "train_files": {"input", "train_file", "corpus", "files"},
    "validation_files": {"validation_file", "eval_files"},
    "test_files": {"test_file", "predict_files"},
    "output_dir": {"output", "out", "save_dir", "destination"},
    "model_name_or_path": {"checkpoint", "model", "source", "model_dir"},
    "hub_model_id": {"repo_id", "repo"},
    "hub_private_repo": {"private"},
    "hub_revision": {"revision", "branch"},
    "hub_token": {"token"},
    "min_frequency": {"tokenizer_min_frequency"},
    "disable_tqdm": {"no_progress"},
    "text_column": {"text_field"},
}


def help_text(words: tuple[str, ...], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--help"])
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


def command_module(words: tuple[str, ...]):
    """The module defining the subcommand's `main`, with its `ARGUMENTS` and `RENAMED_OPTIONS`."""
    main = importlib.import_module(cli.COMMANDS[words].module).main
    return sys.modules[main.__module__]


def options_of(words: tuple[str, ...]) -> list[argparse.Action]:
    types = (convert.ConvertArguments,) if words == ("convert",) else command_module(words).ARGUMENTS
    return [action for action in HfArgumentParser(types)._actions if action.dest != "help"]


def test_top_level_help_lists_every_command(capsys):
    cli.main(["--help"])
    listing = capsys.readouterr().out
    for words, command in cli.COMMANDS.items():
        assert f"{' '.join(words)}" in listing and command.summary in listing


def test_group_help_and_unknown_command(capsys):
    cli.main(["finetune", "--help"])
    listing = capsys.readouterr().out
    assert "finetune classification" in listing and "pretrain " not in listing
    # Without its subcommand a group runs nothing: that is an error, not a success.
    for argv, message in ((["finetune"], "openbert finetune: name the subcommand"),
                          (["finetune", "clasification"], "unknown subcommand 'clasification'"),
                          ([], "openbert: name a command")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pretrian"])
    assert exit_info.value.code == 2
    assert "unknown command 'pretrian'" in capsys.readouterr().err


@pytest.mark.parametrize("words", list(cli.COMMANDS))
def test_every_subcommand_explains_itself_as_openbert(words, capsys):
    text = help_text(words, capsys)
    assert text.startswith(f"usage: openbert {' '.join(words)} ") and len(text) > 200


def test_a_concept_has_one_name_in_every_command():
    """No command offers a retired or foreign name for a shared concept, every option also takes its dashed
    spelling, and a name that several commands use takes the same kind of value in all of them."""
    retired = set().union(*CONCEPTS.values())
    kinds = defaultdict(set)
    for words in cli.COMMANDS:
        for action in options_of(words):
            name = action.dest
            assert name not in retired, (words, name)
            # `--name`, `--na-me` and, for a flag that defaults to on, `--no_name`: nothing else.
            assert {f"--{name.replace('_', '-')}", f"--{name}"} <= set(action.option_strings) or action.option_strings \
                == [f"--no_{name}", f"--no-{name.replace('_', '-')}"], (words, action.option_strings)
            if action.option_strings[0] == f"--{name}":
                kinds[name].add((action.nargs in ("+", "*"), getattr(action.type, "__name__", str(action.type))))
    assert {name: kind for name, kind in kinds.items() if len(kind) > 1} == {}


OLD_AND_NEW = [
    (("tokenizer", "train"),
     ["--input", "a.txt", "b.txt", "--output", "tok", "--min-frequency", "3", "--no-progress", "--no-strip-accents"],
     ["--train_files", "a.txt", "b.txt", "--output_dir", "tok", "--min_frequency", "3", "--disable_tqdm",
      "--strip_accents", "false"]),
    (("pretrain",), ["--tokenizer_min_frequency", "5", "--output_dir", "out"], ["--min_frequency", "5", "--output_dir",
                                                                                 "out"]),
    (("finetune", "classification"),
     ["--model_name_or_path", "m", "--train_file", "t.csv", "--validation-file", "v.csv", "--test_file", "p.csv",
      "--output_dir", "out"],
     ["--model_name_or_path", "m", "--train_files", "t.csv", "--validation_files", "v.csv", "--test_files", "p.csv",
      "--output_dir", "out"]),
    (("finetune", "qa"), ["--model_name_or_path", "m", "--train_file", "t.json", "--output_dir", "out"],
     ["--model_name_or_path", "m", "--train_files", "t.json", "--output_dir", "out"]),
    (("push",),
     ["--checkpoint", "ckpt", "--repo-id", "me/x", "--private", "--revision", "dev", "--token", "hf_x",
      "--commit-message", "first"],
     ["--model_name_or_path", "ckpt", "--hub_model_id", "me/x", "--hub_private_repo", "--hub_revision", "dev",
      "--hub_token", "hf_x", "--commit_message", "first"]),
]


@pytest.mark.parametrize(("words", "old", "new"), OLD_AND_NEW, ids=lambda value: " ".join(value)[:40])
def test_old_option_names_mean_today_s_with_a_warning(words, old, new):
    module, command = command_module(words), " ".join(words)
    with pytest.warns(FutureWarning, match=rf"`openbert {command} --[a-z_-]+` is deprecated .* use --"):
        from_old = parse_command_line(command, module.ARGUMENTS, old, renamed=module.RENAMED_OPTIONS)
    assert from_old == parse_command_line(command, module.ARGUMENTS, new, renamed=module.RENAMED_OPTIONS)


def test_old_convert_form_means_today_s_with_a_warning(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(convert, "from_transformers", lambda source, destination: calls.append((source, destination)))
    with pytest.warns(FutureWarning, match="--from-transformers SOURCE DEST` is deprecated"):
        convert.main(["--from-transformers", "bert", "out"])
    convert.main(["--to", "openbert", "--model_name_or_path", "bert", "--output-dir", "out"])
    config = tmp_path / "convert.yaml"
    config.write_text("to: openbert\nmodel_name_or_path: bert\noutput_dir: out\n")
    convert.main([str(config)])
    assert calls == [("bert", "out")] * 3


# Runs the `python -m` paths of openbert 0.1 as `python -m` does (runpy), in one process: each prints its help.
OLD_PATHS = {"training.pretrain": "pretrain", "training.finetune_classification": "finetune classification",
             "training.finetune_qa": "finetune qa", "training.push": "push", "tokenization.train": "tokenizer train",
             "modeling.convert": "convert", "training.quickstart": "quickstart"}
RUN_AS_MAIN = textwrap.dedent("""
    import contextlib, io, json, runpy, sys
    helps = {}
    for module in sys.argv[1:]:
        sys.argv = [module, "--help"]
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        helps[module] = out.getvalue()
    print(json.dumps(helps))
""")


def test_python_m_paths_of_0_1_still_run_from_the_repository_root():
    done = subprocess.run([sys.executable, "-c", RUN_AS_MAIN, *OLD_PATHS], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    helps = json.loads(done.stdout.strip().splitlines()[-1])
    for module, command in OLD_PATHS.items():
        assert helps[module].startswith(f"usage: openbert {command} "), module
    for moved in ("training.pretrain", "training.finetune_classification", "training.finetune_qa", "training.push"):
        assert f"`python -m {moved}` is deprecated" in done.stderr


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


@pytest.mark.parametrize(("argv", "save_strategy"), [
    ([], "epoch"),
    (["--eval_strategy", "steps", "--eval_steps", "4", "--load_best_model_at_end"], "steps"),
    (["--eval-strategy=epoch", "--load_best_model_at_end"], "epoch"),
    (["--save_steps", "4"], "steps"),
    (["--eval_strategy", "steps", "--save_strategy", "no"], "no"),
])
def test_checkpoint_defaults_follow_what_the_user_chose(argv, save_strategy, tmp_path):
    # One checkpoint per epoch unless the user thinks in steps; an explicit --save_strategy always wins. Each
    # combination must also pass TrainingArguments' own checks (--load_best_model_at_end needs matching saves).
    from transformers import TrainingArguments

    from openbert.tokenization.command_line import given_options
    from openbert.training.job import command_defaults

    defaults = command_defaults("finetune classification", given_options(argv))
    (args,) = parse_command_line("finetune classification", [TrainingArguments], argv, defaults=defaults)
    assert args.save_strategy == save_strategy and args.save_total_limit == 2
    assert args.output_dir == str(Path("outputs/finetune-classification"))
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"eval_strategy": "steps", "eval_steps": 4, "load_best_model_at_end": True}))
    assert command_defaults("pretrain", given_options([str(config)]))["save_strategy"] == "steps"



def test_training_commands_default_to_fused_adamw():
    # Every training command's defaults ask for AdamW's fused kernel, whatever transformers' own default (fused
    # only with torch >= 2.8), and the Trainer builds AdamW(fused=True) from them; --optim still chooses.
    from transformers import Trainer, TrainingArguments

    from openbert.tokenization.command_line import given_options
    from openbert.training.job import command_defaults

    training_commands = [words for words in cli.COMMANDS if words != ("convert",) and any(
        isinstance(kind, type) and issubclass(kind, TrainingArguments) for kind in command_module(words).ARGUMENTS)]
    assert len(training_commands) == 10
    for words in training_commands:
        kind = next(kind for kind in command_module(words).ARGUMENTS if issubclass(kind, TrainingArguments))
        argv = ["--output_dir", "unused"]
        (args,) = parse_command_line(" ".join(words), [kind], argv,
                                     defaults=command_defaults(" ".join(words), given_options(argv)))
        assert args.optim == "adamw_torch_fused", words
        optimizer = Trainer(model=torch.nn.Linear(2, 2), args=args).create_optimizer()
        assert optimizer.defaults["fused"] is True, words
    (chosen,) = parse_command_line("pretrain", [TrainingArguments], ["--optim", "adamw_torch"],
                                   defaults=command_defaults("pretrain", given_options(["--optim", "adamw_torch"])))
    assert chosen.optim == "adamw_torch"

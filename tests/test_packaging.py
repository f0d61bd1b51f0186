"""The built wheel ships every file of every room. Installed in a fresh venv beside another distribution's top-level
`training` and `modeling` packages, both import as their own, `import openbert` registers the model and loads
nothing else, the command is there, and a checkpoint loads as remote code while openbert cannot be imported."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import torch

from openbert import OpenBertConfig, OpenBertForSequenceClassification

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from (a copy, so that no build/ folder of an earlier build leaks stale modules in).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "__init__.py", "modeling", "tokenization", "training", "hub_cards")

# Runs in the fresh venv, from a folder outside the repository, with the checkpoint saved by the test.
IN_THE_FRESH_VENV = textwrap.dedent("""
    import sys
    import training, modeling
    assert (training.OWNER, modeling.OWNER) == ("dummy", "dummy"), (training.__file__, modeling.__file__)

    # Remote code first, while openbert cannot be imported: the checkpoint's own code must run.
    sys.modules["openbert"] = None
    import torch
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    torch.testing.assert_close(model(input_ids=torch.tensor([[2, 7, 9, 3]])).logits,
                               torch.load(sys.argv[1] + "/logits.pt"), rtol=0, atol=0)
    del sys.modules["openbert"]

    import openbert
    ours = sorted(name for name in sys.modules if name.startswith("openbert"))
    assert ours == ["openbert", "openbert.modeling", "openbert.modeling.configuration_openbert",
                    "openbert.modeling.modeling_openbert", "openbert.modeling.packed_tokens",
                    "openbert.modeling.peft_defaults", "openbert.modeling.quantization"], ours
    assert not {"datasets", "evaluate", "matplotlib", "peft", "sentence_transformers"} & set(sys.modules)
    from transformers import AutoConfig
    assert AutoConfig.for_model("openbert").__class__ is openbert.OpenBertConfig

    import importlib.metadata, importlib.resources
    from openbert.training import cli
    assert all(command.module.startswith("openbert.") for command in cli.COMMANDS.values())
    assert importlib.resources.files("openbert.hub_cards").joinpath("templates", "base.md").is_file()
    script = importlib.metadata.entry_points(group="console_scripts", name="openbert")
    assert [entry.value for entry in script] == ["openbert.training.cli:main"]
    print(openbert.__file__)
""")


def dummy_distribution(directory: Path) -> Path:
    """A distribution that ships top-level `training` and `modeling` packages, as many repositories do."""
    directory.mkdir()
    (directory / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "someone-elses-project"
        version = "1.0"
        [tool.setuptools]
        packages = ["training", "modeling"]
    """))
    for package in ("training", "modeling"):
        (directory / package).mkdir()
        (directory / package / "__init__.py").write_text('OWNER = "dummy"\n')
    return directory


def save_tiny_classifier(directory: Path) -> str:
    """A checkpoint saved by the openbert of this repository, with its logits on one input."""
    config = OpenBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=16, num_labels=3)
    torch.manual_seed(0)
    model = OpenBertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    with torch.no_grad():
        torch.save(model(input_ids=torch.tensor([[2, 7, 9, 3]])).logits, directory / "logits.pt")
    return str(directory)


def wheel_sources(destination: Path) -> Path:
    destination.mkdir()
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, destination / name)
    return destination


def fresh_venv(directory: Path) -> tuple[Path, Path]:
    """A venv without pip whose only third-party packages are this venv's (torch, transformers, ...), reached
    through a .pth line: the .pth files there (the editable openbert's among them) are not run."""
    venv.create(directory, with_pip=False)
    python = directory / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, purelib


def test_wheel_installs_beside_other_training_and_modeling_packages(tmp_path):
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", wheels,
                    wheel_sources(tmp_path / "openbert-source"),
                    dummy_distribution(tmp_path / "dummy")], check=True, timeout=300)
    (wheel,) = wheels.glob("openbert-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if not name.startswith("openbert-")}
    sources = {f"openbert/{path.relative_to(ROOT)}" for name in WHEEL_SOURCES[2:] for path in
               ([ROOT / name] if (ROOT / name).is_file() else (ROOT / name).rglob("*"))
               if path.is_file() and "__pycache__" not in path.parts}
    assert shipped == sources  # every file of every room (and nothing else), sub-packages and card templates included
    python, purelib = fresh_venv(tmp_path / "venv")
    # --target installs next to whatever else is there, and never touches this venv's editable openbert.
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", purelib, *sorted(wheels.glob("*.whl"))],
                   check=True, timeout=300)

    checkpoint = save_tiny_classifier(tmp_path / "checkpoint")
    done = subprocess.run([python, "-c", IN_THE_FRESH_VENV, checkpoint], cwd=wheels, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(purelib / "openbert" / "__init__.py")

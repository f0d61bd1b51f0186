"""openbert: BERT written from scratch as a first-class citizen of the Hugging Face ecosystem.

`import openbert` registers model_type "openbert" with `AutoConfig` and every `AutoModel*` class, and imports
nothing but the model. The rest lives in rooms of its own: `openbert.tokenization` (WordPiece tokenizers and the
reader of data files), `openbert.training` (pretraining, fine-tuning, pushing; `pip install openbert[training]`)
and `openbert.hub_cards` (model cards; `openbert[hub]`).

In the repository this is the root folder's __init__.py: setuptools installs the root as the `openbert` package,
so each room's folder becomes its sub-package (pyproject.toml).
"""

import os
import sys

# CPU threads that wait for each other sleep rather than spin (GNU OpenMP, torch's CPU backend, spins by
# default): beside another busy process, spinning threads burned 4x the CPU time per training step and ran 3x
# slower (benchmarks/bench_busy_machine.py). OpenMP reads this once, when torch loads it: it applies only where
# openbert is imported first (as by the `openbert` command) and the user has not chosen a policy. An empty value
# asks for OpenMP's own default: it is removed, because GNU OpenMP reads an empty value as invalid and says so.
if "torch" not in sys.modules:
    if os.environ.get("OMP_WAIT_POLICY") == "":
        del os.environ["OMP_WAIT_POLICY"]
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Absolute, not relative: pytest imports the repository root's __init__.py under the folder's own name, and a
# relative import would then load a second copy of every model class and register it with the Auto classes.
from openbert.modeling import *  # noqa: F403  (the model's public names: modeling's __all__)
from openbert.modeling import __all__  # noqa: F401

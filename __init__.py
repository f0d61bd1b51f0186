"""openbert: BERT written from scratch as a first-class citizen of the Hugging Face ecosystem.

`import openbert` registers model_type "openbert" with `AutoConfig` and every `AutoModel*` class, and imports
nothing but the model. The rest lives in rooms of its own: `openbert.tokenization` (WordPiece tokenizers and the
reader of data files), `openbert.training` (pretraining, fine-tuning, pushing; `pip install openbert[training]`)
and `openbert.hub_cards` (model cards; `openbert[hub]`).

In the repository this is the root folder's __init__.py: setuptools installs the root as the `openbert` package,
so each room's folder becomes its sub-package (pyproject.toml).
"""

# Absolute, not relative: pytest imports the repository root's __init__.py under the folder's own name, and a
# relative import would then load a second copy of every model class and register it with the Auto classes.
from openbert.modeling import *  # noqa: F403  (the model's public names: modeling's __all__)
from openbert.modeling import __all__  # noqa: F401

"""PEFT's defaults for BERT, given to model_type `openbert`, so that `LoraConfig()` needs no `target_modules`.

PEFT picks the layers an adapter wraps from module-level dicts keyed by model_type
(`peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`: `"bert": ["query", "value"]`, and one
such dict per method: IA3, LoHa, LoKr, AdaLoRA, ...); any other model type must pass `target_modules`. openbert's
modules carry BERT's names (a BERT state dict loads unchanged), so BERT's entry is right for it, and PEFT offers no
registration call: we add `"openbert"` with BERT's value to every dict that has a `"bert"` entry, never changing an
existing key (a PEFT release that knows openbert keeps its own choice).

`import openbert` must stay fast and must not need peft (an optional extra, ~10 s to import). So nothing here
imports peft: when peft's constants are already loaded they are updated at once; otherwise a finder on
`sys.meta_path` waits for `peft.utils.constants` to be imported, whenever and by whom, updates the dicts the
moment the module has run (before any of peft's other modules copies a name out of it), and removes itself.
Either import order works. A checkpoint loaded as remote code without `import openbert` gets no defaults: pass
`target_modules=["query", "value"]` there.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

PEFT_CONSTANTS = "peft.utils.constants"
MAPPING_PREFIX = "TRANSFORMERS_MODELS_TO_"
MODEL_TYPE, LIKE = "openbert", "bert"


def add_bert_defaults(constants: ModuleType) -> list[str]:
    """Give `openbert` BERT's entry in every model-type mapping of peft's `constants` module; return their names."""
    updated = []
    for name, value in vars(constants).items():
        if name.startswith(MAPPING_PREFIX) and isinstance(value, dict) and LIKE in value:
            value.setdefault(MODEL_TYPE, value[LIKE])
            updated.append(name)
    return updated


class _RunThenAddDefaults(importlib.abc.Loader):
    """peft's own loader for its constants module, followed by `add_bert_defaults`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        add_bert_defaults(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... for tracebacks and inspect
        return getattr(self.loader, name)


class _WhenPeftConstantsLoad(importlib.abc.MetaPathFinder):
    """Finds `peft.utils.constants` with the finders after it, then lets its loader add the defaults."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> Any:
        if fullname != PEFT_CONSTANTS:
            return None
        sys.meta_path.remove(self)  # once: the module is loaded once per process
        for finder in sys.meta_path:  # the finders that would have found it without us
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RunThenAddDefaults(spec.loader)
                return spec
        return None


def register_peft_defaults() -> None:
    """Add the defaults now if peft's constants are loaded, else as soon as they are; does not import peft."""
    constants = sys.modules.get(PEFT_CONSTANTS)
    if constants is not None:
        add_bert_defaults(constants)
    elif not any(isinstance(finder, _WhenPeftConstantsLoad) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WhenPeftConstantsLoad())

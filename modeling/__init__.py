"""openbert models, registered with transformers' Auto classes on import.

After `import openbert`, `AutoConfig`/`AutoModel*` resolve model_type `openbert` to these classes, and every
`save_pretrained` writes `auto_map` and copies this package's modeling files next to the weights, so the
checkpoint loads with `trust_remote_code=True` where openbert is not installed. PEFT gets BERT's default adapter
targets for model_type `openbert` when it is (or later gets) imported (`peft_defaults`), without importing it here.
`OpenBertInt8Config` is the weight-only int8 checkpoint format (`quantization`).
"""

import transformers
from transformers import AutoConfig

from . import modeling_openbert
from .configuration_openbert import OpenBertConfig, OpenBertEncoderDecoderConfig
from .modeling_openbert import (
    AUTO_CLASS_NAMES,
    IGNORE_INDEX,
    OpenBertEncoderDecoderModel,
    OpenBertForMaskedLM,
    OpenBertForMultipleChoice,
    OpenBertForNextSentencePrediction,
    OpenBertForPreTraining,
    OpenBertForQuestionAnswering,
    OpenBertForSequenceClassification,
    OpenBertForTokenClassification,
    OpenBertLMHeadModel,
    OpenBertModel,
    OpenBertPreTrainedModel,
)
from .peft_defaults import register_peft_defaults
from .quantization import OpenBertInt8Config

AutoConfig.register(OpenBertConfig.model_type, OpenBertConfig, exist_ok=True)
OpenBertConfig.register_for_auto_class()
for auto_name, class_name in AUTO_CLASS_NAMES.items():
    model_class = getattr(modeling_openbert, class_name)
    getattr(transformers, auto_name).register(OpenBertConfig, model_class, exist_ok=True)
    model_class.register_for_auto_class(auto_name)
# Not registered with AutoModelForSeq2SeqLM here (its config has transformers' model type "encoder-decoder");
# marked so that save_pretrained copies the code that remote-code loading needs.
OpenBertEncoderDecoderModel.register_for_auto_class("AutoModelForSeq2SeqLM")
register_peft_defaults()

__all__ = [
    "AUTO_CLASS_NAMES",
    "IGNORE_INDEX",
    "OpenBertConfig",
    "OpenBertEncoderDecoderConfig",
    "OpenBertEncoderDecoderModel",
    "OpenBertForMaskedLM",
    "OpenBertForMultipleChoice",
    "OpenBertForNextSentencePrediction",
    "OpenBertForPreTraining",
    "OpenBertForQuestionAnswering",
    "OpenBertForSequenceClassification",
    "OpenBertForTokenClassification",
    "OpenBertInt8Config",
    "OpenBertLMHeadModel",
    "OpenBertModel",
    "OpenBertPreTrainedModel",
]

"""MLM + NSP pretraining (`openbert pretrain`): documents → sentences → NSP pairs → dynamically masked batches."""

from .arguments import SIZE_PRESETS, PretrainingDataArguments, PretrainingModelArguments, preset_config
from .job import PretrainingJob, main, run_pretraining

__all__ = [
    "SIZE_PRESETS",
    "PretrainingDataArguments",
    "PretrainingJob",
    "PretrainingModelArguments",
    "main",
    "preset_config",
    "run_pretraining",
]

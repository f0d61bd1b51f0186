"""`pipeline("question-answering")` for openbert QA models (transformers 5 no longer ships that task).

Fine-tuned QA models are saved with this file (and `processing.py`) next to their weights and a
`custom_pipelines` entry in `config.json`, so anyone can run

    pipe = pipeline("question-answering", model="out/squad", trust_remote_code=True)
    pipe(question="Where is the Eiffel Tower?", context="The Eiffel Tower is in Paris.")
    # {'answer': 'Paris', 'score': 0.93, 'start': 22, 'end': 27}

without openbert installed. Long contexts are split into overlapping windows and the answer is searched
over all of them, exactly as in evaluation (`processing.py`), so pipeline answers equal the answers the
fine-tuning script scores. With openbert installed, `import openbert.training.qa.pipeline` also registers the task
for any QA model.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForQuestionAnswering, Pipeline, PreTrainedModel, PreTrainedTokenizerBase
from transformers.pipelines import PIPELINE_REGISTRY

from .processing import MODEL_INPUT_COLUMNS, postprocess_qa_predictions, prepare_eval_features

TASK = "question-answering"


class QuestionAnsweringPipeline(Pipeline):
    """question + context -> {"answer", "score", "start", "end"} (character offsets into the context).

    Call with `pipe(question=..., context=...)` or `pipe({"question": ..., "context": ...})` (a list of such
    dicts gives a list of answers). Options (at construction or per call): `top_k` (answers to return,
    default 1), `max_seq_len` (384), `doc_stride` (128, the window overlap), `max_answer_len` (30),
    `handle_impossible_answer` (allow "" as the answer, SQuAD v2.0 models; default False). `score` is the
    answer's probability among the n-best candidates.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs=None, question: str | None = None, context: str | None = None, **kwargs):
        if inputs is None:
            if question is None or context is None:
                raise ValueError("pass question= and context= (or a {'question', 'context'} dict)")
            inputs = {"question": question, "context": context}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k: int | None = None, max_seq_len: int | None = None,
                             doc_stride: int | None = None, max_answer_len: int | None = None,
                             handle_impossible_answer: bool | None = None):
        preprocess = {k: v for k, v in (("max_seq_len", max_seq_len), ("doc_stride", doc_stride)) if v is not None}
        postprocess = {k: v for k, v in (("top_k", top_k), ("max_answer_len", max_answer_len),
                                         ("handle_impossible_answer", handle_impossible_answer)) if v is not None}
        return preprocess, {}, postprocess

    def preprocess(self, inputs: dict, max_seq_len: int = 384, doc_stride: int = 128) -> dict:
        if not isinstance(inputs, dict) or not {"question", "context"} <= set(inputs):
            raise ValueError(f"question-answering inputs are {{'question': str, 'context': str}} dicts, got {inputs!r}")
        example = {"id": ["0"], "question": [inputs["question"]], "context": [inputs["context"]]}
        windows = prepare_eval_features(example, self.tokenizer, max_seq_len, doc_stride)
        model_inputs = self.tokenizer.pad({k: windows[k] for k in MODEL_INPUT_COLUMNS if k in windows},
                                          return_tensors="pt")
        # Postprocessing needs the windows' offsets and the original context; they ride along untouched.
        return {"model_inputs": dict(model_inputs), "windows": windows, "context": inputs["context"]}

    def _forward(self, inputs: dict) -> dict:
        output = self.model(**inputs["model_inputs"])
        return {"start_logits": output.start_logits, "end_logits": output.end_logits,
                "windows": inputs["windows"], "context": inputs["context"]}

    def postprocess(self, outputs: dict, top_k: int = 1, max_answer_len: int = 30,
                    handle_impossible_answer: bool = False) -> dict | list[dict]:
        result = postprocess_qa_predictions(
            [{"id": "0", "context": outputs["context"]}], outputs["windows"],
            outputs["start_logits"].float().numpy(), outputs["end_logits"].float().numpy(),
            version_2_with_negative=handle_impossible_answer, n_best_size=max(20, top_k),
            max_answer_length=max_answer_len,
        )
        answers = [{"answer": c["text"], "score": c["probability"], "start": c["start"], "end": c["end"]}
                   for c in result.nbest["0"][:top_k]]
        return answers[0] if top_k == 1 else answers


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=QuestionAnsweringPipeline,
                                    pt_model=AutoModelForQuestionAnswering, type="text")


def save_with_qa_pipeline(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: str | Path) -> None:
    """Save `model` and `tokenizer` with this pipeline's code and its `custom_pipelines` config entry."""
    QuestionAnsweringPipeline(model=model, tokenizer=tokenizer).save_pretrained(str(output_dir))


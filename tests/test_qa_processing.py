"""QA sliding-window preprocessing and n-best postprocessing, checked on hand-built cases."""

import json

import datasets
import numpy as np
import pytest
from transformers import AutoTokenizer

from openbert.training.qa.processing import (
    MODEL_INPUT_COLUMNS,
    postprocess_qa_predictions,
    prepare_eval_features,
    prepare_train_features,
    write_qa_predictions,
)

# 24 one-piece words: each is one token of the MiniLM vocabulary, so windows are easy to count.
WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen twenty red green blue black").split()
CONTEXT = " ".join(WORDS)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir)


def _examples(*rows):
    """rows: (id, question, context, answer text or None)."""
    return datasets.Dataset.from_list([
        {"id": qid, "question": question, "context": context,
         "answers": {"text": [answer], "answer_start": [context.index(answer)]} if answer
         else {"text": [], "answer_start": []}}
        for qid, question, context, answer in rows
    ])


def _map(examples, function, tokenizer, **kwargs):
    return examples.map(function, batched=True, remove_columns=examples.column_names,
                        fn_kwargs={"tokenizer": tokenizer, **kwargs})


def _span_text(context, offsets, start, end):
    return context[offsets[start][0]: offsets[end][1]]


def test_windows_overlap_by_doc_stride_and_label_an_answer_crossing_a_boundary(tokenizer):
    # "what?" is 2 tokens; 16 - 2 - 3 special = 11 context tokens per window, the next window starting
    # 11 - 4 = 7 words later: windows cover words [0, 11), [7, 18), [14, 24).
    examples = _examples(("q", "what?", CONTEXT, "ten eleven twelve"))
    features = _map(examples, prepare_train_features, tokenizer, max_seq_length=16, doc_stride=4)
    assert len(features) == 3
    windows = [tokenizer.decode(ids, skip_special_tokens=True).split()[1:] for ids in features["input_ids"]]
    assert windows[0] == WORDS[0:11] and windows[1] == WORDS[7:18] and windows[2] == WORDS[14:24]
    # "ten eleven twelve" = words 9..11 crosses the end of window 0 (which stops at "eleven"): labelled
    # [CLS]; window 1 holds it whole; window 2 does not contain it.
    assert (features[0]["start_positions"], features[0]["end_positions"]) == (0, 0)
    assert (features[2]["start_positions"], features[2]["end_positions"]) == (0, 0)
    start, end = features[1]["start_positions"], features[1]["end_positions"]
    assert tokenizer.decode(features[1]["input_ids"][start: end + 1]) == "ten eleven twelve"
    assert set(features.column_names) == set(MODEL_INPUT_COLUMNS) | {"start_positions", "end_positions"}


def test_unicode_and_extra_whitespace_map_back_to_the_original_text(tokenizer):
    context = "Le   café\u00a0 crème  était   naïve, très   résumé."
    answer = "café\u00a0 crème  était"
    examples = _examples(("u", "quoi ?", context, answer))
    train = _map(examples, prepare_train_features, tokenizer, max_seq_length=64, doc_stride=8)
    evaluation = _map(examples, prepare_eval_features, tokenizer, max_seq_length=64, doc_stride=8)
    assert len(train) == len(evaluation) == 1
    offsets = evaluation[0]["offset_mapping"]
    start, end = train[0]["start_positions"], train[0]["end_positions"]
    # The labelled tokens (lower-cased, accents stripped by the uncased tokenizer) cover exactly the answer
    # characters of the original context, odd spaces and accents included.
    assert _span_text(context, offsets, start, end) == answer
    # Postprocessing with logits peaking at those tokens returns the original text, not the token text.
    length = len(evaluation[0]["input_ids"])
    start_logits, end_logits = np.zeros((1, length)), np.zeros((1, length))
    start_logits[0, start], end_logits[0, end] = 5.0, 5.0
    result = postprocess_qa_predictions(examples, evaluation, start_logits, end_logits)
    assert result.predictions == {"u": answer}
    best = result.nbest["u"][0]
    assert (best["start"], best["end"]) == (context.index(answer), context.index(answer) + len(answer))


def _eval_windows(tokenizer, examples):
    features = _map(examples, prepare_eval_features, tokenizer, max_seq_length=16, doc_stride=4)
    length = max(len(ids) for ids in features["input_ids"])
    # A low background, so that only the logits a test raises can form a competitive span.
    return features, np.full((len(features), length), -10.0), np.full((len(features), length), -10.0)


def _token_of(features, window, context, word_index):
    """Token position, in `window`, of the word WORDS[word_index] (a one-piece word)."""
    char = len(" ".join(WORDS[:word_index])) + (1 if word_index else 0)
    return next(t for t, o in enumerate(features[window]["offset_mapping"]) if o is not None and o[0] == char)


def test_postprocessing_searches_all_windows_and_merges_duplicate_texts(tokenizer):
    examples = _examples(("q", "what?", CONTEXT, None))
    features, starts, ends = _eval_windows(tokenizer, examples)
    # Window 0 likes "ten eleven" (words 9-10, score 3+3); window 1 likes "ten eleven twelve" (4+4) and
    # also "ten eleven" (4+1, the same text with a lower score); window 2 has nothing.
    starts[0, _token_of(features, 0, CONTEXT, 9)] = 3.0
    ends[0, _token_of(features, 0, CONTEXT, 10)] = 3.0
    starts[1, _token_of(features, 1, CONTEXT, 9)] = 4.0
    ends[1, _token_of(features, 1, CONTEXT, 11)] = 4.0
    ends[1, _token_of(features, 1, CONTEXT, 10)] = 1.0
    # The question token "what" scores highest of all but is not context: never an answer.
    starts[:, 1], ends[:, 1] = 50.0, 50.0
    result = postprocess_qa_predictions(examples, features, starts, ends, n_best_size=3)
    assert result.predictions["q"] == "ten eleven twelve"
    nbest = result.nbest["q"]
    texts = [c["text"] for c in nbest]
    assert texts[:2] == ["ten eleven twelve", "ten eleven"] and len(texts) == len(set(texts)) == 3
    # "ten eleven" appears once, with its best score over both windows: window 0's 3 + 3, not 4 + 1.
    assert (nbest[1]["start_logit"], nbest[1]["end_logit"]) == (3.0, 3.0)
    assert sum(c["probability"] for c in nbest) == pytest.approx(1.0)
    assert nbest[0]["probability"] > nbest[1]["probability"] > nbest[2]["probability"]
    assert result.null_score_diff == {}


def test_postprocessing_respects_max_answer_length_order_and_padding(tokenizer):
    examples = _examples(("q", "what?", CONTEXT, None))
    features, starts, ends = _eval_windows(tokenizer, examples)
    last = len(features[2]["input_ids"])
    # End before start, and a 5-token span with max_answer_length=4, are both invalid; the best valid
    # span is "twenty red" (words 19-20).
    starts[1, _token_of(features, 1, CONTEXT, 12)] = 9.0
    ends[1, _token_of(features, 1, CONTEXT, 10)] = 9.0
    starts[0, _token_of(features, 0, CONTEXT, 2)] = 8.0
    ends[0, _token_of(features, 0, CONTEXT, 6)] = 8.0
    starts[2, _token_of(features, 2, CONTEXT, 19)] = 1.0
    ends[2, _token_of(features, 2, CONTEXT, 20)] = 1.0
    # Window 2 is the shortest: columns past its length (batch padding, -100 or not) must be ignored.
    starts[2, last:] = ends[2, last:] = 100.0
    result = postprocess_qa_predictions(examples, features, starts, ends, max_answer_length=4)
    assert result.predictions["q"] == "twenty red"


def test_no_answer_v2_threshold_and_null_score_over_windows(tokenizer):
    examples = _examples(("q", "what?", CONTEXT, None))
    features, starts, ends = _eval_windows(tokenizer, examples)
    starts[1, _token_of(features, 1, CONTEXT, 9)] = 2.0
    ends[1, _token_of(features, 1, CONTEXT, 10)] = 2.0  # best span "ten eleven", score 4
    # [CLS] scores per window 6, 5+1=6 and 3+2=5: the null score is the minimum, 5.
    starts[:, 0] = [3.0, 5.0, 3.0]
    ends[:, 0] = [3.0, 1.0, 2.0]
    v2 = postprocess_qa_predictions(examples, features, starts, ends, version_2_with_negative=True)
    assert v2.predictions["q"] == "" and v2.null_score_diff["q"] == pytest.approx(1.0)
    assert v2.nbest["q"][0]["text"] == "" and v2.nbest["q"][1]["text"] == "ten eleven"
    # The same logits with a threshold above the difference answer the question ...
    lenient = postprocess_qa_predictions(examples, features, starts, ends, version_2_with_negative=True,
                                         null_score_diff_threshold=1.5)
    assert lenient.predictions["q"] == "ten eleven"
    # ... and v1 never considers the null answer.
    assert postprocess_qa_predictions(examples, features, starts, ends).predictions["q"] == "ten eleven"


def test_unanswerable_training_example_targets_cls(tokenizer):
    examples = _examples(("n", "what?", CONTEXT, None))
    features = _map(examples, prepare_train_features, tokenizer, max_seq_length=16, doc_stride=4)
    assert features["start_positions"] == features["end_positions"] == [0, 0, 0]


def test_doc_stride_too_large_is_a_clear_error(tokenizer):
    examples = _examples(("q", "what is the colour of the sky today?", CONTEXT, "red"))
    with pytest.raises(ValueError, match="lower doc_stride or raise max_seq_length"):
        _map(examples, prepare_train_features, tokenizer, max_seq_length=16, doc_stride=8)


def test_write_qa_predictions(tmp_path, tokenizer):
    examples = _examples(("q", "what?", CONTEXT, None))
    features, starts, ends = _eval_windows(tokenizer, examples)
    starts[:, 0] = ends[:, 0] = 9.0
    result = postprocess_qa_predictions(examples, features, starts, ends, version_2_with_negative=True)
    paths = write_qa_predictions(result, tmp_path, prefix="eval")
    assert [p.name for p in paths] == ["eval_predictions.json", "eval_nbest_predictions.json",
                                      "eval_null_odds.json"]
    assert json.loads(paths[0].read_text()) == {"q": ""}
    assert json.loads(paths[1].read_text())["q"][0]["text"] == ""

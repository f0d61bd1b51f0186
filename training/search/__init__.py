"""Search with openbert: sentence embeddings (bi-encoders) and re-rankers (cross-encoders) trained and evaluated with
sentence-transformers on openbert encoders, and `openbert search` (index documents, query them).

    embeddings.py   `openbert finetune embeddings`: pairs, triplets or scored pairs -> a SentenceTransformer
    reranker.py     `openbert finetune reranker`: question-document pairs -> a CrossEncoder re-ranking a retriever
    pair_job.py     what both jobs share; arguments.py their options; data.py their data; models.py loading
    evaluation.py   similarity (Spearman), retrieval (nDCG@10, MRR@10, Recall@k) and re-ranking evaluation
    index.py        `openbert search index`: documents -> chunks -> embeddings, saved next to the model
    query.py        `openbert search query`: top-k documents for a query, optionally re-ranked

Needs the `search` extra (`pip install 'openbert[search]'`: sentence-transformers and peft).
"""

import importlib.util

if importlib.util.find_spec("sentence_transformers") is None:
    raise ImportError("openbert's search commands need sentence-transformers: pip install 'openbert[search]'")

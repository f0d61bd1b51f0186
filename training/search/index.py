"""`openbert search index`: embed documents with a sentence-embedding model and save the index next to it.

    openbert search index --model_name_or_path out/embeddings --documents docs/ notes.jsonl
    openbert search index --model_name_or_path out/embeddings --documents docs/ --index_dir my_index

Documents are named by files, folders or glob patterns: a text file (any suffix the reader does not take as records)
is one document, a JSON lines/JSON/CSV/TSV/Parquet/Arrow file holds one document per record (`--text_column`). A
document longer than the model's maximum input length is cut into overlapping chunks of at most that many tokens
(`--chunk_overlap` tokens shared by neighbours), so that no text is silently truncated; each chunk is embedded
(with the model's "document" prompt, if it has one). A query later ranks documents by their best chunk.

The index is a folder (default: `search_index/` inside the model folder): `embeddings.safetensors` (float32, one row
per chunk), `chunks.jsonl` (document, character span and text of every chunk) and `index.json` (the model it was
built with and how). Brute-force similarity over a NumPy-sized matrix answers a query in milliseconds up to about a
million chunks on a CPU, so no vector database is involved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from openbert.tokenization.command_line import parse_command_line
from openbert.tokenization.data_files import data_format, expand_data_files, iter_lines, iter_records, record_text

from .models import load_sentence_transformer

COMMAND = "search index"
INDEX_FOLDER = "search_index"
EMBEDDINGS_FILE, CHUNKS_FILE, CONFIG_FILE = "embeddings.safetensors", "chunks.jsonl", "index.json"


@dataclass(frozen=True)
class Chunk:
    """A piece of a document that fits the model: where it comes from and its text."""

    document: str
    start: int  # character offsets into the document
    end: int
    text: str


@dataclass
class IndexArguments:
    model_name_or_path: str = field(metadata={
        "help": "The sentence-embedding model (a `openbert finetune embeddings` output, a converted "
                "sentence-transformers model)."})
    documents: list[str] = field(metadata={"help": "Files, folders or glob patterns of the documents to index."})
    index_dir: str | None = field(default=None, metadata={
        "help": f"Where to write the index. Default: {INDEX_FOLDER}/ inside the model folder."})
    text_column: str = field(default="text", metadata={
        "help": "The field holding a document's text in record files (JSON lines, CSV, ...)."})
    max_seq_length: int | None = field(default=None, metadata={
        "help": "Longest chunk in tokens. Default: the model's maximum input length."})
    chunk_overlap: int = field(default=32, metadata={"help": "Tokens that neighbouring chunks of a document share."})
    batch_size: int = field(default=32, metadata={"help": "Chunks embedded at once."})
    disable_tqdm: bool = field(default=False, metadata={"help": "Do not show progress bars."})


def read_documents(entries: Sequence[str], text_column: str = "text") -> Iterator[tuple[str, str]]:
    """`(name, text)` of every document: a text file whole (named by its path), a record file's records (named
    `path:row`). Blank documents are skipped."""
    for path in expand_data_files(entries):
        if data_format(path) == "text":
            documents = [(str(path), "\n".join(iter_lines(path)))]
        else:
            documents = ((f"{path}:{row}", record_text(record, text_column, f"{path} row {row}") or "")
                         for row, record in enumerate(iter_records(path), start=1))
        yield from ((name, text) for name, text in documents if text.strip())


def chunk_document(name: str, text: str, tokenizer: Any, max_tokens: int, overlap: int) -> list[Chunk]:
    """`text` cut into windows of at most `max_tokens` tokens, each starting `max_tokens - overlap` tokens after
    the previous one; a chunk's text is the document's own characters from its first token to its last."""
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"--chunk_overlap must lie in [0, {max_tokens}) (the chunk length), got {overlap}")
    spans = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    chunks = []
    for first in range(0, max(len(spans) - overlap, 1), max_tokens - overlap):
        window = spans[first:first + max_tokens]
        if window:
            start, end = window[0][0], window[-1][1]
            chunks.append(Chunk(name, start, end, text[start:end]))
    return chunks


def build_index(model: Any, documents: Sequence[str], *, text_column: str = "text", max_seq_length: int | None = None,
                chunk_overlap: int = 32, batch_size: int = 32, progress: bool = True) -> tuple[torch.Tensor,
                                                                                                 list[Chunk]]:
    """The embeddings (one float32 row per chunk) and chunks of `documents` under `model` (a SentenceTransformer)."""
    # Two of the model's positions go to [CLS] and [SEP].
    max_tokens = (max_seq_length or model.max_seq_length) - 2
    chunks = [chunk for name, text in tqdm(read_documents(documents, text_column), desc="Chunking documents",
                                           unit=" documents", disable=not progress)
              for chunk in chunk_document(name, text, model.tokenizer, max_tokens, chunk_overlap)]
    if not chunks:
        raise ValueError(f"no text to index in {', '.join(documents)}")
    embeddings = model.encode_document([chunk.text for chunk in chunks], batch_size=batch_size,
                                       show_progress_bar=progress, convert_to_tensor=True)
    return embeddings.float().cpu(), chunks


def default_index_dir(model_name_or_path: str | os.PathLike) -> Path:
    return Path(model_name_or_path) / INDEX_FOLDER


def save_index(index_dir: Path, embeddings: torch.Tensor, chunks: Sequence[Chunk], config: dict[str, Any]) -> Path:
    index_dir.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": embeddings.contiguous()}, index_dir / EMBEDDINGS_FILE)
    with (index_dir / CHUNKS_FILE).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(asdict(chunk), ensure_ascii=False) + "\n" for chunk in chunks)
    (index_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return index_dir


def load_index(index_dir: str | os.PathLike) -> tuple[torch.Tensor, list[Chunk], dict[str, Any]]:
    """The embeddings, chunks and config of the index in `index_dir`."""
    index_dir = Path(index_dir)
    if not (index_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{index_dir} holds no search index: build one with `openbert search index`")
    with (index_dir / CHUNKS_FILE).open(encoding="utf-8") as handle:
        chunks = [Chunk(**json.loads(line)) for line in handle]
    config = json.loads((index_dir / CONFIG_FILE).read_text())
    return load_file(index_dir / EMBEDDINGS_FILE)["embeddings"], chunks, config


def index_documents(args: IndexArguments) -> Path:
    """Build the index `args` describe and save it; return its folder."""
    model = load_sentence_transformer(args.model_name_or_path)
    embeddings, chunks = build_index(model, args.documents, text_column=args.text_column,
                                     max_seq_length=args.max_seq_length, chunk_overlap=args.chunk_overlap,
                                     batch_size=args.batch_size, progress=not args.disable_tqdm)
    config = {"model_name_or_path": str(Path(args.model_name_or_path).resolve()), "dimension": embeddings.shape[1],
              "similarity_fn_name": model.similarity_fn_name, "documents": len({c.document for c in chunks}),
              "chunks": len(chunks), "max_seq_length": args.max_seq_length or model.max_seq_length,
              "chunk_overlap": args.chunk_overlap}
    return save_index(Path(args.index_dir) if args.index_dir else default_index_dir(args.model_name_or_path),
                      embeddings, chunks, config)


ARGUMENTS = (IndexArguments,)
RENAMED_OPTIONS: dict[str, str] = {}


def main(argv: Sequence[str] | None = None, command: str = COMMAND) -> None:
    (args,) = parse_command_line(command, ARGUMENTS, argv, description=__doc__)
    index_dir = index_documents(args)
    config = json.loads((index_dir / CONFIG_FILE).read_text())
    print(f"indexed {config['documents']} documents ({config['chunks']} chunks) into {index_dir}")

"""A deterministic, offline sentence splitter for building next-sentence-prediction pairs.

NSP pairs must break only at sentence boundaries, so documents that are not already one sentence per
line need splitting. This splitter is rule-based (no model, no download, same output everywhere): it
breaks after `.`, `!`, `?` or `…` (plus any closing quotes/brackets) when whitespace and a token that
does not start in lower case follow, except after common abbreviations and single-letter initials; and
after the CJK full stops `。！？` with or without whitespace. It errs on the side of not splitting:
a missed boundary only makes a sentence longer, a false one can cut an NSP segment mid-sentence.
"""

from __future__ import annotations

import re

# Words that end in a period without ending the sentence ("Dr. Smith", "e.g. Paris", "No. 5").
# Lower-cased, without the final period; dotted forms like "e.g" and "U.S" are caught by the
# internal-period rule instead.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft rev gen col lt sgt capt cmdr adm gov sen rep pres hon messrs
    vs etc cf al approx ca fig figs eq eqs no nos vol vols pp p ch sec art ed eds trans op
    inc ltd co corp bros dept univ assn est
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)

# Sentence-final punctuation, then closing quotes/brackets, then the whitespace after them.
_LATIN_END = re.compile(r"""[.!?…]+["'”’»)\]]*(?=\s)""")
_CJK_END = re.compile(r"""[。！？]+["'”’»）」』]*""")
_OPENERS = "\"'“‘«([¿¡"


def _ends_with_abbreviation(text_before: str) -> bool:
    """True when the word right before a single final '.' is an abbreviation or an initial."""
    if not text_before or text_before[-1].isspace():
        return False  # a detached " ." (as in tokenised corpora like WikiText) ends a sentence
    word = text_before.rsplit(None, 1)[-1].lstrip(_OPENERS)
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. R. R. Tolkien", "H. americanus"
    if "." in word:
        return True  # dotted abbreviations: "e.g", "U.S", "Ph.D"
    return word.lower() in ABBREVIATIONS


def _starts_sentence(rest: str) -> bool:
    """True when `rest` (the text after the whitespace) can begin a new sentence."""
    first = rest.lstrip(_OPENERS)[:1]
    # Scripts without case (CJK, Arabic, ...) count as sentence starts; only lower case does not.
    return bool(first) and not first.islower()


def split_sentences(text: str) -> list[str]:
    """Split one paragraph (a single line of text) into its sentences, stripped and non-empty.

    Deterministic and offline; joining the result with single spaces gives back `text` up to whitespace.
    """
    sentences: list[str] = []
    start = 0
    boundaries = sorted(
        [(m.end(), "latin", m) for m in _LATIN_END.finditer(text)]
        + [(m.end(), "cjk", m) for m in _CJK_END.finditer(text)],
        key=lambda item: item[0],
    )
    for end, kind, match in boundaries:
        if end <= start:
            continue
        if kind == "latin":
            if not _starts_sentence(text[end:].lstrip()):
                continue
            if match.group().rstrip("\"'”’»)]") == "." and _ends_with_abbreviation(text[start:match.start()]):
                continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def document_sentences(document: str) -> list[str]:
    """Sentences of a document: every non-blank line, split further by `split_sentences`.

    A file in BERT's original format (one sentence per line) passes through unchanged; a paragraph per
    line is split into its sentences.
    """
    return [sentence for line in document.splitlines() for sentence in split_sentences(line)]

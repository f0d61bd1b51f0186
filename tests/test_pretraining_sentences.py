"""The offline sentence splitter used to cut documents into NSP segments."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openbert.training.pretraining.sentences import document_sentences, split_sentences


def test_splits_running_text_at_sentence_ends():
    text = 'Dr. Smith went to Washington. He said "Hello." Then he left! Did he? Yes.'
    assert split_sentences(text) == ["Dr. Smith went to Washington.", 'He said "Hello."', "Then he left!",
                                     "Did he?", "Yes."]


def test_does_not_split_after_abbreviations_initials_decimals_or_before_lower_case():
    assert split_sentences("J. R. R. Tolkien wrote it, e.g. The Hobbit. The U.S. Army came.") == [
        "J. R. R. Tolkien wrote it, e.g. The Hobbit.", "The U.S. Army came."]
    assert split_sentences("Pi is 3.14 exactly. No. 5 is here, see Fig. 2 and pp. 10-12.") == [
        "Pi is 3.14 exactly.", "No. 5 is here, see Fig. 2 and pp. 10-12."]
    assert split_sentences("It grows slowly... and then fast. Really.") == [
        "It grows slowly... and then fast.", "Really."]


def test_tokenised_wikitext_style_and_cjk():
    text = "It is related to the lobster , H. americanus . It may grow to 0 @.@ 7 m . In life , they are blue ."
    assert split_sentences(text) == ["It is related to the lobster , H. americanus .", "It may grow to 0 @.@ 7 m .",
                                     "In life , they are blue ."]
    assert split_sentences("我喜欢猫。你呢？很好！") == ["我喜欢猫。", "你呢？", "很好！"]


def test_documents_keep_one_sentence_per_line_files_as_they_are():
    lines = ["First sentence without a full stop", "Second one, also plain", "third starts lower case."]
    assert document_sentences("\n".join(lines)) == lines
    assert document_sentences("One. Two.\n\n  \nThree.") == ["One.", "Two.", "Three."]
    assert document_sentences("") == [] and document_sentences(" \n\t") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab A.!?\"') 12\u3002")), max_size=80))
def test_splitting_loses_nothing_and_is_deterministic(text):
    sentences = split_sentences(text)
    # Nothing lost or reordered (CJK full stops split without whitespace, so compare without it).
    assert "".join("".join(sentences).split()) == "".join(text.split())
    assert all(s and s == s.strip() for s in sentences)
    assert sentences == split_sentences(text)

import random

import pytest
from fakes import FakeEncoder

from searcher.chunking import check_chunking, chunk_document, embedding_input
from searcher.errors import InvalidInputError
from searcher.ingest import Document

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def random_text(rng: random.Random, n_paragraphs: int) -> str:
    paragraphs = []
    for _ in range(n_paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
            if rng.random() < 0.05:
                words.append("x" * rng.randint(50, 400))  # a "word" longer than any chunk
            sentences.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ".)"]))
        paragraphs.append(rng.choice([" ", "\n"]).join(sentences))
    return "\n\n".join(paragraphs)


def doc(text: str, title: str = "") -> Document:
    return Document(doc_id="d", title=title, text=text, source="/d.txt")


@pytest.mark.parametrize("seed", range(20))
def test_chunks_fit_the_window_cover_the_text_and_point_at_their_text(seed):
    rng = random.Random(seed)
    enc = FakeEncoder(max_seq_length=48)
    text = random_text(rng, rng.randint(1, 12))
    title = rng.choice(["", "A title", "A very long title " * 20])
    chunk_tokens, overlap = rng.choice([(48, 0), (48, 8), (24, 4), (16, 2)])
    chunks = chunk_document(doc(text, title), enc, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    lengths = enc.input_lengths([c.embedding_input for c in chunks])
    assert max(lengths) <= chunk_tokens
    covered = [False] * len(text)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        for i in range(c.start, c.end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "chunks move forward"


def test_overlap_repeats_the_end_of_the_previous_chunk():
    enc = FakeEncoder()
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_document(doc(text), enc, chunk_tokens=30, overlap_tokens=8)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "neighbouring chunks share text"
        assert len(enc.token_spans(text[b.start : a.end])) <= 8
    no_overlap = chunk_document(doc(text), enc, chunk_tokens=30, overlap_tokens=0)
    assert all(b.start >= a.end for a, b in zip(no_overlap, no_overlap[1:]))


def test_chunks_end_at_paragraph_breaks_when_they_can():
    enc = FakeEncoder()
    para = "Short sentence here. Another one follows."  # 8 tokens
    text = "\n\n".join([para] * 6)
    chunks = chunk_document(doc(text), enc, chunk_tokens=2 + 20, overlap_tokens=0)
    assert all(c.text.endswith("follows.") for c in chunks)


def test_title_is_prefixed_unless_the_chunk_starts_with_it():
    assert embedding_input("Title", "Title\n\nbody") == "Title\n\nbody"
    assert embedding_input("Title", "body") == "Title\nbody"
    assert embedding_input("", "body") == "body"


def test_whitespace_document_has_no_chunks():
    assert chunk_document(doc(" \n\n "), FakeEncoder(), chunk_tokens=32, overlap_tokens=0) == []


def test_chunk_settings_the_model_cannot_honour_are_rejected():
    with pytest.raises(InvalidInputError, match="exceeds the model's max_seq_length of 256"):
        check_chunking(512, 32, 256)
    with pytest.raises(InvalidInputError, match="less than half"):
        check_chunking(64, 32, 256)


@pytest.mark.model
def test_chunks_fit_the_real_model_window(minilm):
    rng = random.Random(7)
    text = random_text(rng, 40) + "\n\n" + "Ünïcödé façade naïve résumé " * 200
    chunks = chunk_document(doc(text, "A title"), minilm, chunk_tokens=256, overlap_tokens=32)
    lengths = minilm.input_lengths([c.embedding_input for c in chunks])
    assert max(lengths) <= minilm.info.max_seq_length == 256
    assert sum(lengths) / len(lengths) > 200, "chunks are filled, not tiny"
    # What the model itself sees: its tokenizer, with its own truncation, keeps every token of each chunk.
    for c in chunks[:5]:
        features = minilm.model.tokenize([c.embedding_input])
        assert int(features["attention_mask"].sum()) == minilm.input_lengths([c.embedding_input])[0]

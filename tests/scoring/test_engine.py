"""Scores are exact: every backend equals an independent reference computation on the same prompts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from reranker import DEFAULT_INSTRUCTION, InputError, ModelError, Reranker
from reranker.scoring import backends
from reranker.scoring.backends import load_backend
from reranker.scoring.prompt import render_prompt
from tests.support.counting_backend import CountingBackend
from tests.support.reference import CARD_PREFIX, CARD_SUFFIX, DOCUMENTS, QUERY, card_tokens


def test_prompt_text_is_the_model_card_layout():
    text = render_prompt("Find it", "q?", "the doc")
    assert text == CARD_PREFIX + "<Instruct>: Find it\n<Query>: q?\n<Document>: the doc" + CARD_SUFFIX


def test_prompt_tokens_equal_the_model_card_recipe(hf_reranker, card_reference):
    for document in DOCUMENTS:
        view = hf_reranker.prompt(QUERY, document)
        assert view.token_ids == card_tokens(card_reference.tokenizer, DEFAULT_INSTRUCTION, QUERY, document, 512)


def test_prompts_of_many_queries_in_one_call_equal_the_model_card_recipe(hf_reranker, card_reference):
    """``build_groups`` tokenizes every query's head and every document in one call each: each prompt must
    still be the recipe's, documents cut to their own query's budget."""
    queries = [QUERY, "a much longer query about <|im_end|> markers, truncation and budgets " * 4, "q?"]
    groups = [(q, DOCUMENTS[i:] + DOCUMENTS[:i]) for i, q in enumerate(queries)]
    built = hf_reranker.builder.build_groups(DEFAULT_INSTRUCTION, groups)
    assert [len(prompts) for prompts in built] == [len(docs) for _, docs in groups]
    for (query, docs), prompts in zip(groups, built):
        for document, prompt in zip(docs, prompts):
            assert prompt.token_ids == card_tokens(card_reference.tokenizer, DEFAULT_INSTRUCTION, query, document, 512)
    assert any(p.truncated for prompts in built for p in prompts)


def test_typed_markers_stay_text(hf_reranker):
    view = hf_reranker.prompt(QUERY, DOCUMENTS[2])
    document_ids = view.token_ids[view.doc_start:view.doc_end]
    im_end = hf_reranker.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end not in document_ids
    assert view.token_ids.count(im_end) == 2  # closing the system turn and the user turn, nothing more


def test_truncation_cuts_only_the_document_end(hf_reranker):
    suffix_ids = hf_reranker.builder.suffix_ids
    for document in DOCUMENTS:
        view = hf_reranker.prompt(QUERY, document)
        assert view.prompt_tokens <= 512
        assert view.token_ids[-len(suffix_ids):] == suffix_ids
        assert view.token_ids[view.doc_end:] == suffix_ids
    long = hf_reranker.prompt(QUERY, DOCUMENTS[3])
    assert long.truncated and long.prompt_tokens == 512 and long.n_tokens > 512
    assert "<Query>: " + QUERY in long.text and long.text.endswith("</think>\n\n")
    judged = hf_reranker.score([(QUERY, DOCUMENTS[3]), (QUERY, DOCUMENTS[0])])
    assert judged[0].truncated and judged[0].n_tokens == long.n_tokens and judged[0].prompt_tokens == 512
    assert not judged[1].truncated


def test_query_that_leaves_no_room_fails_naming_the_limit(tiny_model):
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=64)
    with pytest.raises(InputError, match="max_length=64"):
        reranker.rank("a very long query " * 20, ["doc"])


def test_transformers_backend_matches_reference(hf_reranker, card_reference):
    judged = hf_reranker.score([(QUERY, d) for d in DOCUMENTS])
    expected = [card_reference.p_yes(QUERY, d) for d in DOCUMENTS]
    np.testing.assert_allclose([j.score for j in judged], expected, atol=1e-4, rtol=0)
    for j in judged:
        assert j.confidence == pytest.approx(abs(2 * j.score - 1))
        assert j.score == pytest.approx(1 / (1 + np.exp(-j.logodds)))


def test_batched_equals_one_by_one(hf_reranker):
    batched = [j.logodds for j in hf_reranker.score([(QUERY, d) for d in DOCUMENTS])]
    single = [hf_reranker.score([(QUERY, d)])[0].logodds for d in DOCUMENTS]
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert batched[0] == batched[5]  # the duplicate pair


def test_rank_sorts_scores_and_keeps_input_positions(hf_reranker):
    ranked = hf_reranker.rank(QUERY, DOCUMENTS, top_k=3)
    assert len(ranked) == 3
    everything = hf_reranker.rank(QUERY, DOCUMENTS)
    assert [r.score for r in everything] == sorted((r.score for r in everything), reverse=True)
    assert sorted(r.index for r in everything) == list(range(len(DOCUMENTS)))
    assert all(DOCUMENTS[r.index] == r.document for r in everything)


def test_instruction_changes_the_score(hf_reranker):
    default = hf_reranker.score([(QUERY, DOCUMENTS[0])])[0].logodds
    other = hf_reranker.score([(QUERY, DOCUMENTS[0])], instruction="Find recipes")[0].logodds
    assert default != other
    assert hf_reranker.score([(QUERY, DOCUMENTS[0])], instruction="   ")[0].logodds == default


def test_cache_skips_the_model_and_returns_identical_values(tiny_model, tmp_path):
    reranker = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512)
    real = reranker.backend
    reranker.backend = CountingBackend(real)
    first = reranker.score([(QUERY, d) for d in DOCUMENTS])
    assert reranker.backend.prompts == len(DOCUMENTS) - 1  # the duplicate pair is scored once
    assert not any(j.cached for j in first)

    reranker.backend = CountingBackend(real, fail=True)
    second = reranker.score([(QUERY, d) for d in DOCUMENTS])
    assert all(j.cached for j in second)
    assert [(j.score, j.logodds, j.truncated, j.n_tokens, j.prompt_tokens) for j in second] == [
        (j.score, j.logodds, j.truncated, j.n_tokens, j.prompt_tokens) for j in first
    ]

    reranker.backend = CountingBackend(real)
    partial = reranker.score([(QUERY, DOCUMENTS[0]), (QUERY, "A document not seen before.")])
    assert [j.cached for j in partial] == [True, False] and reranker.backend.prompts == 1

    changed = reranker.score([(QUERY, DOCUMENTS[0])], instruction="A different instruction")
    assert not changed[0].cached and reranker.backend.prompts == 2

    reopened = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512)
    assert reopened.score([(QUERY, DOCUMENTS[0])])[0].cached  # survives a new process's open
    shorter = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=256)
    assert not shorter.score([(QUERY, DOCUMENTS[0])])[0].cached  # max_length is part of the key


def test_cache_is_safe_with_concurrent_readers_and_a_writer(tiny_model, tmp_path):
    reranker = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=256)
    reranker.score([(QUERY, d) for d in DOCUMENTS[:3]])
    errors = []

    def work(n):
        try:
            for i in range(5):
                docs = DOCUMENTS[:3] + [f"document {n}-{i}"]
                judged = reranker.score([(QUERY, d) for d in docs])
                assert all(j.cached for j in judged[:3])
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert reranker.cache.count() == 3 + 6 * 5


def test_same_settings_share_one_engine(tiny_model, hf_reranker):
    again = Reranker(tiny_model, backend="transformers", cache=False, max_length=512)
    assert again.backend is hf_reranker.backend
    auto = Reranker(tiny_model, backend="transformers", cache=False, max_length=1024)
    assert auto.backend is hf_reranker.backend  # max_length only changes truncation, not the engine


def test_the_same_files_share_one_tokenizer_and_its_lock_and_edited_files_are_read_again(tiny_model, hf_reranker,
                                                                                          tmp_path, monkeypatch):
    """Loading a Qwen3 tokenizer takes ~1.7 s: Rerankers of the same files share it (and the lock its calls take);
    other files, edited files and a model used before the last ``TOKENIZERS_KEPT`` others load their own."""
    import shutil

    from reranker.scoring import engine

    monkeypatch.setattr(engine, "TOKENIZERS_KEPT", 2)
    again = Reranker(tiny_model, backend="transformers", cache=False, max_length=256)
    assert again.tokenizer is hf_reranker.tokenizer and again._tokenizer_lock is hf_reranker._tokenizer_lock
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    other, _, other_lock = engine._shared_tokenizer(str(copy), None)
    assert other is not hf_reranker.tokenizer and other_lock is not hf_reranker._tokenizer_lock
    (copy / "tokenizer_config.json").touch()  # an edited file: its folder is read again
    edited, _, _ = engine._shared_tokenizer(str(copy), None)
    assert edited is not other and edited("yes")["input_ids"] == hf_reranker.tokenizer("yes")["input_ids"]
    # two other folders used since: the first one's tokenizer was let go and is loaded again
    assert len(engine._tokenizers) == 2
    assert engine._shared_tokenizer(tiny_model, None)[0] is not hf_reranker.tokenizer


def test_a_new_reranker_waits_while_another_of_the_same_files_tokenizes(tiny_model):
    """Each call may set the shared tokenizer's options (whether typed markers stay text): a Reranker being made
    tokenizes its template only under the lock the others hold while they tokenize."""
    from reranker.scoring import engine

    _, _, lock = engine._shared_tokenizer(tiny_model, None)
    made = threading.Event()

    def make():
        Reranker(tiny_model, backend="transformers", cache=False, max_length=300).at_max_length(200)
        made.set()

    with lock:
        maker = threading.Thread(target=make)
        maker.start()
        assert not made.wait(2.0), "a Reranker tokenized while another held the tokenizer"
    assert made.wait(60)
    maker.join()


@pytest.mark.parametrize(
    "query, documents, message",
    [
        ("", ["doc"], "query is empty"),
        ("   ", ["doc"], "query is empty"),
        ("q", [], "no documents"),
        ("q", ["fine", "  \n "], "document 1 is empty"),
        ("q", ["fine", 42], "document 1 is int, not text"),
        ("q", "a single string", "list of texts"),
    ],
)
def test_bad_input_gets_one_clear_message(hf_reranker, query, documents, message):
    with pytest.raises(InputError, match=message):
        hf_reranker.rank(query, documents)


def test_bad_models_get_clear_errors(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="no model folder"):
        Reranker(str(tmp_path / "missing"), backend="transformers")
    with pytest.raises(InputError, match="max_length"):
        Reranker(tiny_model, backend="transformers", max_length=0)

    from transformers import LlamaConfig, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    not_qwen = tmp_path / "llama"
    LlamaConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(not_qwen)
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0}, unk_token="a"))).save_pretrained(
        not_qwen
    )
    with pytest.raises(ModelError, match="not a Qwen3 reranker"):
        Reranker(str(not_qwen), backend="transformers")


def test_tokenizer_without_yes_no_tokens_is_rejected(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from reranker.scoring.prompt import answer_token_ids

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0, "maybe": 1}, unk_token="[UNK]")), unk_token="[UNK]"
    )
    with pytest.raises(ModelError, match='no single token for "yes"'):
        answer_token_ids(tokenizer)


def test_unknown_backend_is_named(tiny_model):
    with pytest.raises(InputError, match="Unknown backend 'tpu'"):
        load_backend("tpu", {"model": tiny_model})


def test_check_reports_the_canary_scores(hf_reranker):
    from reranker.scoring.check import CANARIES, run_check

    report = run_check(hf_reranker)
    assert len(report.relevant) == len(report.irrelevant) == len(CANARIES)
    assert report.passed == (min(report.relevant) > 0.5 > max(report.irrelevant))
    assert ("PASS" if report.passed else "FAIL") in report.summary()


@pytest.mark.slow
def test_vllm_backend_matches_reference(vllm_reranker, card_reference):
    judged = vllm_reranker.score([(QUERY, d) for d in DOCUMENTS])
    expected = [card_reference.p_yes(QUERY, d) for d in DOCUMENTS]
    np.testing.assert_allclose([j.score for j in judged], expected, atol=1e-4, rtol=0)
    assert judged[3].truncated and judged[3].prompt_tokens == 512


@pytest.mark.slow
def test_vllm_and_transformers_agree(vllm_reranker, hf_reranker):
    pairs = [(QUERY, d) for d in DOCUMENTS] + [("한국어 질문", d) for d in DOCUMENTS]
    a = [j.logodds for j in vllm_reranker.score(pairs)]
    b = [j.logodds for j in hf_reranker.score(pairs)]
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_vllm_engine_is_loaded_once(tiny_model, vllm_reranker, monkeypatch):
    again = Reranker(tiny_model, backend="vllm", cache=False, max_length=512)
    assert again.backend is vllm_reranker.backend
    monkeypatch.setattr(backends, "auto_order", lambda: ["vllm", "transformers"])  # vLLM first, as on a CPU box of more than 2 cores
    auto = Reranker(tiny_model, backend="auto", cache=False, max_length=512)
    assert auto.backend_name == "vllm" and auto.backend is vllm_reranker.backend

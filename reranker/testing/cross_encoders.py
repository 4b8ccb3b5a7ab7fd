"""Tiny random-weight Sentence-Transformers rerankers for tests, built without a model hub: a BERT
cross-encoder (a sequence classifier with one label) and a Qwen3 LLM reranker in the ``Transformer`` +
``LogitScore`` layout with its own chat template ("1"/"0" as its answer tokens, unlike Qwen3-Reranker's
"yes"/"no"). Their scores mean nothing; the tests check them against transformers directly."""

from __future__ import annotations

from pathlib import Path

from reranker.testing.synthetic import build_model

WORDS = ("the a an is of and to in what do does eat eats food giant panda pandas bear bears bamboo python "
         "library data frame frames koala koalas eucalyptus leaves china native main large mammals one").split()

# A template in the layout Sentence Transformers documents: one message per role, "query" and "document".
LOGIT_SCORE_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query. "
    "Answer only \"1\" (relevant) or \"0\" (not relevant).<|im_end|>\n<|im_start|>user\n"
    "<Query>: {{ messages | selectattr('role', 'eq', 'query') | map(attribute='content') | first }}\n"
    "<Document>: {{ messages | selectattr('role', 'eq', 'document') | map(attribute='content') | first }}"
    "<|im_end|>\n<|im_start|>assistant\n")


def build_bert_cross_encoder(folder: str | Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT sequence classifier (one label) with a word-level vocabulary, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = Path(folder)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=1, max_position_embeddings=256)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny BERT cross-encoder (random weights)\n")
    return folder


def build_logit_score_reranker(folder: str | Path, *, seed: int = 1) -> Path:
    """A random tiny Qwen3 causal LM as a Sentence-Transformers ``CrossEncoder`` (``Transformer`` +
    ``LogitScore("1", "0")``) with :data:`LOGIT_SCORE_TEMPLATE`, saved to ``folder``."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    folder = Path(folder)
    backbone = build_model(folder.parent / f"{folder.name}-backbone", "tiny", seed=seed,
                           max_position_embeddings=2048)
    transformer = Transformer(str(backbone), transformer_task="text-generation",
                              processor_kwargs={"chat_template": LOGIT_SCORE_TEMPLATE})
    one, zero = (transformer.tokenizer.convert_tokens_to_ids(t) for t in ("1", "0"))
    CrossEncoder(modules=[transformer, LogitScore(one, zero)], device="cpu").save(str(folder))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny LogitScore reranker (random weights)\n")
    return folder

"""The Qwen3-Reranker prompt, as data, and the token-level prompt builder every backend shares.

The layout follows the transformers recipe on the Qwen3-Reranker model card, which vLLM's own
``examples/pooling/score/template/qwen3_reranker.jinja`` also reproduces: a system turn, a user turn
``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {document}`` (single newlines), and the
assistant turn opened with an empty think block. (Other official examples differ by doubled
newlines or a duplicated ``<|im_end|>``; those are not what the model card's scores come from.)

Tokenization reproduces the recipe exactly: the recipe tokenizes prefix, user turn and suffix
separately. We split the user turn once more, right after ``<Document>:``; the Qwen2 pre-tokenizer
never joins ``:`` with the following space, so ``tokens(head) + tokens(" " + document)`` equals
``tokens(head + " " + document)`` token for token, and the head is tokenized once per query.

One deliberate difference: text typed by users (instruction, query, document) is tokenized with
special tokens split, so a document that contains ``<|im_end|>`` is read as those characters, not
as the control token that would end the turn. Text is data, never prompt structure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

from reranker.errors import InputError, ModelError

SYSTEM_MESSAGE = (
    'Judge whether the Document meets the requirements based on the Query and the Instruct '
    'provided. Note that the answer can only be "yes" or "no".'
)
PREFIX = f"<|im_start|>system\n{SYSTEM_MESSAGE}<|im_end|>\n<|im_start|>user\n"
HEAD = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"
DOCUMENT_LEAD = " "  # the space between "<Document>:" and the document text
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
# Instructions offered by name in the page; users save their own next to them (reranker.storage.presets).
INSTRUCTION_PRESETS = {
    "Web search (default)": DEFAULT_INSTRUCTION,
    "Question answering": "Given a question, retrieve passages that answer the question",
    "Code search": "Given a code search query, retrieve code snippets and documentation that implement or explain it",
    "Legal / patent":
        "Given a legal or patent query, retrieve statutes, case law, claims or patent passages relevant to it",
    "Product search":
        "Given a shopper's product search query, retrieve product listings that match what the shopper wants",
}
YES_TOKEN, NO_TOKEN = "yes", "no"


def template_fingerprint(prefix: str, head: str, document_lead: str, suffix: str) -> str:
    """A short hash of the prompt's fixed parts (system turn, head layout, document lead, assistant lead).

    It is part of every score-cache key, so an edited template never serves the scores of the old one.
    """
    payload = json.dumps([prefix, head, document_lead, suffix], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def render_prompt(instruction: str, query: str, document: str) -> str:
    """The full prompt text for one pair, untruncated, exactly as the model card builds it."""
    head = HEAD.format(instruction=instruction, query=query)
    return PREFIX + head + DOCUMENT_LEAD + document + SUFFIX


@dataclass(frozen=True)
class TokenPrompt:
    """One pair's prompt as token ids, with how its document was fitted into ``max_length``."""

    token_ids: list[int]
    doc_start: int  # index in token_ids of the document's first token
    doc_tokens: int  # the document's token count before truncation
    doc_tokens_kept: int

    @property
    def truncated(self) -> bool:
        return self.doc_tokens_kept < self.doc_tokens


class PromptBuilder:
    """Turns (instruction, query, documents) into token prompts that fit ``max_length``.

    Only the document is ever cut (from its end); prefix, instruction, query and suffix always
    survive. Prefix and suffix are tokenized once, the head once per (instruction, query), and
    documents in batched calls of the fast tokenizer.
    """

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        # the template as it is now, read once: the tokens built and the fingerprint always agree
        self.head, self.document_lead = HEAD, DOCUMENT_LEAD
        self.fingerprint = template_fingerprint(PREFIX, HEAD, DOCUMENT_LEAD, SUFFIX)
        self.prefix_ids = self._encode([PREFIX], split_special=False)[0]
        self.suffix_ids = self._encode([SUFFIX], split_special=False)[0]
        self.yes_id, self.no_id = answer_token_ids(tokenizer)
        self._fixed = len(self.prefix_ids) + len(self.suffix_ids)

    def _encode(self, texts: Sequence[str], split_special: bool) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(
            list(texts),
            add_special_tokens=False,
            split_special_tokens=split_special,
            return_attention_mask=False,
        )["input_ids"]

    def document_budget(self, head_ids: Sequence[int]) -> int:
        """How many document tokens fit next to this head; raises if not even one does."""
        budget = self.max_length - self._fixed - len(head_ids)
        if budget < 1:
            raise InputError(
                f"max_length={self.max_length} tokens is too small: the prompt without the document "
                f"already takes {self._fixed + len(head_ids)} tokens (instruction, query and the "
                f"fixed template). Raise max_length or shorten the query/instruction."
            )
        return budget

    def build(self, instruction: str, query: str, documents: Sequence[str]) -> list[TokenPrompt]:
        """Token prompts for one query against many documents."""
        return self.build_groups(instruction, [(query, documents)])[0]

    def build_groups(self, instruction: str,
                     groups: Sequence[tuple[str, Sequence[str]]]) -> list[list[TokenPrompt]]:
        """Token prompts for several (query, documents) groups: one list per group, in order.

        All heads go to the fast tokenizer in one call and all documents in another, so its threads
        share out the work of a large call instead of tokenizing one query's documents at a time.
        """
        heads = self._encode([self.head.format(instruction=instruction, query=q) for q, _ in groups],
                             split_special=True)
        budgets = [self.document_budget(head) for head in heads]
        doc_ids = iter(self._encode([self.document_lead + d for _, docs in groups for d in docs], split_special=True))
        built = []
        for head, budget, (_, documents) in zip(heads, budgets, groups):
            start = len(self.prefix_ids) + len(head)
            prompts = []
            for ids in (next(doc_ids) for _ in documents):
                kept = ids[:budget]
                prompts.append(
                    TokenPrompt(
                        token_ids=self.prefix_ids + head + kept + self.suffix_ids,
                        doc_start=start,
                        doc_tokens=len(ids),
                        doc_tokens_kept=len(kept),
                    )
                )
            built.append(prompts)
        return built

    def render(self, prompt: TokenPrompt) -> str:
        """The prompt text the model actually sees (after truncation)."""
        return self.tokenizer.decode(prompt.token_ids, skip_special_tokens=False)

    def first_tokens(self, texts: Sequence[str], max_tokens: int) -> tuple[list[str], int]:
        """Each document cut after its first ``max_tokens`` tokens (counted as the prompt tokenizes it), and how
        many were cut. A cut falls on a token boundary of the original text."""
        lead = self.document_lead
        encoded = self.tokenizer([lead + t for t in texts], add_special_tokens=False, split_special_tokens=True,
                                 return_offsets_mapping=True, return_attention_mask=False)
        kept, cut = [], 0
        for text, offsets in zip(texts, encoded["offset_mapping"]):
            if len(offsets) > max_tokens:
                text = text[: max(offsets[max_tokens - 1][1] - len(lead), 0)] or text[:1]
                cut += 1
            kept.append(text)
        return kept, cut


def answer_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of the single tokens "yes" and "no", looked up from the tokenizer."""
    ids = []
    for word in (YES_TOKEN, NO_TOKEN):
        encoded = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
            raise ModelError(
                f'The tokenizer has no single token for "{word}" (it encodes as {encoded}): '
                "this is not a Qwen3 reranker tokenizer."
            )
        ids.append(encoded[0])
    for marker in ("<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        if tokenizer.convert_tokens_to_ids(marker) in (None, tokenizer.unk_token_id):
            raise ModelError(f"The tokenizer lacks the chat token {marker}: this is not a Qwen3 reranker.")
    return ids[0], ids[1]

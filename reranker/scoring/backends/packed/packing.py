"""Packing prompts without padding, each shared head once: pure functions over numpy token arrays.

Consecutive prompts that start with the same tokens (one query's documents share the system prompt, instruction
and query) form a group: the shared **head** is computed once, and each prompt's remaining tokens (its **tail**)
attend to the head's keys and values and then causally to their own. A batch lays every head out first, then
every tail; index arrays say which keys each sequence attends to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


@dataclass
class Group:
    """Prompts (indices into the caller's list) that share their first ``head`` tokens."""

    members: list[int]
    head: int


@dataclass(frozen=True)
class Layout:
    """One packed batch, as the model's forward pass reads it (numpy; the backend moves it to the device)."""

    order: list[int]  # the prompt index of each score, in output order
    ids: np.ndarray  # tokens: every head, then every tail
    positions: np.ndarray  # each token's position in its prompt
    kv_index: np.ndarray  # per sequence (heads, then tails), the token indices of its keys, concatenated
    cu_q: np.ndarray  # int32 cumulative query lengths per sequence
    cu_k: np.ndarray  # int32 cumulative key lengths per sequence
    last: np.ndarray  # the token index of each tail's last position (the score's)
    last_kv_index: np.ndarray  # per tail, the token indices of its keys (what its last position attends to)
    cu_last_k: np.ndarray  # int32 cumulative key lengths per tail
    max_q: int
    max_k: int
    max_last_k: int


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def group_prompts(prompts: Sequence[np.ndarray]) -> list[Group]:
    """Consecutive prompts grouped by a shared head, in order.

    A prompt joins the current group while it shares at least the group's head (the head shrinks to what all
    members share only when that still saves more tokens than it costs). A prompt that shares more with the
    next prompt than with the previous one starts a group of its own. Every member keeps at least its last
    token outside the head: that position's output is the score.
    """
    groups: list[Group] = []
    n = len(prompts)
    lcp = [0] + [common_prefix(prompts[i - 1], prompts[i]) for i in range(1, n)]
    for i in range(n):
        own = len(prompts[i]) - 1
        if groups:
            group = groups[-1]
            size = len(group.members)
            shared = min(lcp[i], own, group.head)
            if size == 1:
                starts_own = i + 1 < n and lcp[i + 1] > lcp[i]
                join = not starts_own and shared > 0
            else:
                join = size * shared >= (size - 1) * group.head and shared > 0
            if join:
                group.members.append(i)
                group.head = shared
                continue
        groups.append(Group([i], own))
    for group in groups:
        if len(group.members) == 1:
            group.head = 0  # a lone prompt needs no split
    return groups


def batches(prompts: Sequence[np.ndarray], groups: list[Group], batch_tokens: int
            ) -> Iterator[list[tuple[int, list[int]]]]:
    """Batches of (head length, members) entries of about ``batch_tokens`` computed tokens each; a group too
    large for one batch is split, each part computing the head again."""
    pieces: list[tuple[int, list[int]]] = []
    for group in groups:
        chunk, tokens = [], group.head
        for i in group.members:
            tail = len(prompts[i]) - group.head
            if chunk and tokens + tail > batch_tokens:
                pieces.append((group.head, chunk))
                chunk, tokens = [], group.head
            chunk.append(i)
            tokens += tail
        pieces.append((group.head, chunk))
    batch, tokens = [], 0
    for head, members in pieces:
        size = head + sum(len(prompts[i]) - head for i in members)
        if batch and tokens + size > batch_tokens:
            yield batch
            batch, tokens = [], 0
        batch.append((head, members))
        tokens += size
    if batch:
        yield batch


def layout(prompts: Sequence[np.ndarray], batch: list[tuple[int, list[int]]]) -> Layout:
    """The token layout of one batch: every head, then every tail."""
    ids, positions, head_start, offset = [], [], [], 0
    for head, members in batch:
        head_start.append(offset)
        if head:
            ids.append(prompts[members[0]][:head])
            positions.append(np.arange(head))
        offset += head
    lq, lk, kv, last_kv, last_lk, last, order = [], [], [], [], [], [], []
    for (head, _), start in zip(batch, head_start):  # heads attend to themselves
        if head:
            lq.append(head)
            lk.append(head)
            kv.append(np.arange(start, start + head))
    for (head, members), start in zip(batch, head_start):
        for i in members:
            tail = prompts[i][head:]
            ids.append(tail)
            positions.append(np.arange(head, len(prompts[i])))
            keys = np.concatenate([np.arange(start, start + head), np.arange(offset, offset + len(tail))])
            lq.append(len(tail))
            lk.append(len(keys))
            kv.append(keys)
            last_kv.append(keys)
            last_lk.append(len(keys))
            offset += len(tail)
            last.append(offset - 1)
            order.append(i)
    cumulative = lambda lengths: np.cumsum([0] + lengths).astype(np.int32)  # noqa: E731
    return Layout(order=order, ids=np.concatenate(ids).astype(np.int64),
                  positions=np.concatenate(positions).astype(np.int64),
                  kv_index=np.concatenate(kv).astype(np.int64), cu_q=cumulative(lq), cu_k=cumulative(lk),
                  last=np.asarray(last, dtype=np.int64), last_kv_index=np.concatenate(last_kv).astype(np.int64),
                  cu_last_k=cumulative(last_lk), max_q=int(max(lq)), max_k=int(max(lk)),
                  max_last_k=int(max(last_lk)))

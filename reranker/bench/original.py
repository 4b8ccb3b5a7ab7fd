"""Path (b): the original design's scoring, reproduced as written, for comparison only.

It is the Qwen3-Reranker model card's vLLM recipe: each pair becomes a chat (system + user message)
rendered and tokenized by ``apply_chat_template``, truncated, followed by the assistant suffix tokens,
then vLLM ``generate`` with ``max_tokens=1, logprobs=20, allowed_token_ids=[yes, no]``, in batches, and
the score is read from the top-20 logprobs with -10 for a missing token. (That fallback gives wrong
scores, see NOTES; it is timed here, never used elsewhere.)
"""

from __future__ import annotations

import math

from reranker.scoring.prompt import SUFFIX, SYSTEM_MESSAGE

# The branches of Qwen3's chat template that a system + user conversation takes (tools and assistant
# turns omitted). Used only when the model folder's tokenizer has no chat template (the synthetic models).
QWEN3_CHAT_TEMPLATE = """\
{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""


class OriginalDesign:
    """The model card's vLLM reranking recipe, with the engine settings it uses."""

    def __init__(self, model: str, *, dtype: str, max_model_len: int, max_length: int,
                 memory_fraction: float, enforce_eager: bool, batch_size: int):
        import os

        from transformers import AutoTokenizer
        from vllm import LLM, SamplingParams

        # Forking the engine after torch has touched CUDA fails ("Cannot re-initialize CUDA"); spawn always works.
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        if not self.tokenizer.chat_template:
            self.tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
        self.llm = LLM(model=model, dtype=dtype, max_model_len=max_model_len, enable_prefix_caching=True,
                       gpu_memory_utilization=memory_fraction, enforce_eager=enforce_eager)
        self.yes = self.tokenizer.convert_tokens_to_ids("yes")
        self.no = self.tokenizer.convert_tokens_to_ids("no")
        self.suffix = self.tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.max_length = max_length
        self.batch_size = batch_size
        self.params = SamplingParams(temperature=0, max_tokens=1, logprobs=20,
                                     allowed_token_ids=[self.yes, self.no])
        self._builder = None  # for the generate lever (score_by_ids)

    def prompts(self, pairs, instruction: str) -> list[list[int]]:
        chats = [[{"role": "system", "content": SYSTEM_MESSAGE},
                  {"role": "user", "content": f"<Instruct>: {instruction}\n<Query>: {q}\n<Document>: {d}"}]
                 for q, d in pairs]
        ids = self.tokenizer.apply_chat_template(chats, tokenize=True, add_generation_prompt=False,
                                                 enable_thinking=False)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return [i[: self.max_length] + self.suffix for i in ids]

    def score(self, pairs, instruction: str, batch_size: int | None = None) -> tuple[list[float], int]:
        """Scores as the recipe computes them, and the number of prompt tokens read."""
        batch_size = batch_size or self.batch_size
        scores, tokens = [], 0
        for start in range(0, len(pairs), batch_size):
            prompts = self.prompts(pairs[start:start + batch_size], instruction)
            tokens += sum(len(p) for p in prompts)
            outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], self.params, use_tqdm=False)
            for output in outputs:
                final = output.outputs[0].logprobs[-1]
                yes = final[self.yes].logprob if self.yes in final else -10
                no = final[self.no].logprob if self.no in final else -10
                scores.append(math.exp(yes) / (math.exp(yes) + math.exp(no)))
        return scores, tokens

    def score_by_ids(self, pairs, instruction: str) -> tuple[list[float], int]:
        """The generate lever (not the recipe): this project's token prompts in one ``generate`` call asking for the
        "yes" and "no" log-probabilities by id (``logprob_token_ids``), so both are always there and exact."""
        from vllm import SamplingParams

        from reranker.scoring.prompt import PromptBuilder

        if self._builder is None:
            self._builder = PromptBuilder(self.tokenizer, self.max_length)
        groups: dict[str, list[str]] = {}
        for query, document in pairs:
            groups.setdefault(query, []).append(document)
        prompts = [p.token_ids for group in self._builder.build_groups(instruction, list(groups.items())) for p in group]
        params = SamplingParams(temperature=0, max_tokens=1, logprob_token_ids=[self.yes, self.no])
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        scores = []
        for output in outputs:
            final = output.outputs[0].logprobs[-1]
            yes, no = final[self.yes].logprob, final[self.no].logprob
            scores.append(1 / (1 + math.exp(no - yes)))
        return scores, sum(len(p) for p in prompts)

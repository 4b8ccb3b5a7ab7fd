"""openvino backend: the transformers backend's model, converted to OpenVINO and run by its CPU plugin.

The model is loaded by transformers in float32 and converted at load (OpenVINO's PyTorch frontend) into one graph:
token ids, position ids, each row's last position and the keys and values of a shared head (of any length, none
included) in; the log-odds at each row's last position and the keys and values of every position out. Two models
are compiled from it: one that returns the keys and values (for a query's head, computed once) and one that
returns only the log-odds (for the documents that follow it). Batching and head sharing are the transformers
backend's (``TransformersBackend.score_logodds``); only the arithmetic runs in OpenVINO.

Precision is explicit: OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has bf16 units, so the
inference precision is set to the engine's ``dtype``; bfloat16 is refused where the CPU cannot compute it. On the
2-core AMD EPYC box (AVX2) OpenVINO float32 scored a 20-document request in 42.7 s against transformers float32's
54.7 s, with the same scores to 4.3e-6 (benchmarks/results/cpu_paths.md).

The graph is traced: transformers' mask code takes the branch it took for the example (a head's keys and values
present, several tokens a row), which computes the general causal mask and so holds for every shape; the tests
check one-token tails, no head, and batches split by the token budget against the transformers backend.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from reranker.errors import BackendUnavailable, ModelError
from reranker.scoring.backends.transformers_backend import TransformersBackend

HINTS = {"float32": "f32", "bfloat16": "bf16"}  # the engine's dtype -> OpenVINO's inference precision


def openvino_computes_bf16() -> bool:
    """Whether OpenVINO's CPU plugin can compute in bfloat16 here (a CPU with AVX-512 BF16 or AMX)."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - no OpenVINO, or no CPU plugin: it cannot
        return False


class OpenVINOBackend(TransformersBackend):
    """A Qwen3 causal LM converted to OpenVINO, batched by length, each query's head computed once."""

    name = "openvino"

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int = 16384, max_batch_size: int = 64, share_heads: bool = True):
        try:
            import openvino as ov
        except Exception as exc:
            raise BackendUnavailable(
                f"OpenVINO is not usable here ({type(exc).__name__}: {exc}). "
                "Install it with `pip install -r requirements.txt`."
            ) from exc
        if dtype not in HINTS:
            raise BackendUnavailable(f"The openvino backend computes in float32 or bfloat16, not {dtype}.")
        if dtype == "bfloat16" and not openvino_computes_bf16():
            raise BackendUnavailable("OpenVINO cannot compute in bfloat16 on this CPU (it has no bf16 units).")
        super().__init__(model, revision=revision, dtype="float32", yes_id=yes_id, no_id=no_id,
                         batch_tokens=batch_tokens, max_batch_size=max_batch_size, share_heads=share_heads)
        self.precision = dtype
        self.device = "cpu (OpenVINO)"
        self.model, self.answer_rows = self.model.cpu(), self.answer_rows.cpu()
        try:
            graph = self._convert(ov)
            core = ov.Core()
            config = {"INFERENCE_PRECISION_HINT": HINTS[dtype]}
            self.scorer = core.compile_model(ov.Model([graph.output(0)], graph.get_parameters(), "logodds"), "CPU",
                                             config)
            self.header = core.compile_model(ov.Model([graph.output(1)], graph.get_parameters(), "keys_values"),
                                             "CPU", config)
        except Exception as exc:
            raise ModelError(f"OpenVINO could not convert {model!r}: {type(exc).__name__}: {exc}") from exc
        config = self.model.config
        self.cache_shape = (config.num_hidden_layers, 2, config.num_key_value_heads, config.head_dim)
        del self.model  # the compiled models hold their own copy of the weights

    def _convert(self, ov):
        """The graph, through OpenVINO's PyTorch frontend (what ``openvino.convert_model`` does, without its usage
        events; ``import openvino`` itself sends one unless the user opted out: README, "Installing")."""
        from openvino.frontend import FrontEndManager
        from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

        with self.torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=self.torch.jit.TracerWarning)  # the branches, above
            # weights copied, not shared: the torch model is released once the graph is compiled
            decoder = TorchScriptPythonDecoder(_graph_module(self.model, self.answer_rows),
                                               example_input=self._example(), shared_memory=False)
        frontend = FrontEndManager().load_by_framework("pytorch")
        loaded = frontend.load(decoder)
        for place, (shape, element_type) in zip(loaded.get_inputs(), self._inputs(ov)):
            loaded.set_partial_shape(place, ov.PartialShape(shape))
            loaded.set_element_type(place, element_type)
        return frontend.convert(loaded)

    def _example(self):
        """Inputs to trace the graph with: two rows of 7 tokens after a head of 5 (shapes stay dynamic)."""
        torch = self.torch
        config = self.model.config
        past = torch.zeros(config.num_hidden_layers, 2, 2, config.num_key_value_heads, 5, config.head_dim)
        return (torch.zeros(2, 7, dtype=torch.long), torch.arange(5, 12).expand(2, 7).contiguous(),
                torch.tensor([6, 3]), past)

    def _inputs(self, ov):
        config = self.model.config
        past = [config.num_hidden_layers, 2, -1, config.num_key_value_heads, -1, config.head_dim]
        return [([-1, -1], ov.Type.i64), ([-1, -1], ov.Type.i64), ([-1], ov.Type.i64), (past, ov.Type.f32)]

    def kernels(self) -> dict[str, str]:
        """Every operation runs in OpenVINO's CPU plugin, at the engine's precision."""
        return {"model": f"OpenVINO CPU plugin, inference precision {HINTS[self.precision]}"}

    def _score_tails(self, head: tuple[int, ...], tails: list[Sequence[int]]) -> np.ndarray:
        """Log-odds of ``head + tail`` for each tail, the head's keys and values computed once. Each call has infer
        requests of its own: calls from several threads at once (the batch job's, the app's) never share one."""
        scorer, header = self.scorer.create_infer_request(), self.header.create_infer_request()
        layers, pair, kv_heads, head_dim = self.cache_shape
        out = np.zeros(len(tails), dtype=np.float32)
        head_cache = np.zeros((layers, pair, 1, kv_heads, 0, head_dim), np.float32)
        if head:
            ids = np.asarray([head], np.int64)
            head_cache = header.infer([ids, np.arange(len(head))[None], np.asarray([len(head) - 1]),
                                       head_cache])[0].copy()
        for batch in self.batches([len(t) for t in tails]):
            width = max(len(tails[i]) for i in batch)
            ids = np.full((len(batch), width), self.pad_id, np.int64)
            for row, i in enumerate(batch):
                ids[row, :len(tails[i])] = tails[i]
            positions = np.broadcast_to(np.arange(len(head), len(head) + width), ids.shape).copy()
            last = np.asarray([len(tails[i]) - 1 for i in batch], np.int64)
            past = np.repeat(head_cache, len(batch), axis=2)  # the head's keys and values, once per row
            out[batch] = scorer.infer([ids, positions, last, past])[0]
        return out

    def close(self) -> None:
        """Release the compiled models' memory."""
        del self.scorer, self.header, self.answer_rows


def _graph_module(model, answer_rows):
    """The module converted: transformers' Qwen3 over a head's keys and values, projected onto [no, yes]."""
    import torch
    from transformers import DynamicCache

    class Scorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("answer_rows", answer_rows)

        def forward(self, input_ids, position_ids, last, past):
            cache = DynamicCache(config=self.model.config)
            for i, layer in enumerate(cache.layers):  # the head's keys and values, as DynamicCache holds them
                layer.dtype, layer.device = past.dtype, past.device
                layer.keys, layer.values, layer.is_initialized = past[i, 0], past[i, 1], True
            out = self.model.model(input_ids=input_ids, position_ids=position_ids, past_key_values=cache,
                                   use_cache=True)
            hidden = out.last_hidden_state
            final = hidden[torch.arange(hidden.shape[0]), last]
            logits = final @ self.answer_rows.T
            keys_values = torch.stack([torch.stack([layer.keys, layer.values]) for layer in cache.layers])
            return logits[:, 1] - logits[:, 0], keys_values

    return Scorer().eval()

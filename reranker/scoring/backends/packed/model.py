"""Qwen3 as the fast backend runs it: the weights, and one forward pass over a packed batch.

The forward is written once, over an ops table (``ops.py``): the reference table is transformers' arithmetic in
plain torch, so in float32 the scores equal the model card's recipe; the fused table does the same in fewer
passes over memory. The residual stream is carried beside the normed hidden state (``add_rms_norm`` returns
both), as vLLM's Qwen3 does. The last layer computes attention only at each prompt's last position, and only that
position's hidden state is projected, onto the "yes" and "no" rows of the lm_head, in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reranker.scoring.backends.packed.ops import Ops, Rope, Shape


@dataclass
class Layer:
    ln1: torch.Tensor  # input RMSNorm
    qkv: torch.Tensor  # q, k and v projections, stacked
    q_norm: torch.Tensor
    k_norm: torch.Tensor
    o: torch.Tensor
    ln2: torch.Tensor  # post-attention RMSNorm
    gate_up: torch.Tensor  # gate and up projections, stacked
    down: torch.Tensor


@dataclass
class Weights:
    shape: Shape
    embed: torch.Tensor
    layers: list[Layer]
    final_norm: torch.Tensor
    answer_rows: torch.Tensor  # lm_head rows [no, yes], float32
    rope: Rope
    max_positions: int


@dataclass
class Plan:
    """A packed batch on the device (``packing.Layout``'s arrays as tensors)."""

    ids: torch.Tensor
    positions: torch.Tensor
    kv_index: torch.Tensor
    cu_q: torch.Tensor
    cu_k: torch.Tensor
    last: torch.Tensor
    last_kv_index: torch.Tensor
    cu_last_q: torch.Tensor  # 0, 1, 2, ...: one query per tail in the last layer
    cu_last_k: torch.Tensor
    max_q: int
    max_k: int
    max_last_k: int


def load_weights(hf, yes_id: int, no_id: int) -> Weights:
    """The weights of a transformers ``Qwen3ForCausalLM`` (already on its device and in its dtype)."""
    config, inner = hf.config, hf.model
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    shape = Shape(hidden=config.hidden_size, heads=config.num_attention_heads, kv_heads=config.num_key_value_heads,
                  head_dim=head_dim, intermediate=config.intermediate_size, eps=config.rms_norm_eps)
    with torch.no_grad():
        layers = [Layer(ln1=layer.input_layernorm.weight, ln2=layer.post_attention_layernorm.weight,
                        qkv=torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight,
                                       layer.self_attn.v_proj.weight]),
                        q_norm=layer.self_attn.q_norm.weight, k_norm=layer.self_attn.k_norm.weight,
                        o=layer.self_attn.o_proj.weight,
                        gate_up=torch.cat([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight]),
                        down=layer.mlp.down_proj.weight)
                  for layer in inner.layers]
        embed = inner.embed_tokens.weight
        answer_rows = hf.get_output_embeddings().weight[[no_id, yes_id]].float().clone()
        # rotary tables for every position, by the model's own rotary module (its scaling rules)
        positions = torch.arange(config.max_position_embeddings, device=embed.device)[None]
        cos, sin = inner.rotary_emb(embed[:1], positions)
    layers = [Layer(**{k: v.detach() for k, v in vars(layer).items()}) for layer in layers]
    return Weights(shape=shape, embed=embed.detach(), layers=layers, final_norm=inner.norm.weight.detach(),
                   answer_rows=answer_rows, rope=Rope.from_tables(cos[0], sin[0]),
                   max_positions=config.max_position_embeddings)


def forward(w: Weights, ops: Ops, plan: Plan) -> torch.Tensor:
    """logit(yes) - logit(no) at each tail's last position, for one packed batch (float32)."""
    s = w.shape
    residual = F.embedding(plan.ids, w.embed)
    h = ops.rms_norm(residual, w.layers[0].ln1, s.eps)
    final = len(w.layers) - 1
    for index, layer in enumerate(w.layers):
        qkv = ops.qk_norm_rope(F.linear(h, layer.qkv), plan.positions, layer.q_norm, layer.k_norm, w.rope, s)
        n = qkv.shape[0]
        q, k, v = qkv.split([s.q_size, s.kv_size, s.kv_size], dim=-1)
        q, k, v = (q.view(n, s.heads, s.head_dim), k.view(n, s.kv_heads, s.head_dim),
                   v.view(n, s.kv_heads, s.head_dim))
        if index < final:
            attn = ops.attention(q, k.index_select(0, plan.kv_index), v.index_select(0, plan.kv_index),
                                 plan.cu_q, plan.cu_k, plan.max_q, plan.max_k)
        else:  # only each tail's last position is read from here on
            attn = ops.attention(q.index_select(0, plan.last), k.index_select(0, plan.last_kv_index),
                                 v.index_select(0, plan.last_kv_index), plan.cu_last_q, plan.cu_last_k, 1,
                                 plan.max_last_k)
            residual = residual.index_select(0, plan.last)
        h, residual = ops.add_rms_norm(F.linear(attn.reshape(len(attn), s.q_size), layer.o), residual, layer.ln2,
                                       s.eps)
        h = F.linear(ops.silu_and_mul(F.linear(h, layer.gate_up)), layer.down)
        following = w.layers[index + 1].ln1 if index < final else w.final_norm
        h, residual = ops.add_rms_norm(h, residual, following, s.eps)
    logits = h.float() @ w.answer_rows.T
    return logits[:, 1] - logits[:, 0]

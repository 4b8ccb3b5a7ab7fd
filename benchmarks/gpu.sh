#!/usr/bin/env bash
# The GPU benchmark runs behind docs/benchmarks.md, on a lent H100 with vLLM 0.26 carried as in
# ../shared/gpu/README.md (after `bash .gpu/cK/receive.sh` for K = 1..4). Usage, from the checkout root:
#   bash benchmarks/gpu.sh model            # build the random-weight 0.6B-shaped model once
#   bash benchmarks/gpu.sh paths OUT        # paths (a), (c), (d) with the default engine settings
#   bash benchmarks/gpu.sh original OUT     # path (b)
#   bash benchmarks/gpu.sh levers OUT       # path (a) with other token budgets, and with enforce_eager
#   bash benchmarks/gpu.sh async OUT        # path (a) without, then with vLLM's async scheduling
#   bash benchmarks/gpu.sh engines OUT      # 1, then 2 vLLM engines sharing the GPU, all busy at once
set -u
export PYTHONPATH=/tmp/vllm-site:${PYTHONPATH:-} VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
MODEL=/tmp/qwen3-reranker-0.6b-random
WORKLOAD=(--model "$MODEL" --queries 100 --docs-per-query 20 --doc-tokens 256 --seed 0 --sweep-tokens 300000)
case "$1" in
  model)
    python3 -c "from reranker.testing.synthetic import build_model; build_model('$MODEL', '0.6B', dtype='bfloat16',
tiktoken_file='/tmp/vllm-carry/qwen.tiktoken')" && du -sh "$MODEL" ;;
  paths)
    python3 -m reranker.bench run "${WORKLOAD[@]}" --out "$2" --paths ours,cached,transformers --time-limit 520 ;;
  original)
    python3 -m reranker.bench run "${WORKLOAD[@]}" --out "$2" --paths original --time-limit 520 ;;
  levers)
    python3 -m reranker.bench run "${WORKLOAD[@]}" --out "$2" --paths '' --batched-tokens-sweep 8192,16384,65536 \
      --eager-lever --time-limit 520 ;;
  async)  # ours (async scheduling, the GPU default) against async_scheduling=False
    python3 -m reranker.bench run "${WORKLOAD[@]}" --out "$2" --paths ours --doc-sweep '' --sync-lever \
      --time-limit 540 ;;
  engines)
    python3 -m reranker.bench engines --model "$MODEL" --out "$2" --engines 2 --repeats 3 ;;
  *) echo "usage: bash benchmarks/gpu.sh model|paths|original|levers|async|engines [OUT]"; exit 2 ;;
esac

#!/usr/bin/env bash
# The H200 runs behind docs/benchmarks.md (issue 16), one step per device call, back to back; steps 1-4 each carry
# one vLLM part (../shared/gpu/README.md). From the checkout root on the GPU machine (GPU_PARTS: where .gpu is):
#   bash benchmarks/h200.sh 1   # part c1; build the random-weight 0.6B-shaped model
#   bash benchmarks/h200.sh 2   # part c2
#   bash benchmarks/h200.sh 3   # part c3
#   bash benchmarks/h200.sh 4   # part c4 (vLLM unpacks); fast backend, vLLM backend, original recipe: same prompts
#   bash benchmarks/h200.sh 5   # profiles (fast, vLLM), parity fast vs vLLM, REST latency (fast), fast sweeps
#   bash benchmarks/h200.sh 6   # vLLM with async scheduling off (the lever)
#   bash benchmarks/h200.sh 7   # after 1-3 instead of 4 (run 3): fast, fast in FP8, the recipe and the generate lever
#   bash benchmarks/h200.sh 8   # (run 3) parity of fast / fast FP8 / vLLM against float32, profile of fast FP8
#   bash benchmarks/h200.sh 9   # (run 4, after 1-3 and 7) parity of fast / fast FP8, profile of fast FP8
#   bash benchmarks/h200.sh 10  # (runs 6, 8-10, after 1-3) fast, fast in FP8, the recipe (run 6: FP8's activations
#                               # by torch.compile, since replaced by Triton kernels; run 8 then ran step 11's FP8
#                               # profile in the same call)
#   bash benchmarks/h200.sh 11  # parity of fast / fast FP8 against float32, profiles of fast FP8 and fast
#   bash benchmarks/h200.sh 12  # (run 7, after 1-3) profile of fast FP8, then step 10, then parity
# FP8 (runs 3-10) was removed from the product (docs/benchmarks.md, history): the steps that measured it now
# measure the bf16 fast backend only.
#   bash benchmarks/h200.sh 13  # (after 1-3) the GPU test tier (fused ops against torch, the fast backend against float32)
# (Run 1 of this script, before the fast backend used vLLM's fused kernels, also measured the transformers
# backend and the fast backend on torch ops alone: docs/bench/h200-run1.)
set -u
step=$1
OUT=${OUT:-/tmp/out}
export PYTHONPATH=/tmp/vllm-site:${PYTHONPATH:-} VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
MODEL=/tmp/qwen3-reranker-0.6b-random
WORKLOAD=(--model "$MODEL" --queries 100 --docs-per-query 20 --doc-tokens 256 --seed 0 --sweep-tokens 300000)
[ "$step" -le 4 ] && bash "${GPU_PARTS:-.gpu}/c$step/receive.sh"
[ "$step" -eq 7 ] || [ "$step" -eq 10 ] || [ "$step" -eq 12 ] || [ "$step" -eq 13 ] && bash "${GPU_PARTS:-.gpu}/c4/receive.sh"
keep() { mkdir -p "$OUT/$2"; cp "$1"/*.json "$OUT/$2/" 2>/dev/null; [ -f "$1/bench.log" ] && tail -c 200000 "$1/bench.log" > "$OUT/$2/bench.log"; }
case "$step" in
  1)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "from reranker.testing.synthetic import build_model; build_model('$MODEL', '0.6B', dtype='bfloat16',
tiktoken_file='/tmp/vllm-carry/qwen.tiktoken')" && du -sh "$MODEL" ;;
  4)
    timeout 580 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r4 --paths fast,ours,original --doc-sweep '' \
      --time-limit 560; keep /tmp/r4 bench ;;
  5)
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile"
    timeout 150 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend vllm --out "$OUT/profile"
    timeout 150 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast,vllm --out "$OUT/profile"
    python3 benchmarks/api_only_server.py --model "$MODEL" --backend fast --port 7860 > /tmp/api.log 2>&1 &
    server=$!
    timeout 100 python3 benchmarks/api_latency.py --url http://127.0.0.1:7860 --label "H200, fast backend" \
      --out "$OUT/profile/api-latency-fast.json" || tail -20 /tmp/api.log
    kill $server
    timeout 150 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r5 --paths fast --doc-sweep 64,1024,2048 \
      --fast-batch-tokens-sweep 131072 --latency-requests 60 --time-limit 140; keep /tmp/r5 bench ;;
  6)
    timeout 280 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r6 --paths '' --sync-lever --doc-sweep '' \
      --time-limit 270; keep /tmp/r6 bench ;;
  7)
    timeout 580 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r7 --paths fast,original \
      --generate-lever --doc-sweep '' --time-limit 560; keep /tmp/r7 bench ;;
  8)
    timeout 200 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast,vllm \
      --out "$OUT/profile"
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile"
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile" ;;
  9)
    timeout 150 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast --out "$OUT/profile"
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile" ;;
  10)
    timeout 580 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r10 --paths fast,original \
      --doc-sweep '' --time-limit 560; keep /tmp/r10 bench ;;
  11)
    timeout 200 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast --out "$OUT/profile"
    timeout 150 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile"
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile" ;;
  12)
    timeout 100 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile"
    timeout 380 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r12 --paths fast,original \
      --doc-sweep '' --time-limit 370; keep /tmp/r12 bench
    timeout 100 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast --out "$OUT/profile" ;;
  13)
    timeout 580 python3 -m pytest -m gpu tests/scoring/test_gpu_tier.py -q -p no:cacheprovider 2>&1 | tail -40 ;;
esac
ls -R "$OUT"

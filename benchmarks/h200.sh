#!/usr/bin/env bash
# The H200 runs behind docs/benchmarks.md (issue 16), one step per device call, back to back, each carrying one
# vLLM part (../shared/gpu/README.md) and doing useful work meanwhile. From the checkout root on the GPU machine:
#   bash benchmarks/h200.sh 1   # part c1; build the 0.6B-shaped model; fast backend: bench, profile, parity
#   bash benchmarks/h200.sh 2   # part c2; transformers backend baseline; fast backend's batch-token sweep
#   bash benchmarks/h200.sh 3   # part c3
#   bash benchmarks/h200.sh 4   # part c4 (vLLM unpacks); vLLM backend, original recipe and fast backend, same prompts
#   bash benchmarks/h200.sh 5   # vLLM profile, parity fast vs vLLM, REST latency (fast), vLLM async-scheduling lever
set -u
step=$1
OUT=${OUT:-/tmp/out}
export PYTHONPATH=/tmp/vllm-site:${PYTHONPATH:-} VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
MODEL=/tmp/qwen3-reranker-0.6b-random
WORKLOAD=(--model "$MODEL" --queries 100 --docs-per-query 20 --doc-tokens 256 --seed 0 --sweep-tokens 300000)
[ "$step" -le 4 ] && bash "${GPU_PARTS:-.gpu}/c$step/receive.sh"
keep() { mkdir -p "$OUT/$2"; cp "$1"/*.json "$OUT/$2/" 2>/dev/null; [ -f "$1/bench.log" ] && tail -c 200000 "$1/bench.log" > "$OUT/$2/bench.log"; }
case "$step" in
  1)
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
    python3 -c "from reranker.testing.synthetic import build_model; build_model('$MODEL', '0.6B', dtype='bfloat16',
tiktoken_file='/tmp/vllm-carry/qwen.tiktoken')" && du -sh "$MODEL"
    timeout 300 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r1 --paths fast --doc-sweep 64,256,1024,2048 \
      --time-limit 280; keep /tmp/r1 bench
    timeout 120 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend fast --out "$OUT/profile"
    timeout 120 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast,transformers --out "$OUT/profile"
    ;;
  2)
    timeout 280 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r2 --paths transformers --doc-sweep '' \
      --fast-batch-tokens-sweep 16384,32768,131072 --time-limit 260; keep /tmp/r2 bench
    ;;
  3) nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv ;;
  4)
    timeout 570 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r4 --paths fast,ours,original --doc-sweep '' \
      --time-limit 550; keep /tmp/r4 bench
    ;;
  5)
    timeout 150 python3 benchmarks/profile_paths.py profile --model "$MODEL" --backend vllm --out "$OUT/profile"
    timeout 150 python3 benchmarks/profile_paths.py parity --model "$MODEL" --backends fast,vllm --out "$OUT/profile"
    python3 benchmarks/api_only_server.py --model "$MODEL" --backend fast --port 7860 > /tmp/api.log 2>&1 &
    server=$!
    timeout 150 python3 benchmarks/api_latency.py --url http://127.0.0.1:7860 --label "H200, fast backend" \
      --out "$OUT/profile/api-latency-fast.json"
    kill $server
    timeout 200 python3 -m reranker.bench run "${WORKLOAD[@]}" --out /tmp/r5 --paths '' --sync-lever --doc-sweep '' \
      --time-limit 190; keep /tmp/r5 bench
    ;;
esac
ls -R "$OUT"

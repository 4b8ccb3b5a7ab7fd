"""The REST API without the Gradio page, for machines without Gradio (the lent GPU machine has none).

The routes (``reranker.serve.api.install_api``) and the shared ``ModelHolder`` are app.py's own; only the page is left
out, so latency measured here is the API's. Used with ``benchmarks/api_latency.py --url``:

    python benchmarks/api_only_server.py --model /tmp/qwen3-0.6b --backend vllm --port 7860 &
    python benchmarks/api_latency.py --url http://127.0.0.1:7860 --out api-latency.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", default="vllm")
    parser.add_argument("--max-length", type=int, default=8192)
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn
    from fastapi import FastAPI

    from reranker.serve.api import install_api
    from reranker.serve.model_holder import ModelHolder, ModelSettings

    holder = ModelHolder(ModelSettings(args.model, args.backend, args.max_length))
    holder.start()
    app = FastAPI(title="Qwen3 Reranker API")
    install_api(app, holder)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

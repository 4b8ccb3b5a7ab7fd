# Qwen3-Reranker relevance inspector for NVIDIA GPUs: the UI and the HTTP API on one port (7860).
# Build:  docker build -t qwen3-reranker .
# Run:    docker run --gpus all -p 7860:7860 -e RERANKER_MODEL=0.6B -v reranker-data:/data qwen3-reranker
# docs/docker.md explains every line; the commands here are the README's install and start commands.
FROM vllm/vllm-openai:v0.26.0

WORKDIR /app
COPY requirements-common.txt requirements-gpu.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements-gpu.txt
COPY reranker/ reranker/
COPY app.py ./

# The model (a key of MODELS, a hub id or a folder), the backend, where to listen, where scores are cached.
ENV RERANKER_MODEL=0.6B \
    RERANKER_BACKEND=vllm \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    RERANKER_CACHE_DIR=/data \
    HF_HOME=/data/huggingface
VOLUME ["/data"]
EXPOSE 7860

# Loading the model (and compiling it on first start) takes minutes: allow for it before counting failures.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/health', timeout=4)"]

# The base image starts `vllm serve`; this image starts the app instead.
ENTRYPOINT []
CMD ["python3", "app.py"]

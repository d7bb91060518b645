# The ctbench server bases, one file for both (VENV_FROM picks the environment the image carries):
#   ctbench/base:latest  (default, VENV_FROM=builder) the full ctbench: runner, scorer, the
#                        baseline and VLM servers; what the registry's own server images use
#   ctbench/sdk:latest   (VENV_FROM=sdk-builder) ctbench-sdk alone: the SDK, the preprocessing
#                        library, `bench serve` and `bench conformance` and the server
#                        dependencies; what a model team's image (template.Dockerfile) builds on
# Both: a virtual environment, a non-root user, and a gRPC health check. No model weights.
#
# BASE_IMAGE must provide `python3` with the venv module (dockerfiles/python.Dockerfile builds
# one on Debian or on a CUDA runtime image). Build context: the repository root.
#
# pip reaches the package index through the host's CA bundle when the build script places it in
# dockerfiles/build-secrets/ (ignored by git). It is used only in the builder stages; the final
# images copy the finished virtual environment and never contain the bundle.
ARG BASE_IMAGE=ctbench/python:3.11
ARG VENV_FROM=builder

# The SDK's dependencies (their own layer, cached until sdk/pyproject.toml changes).
FROM ${BASE_IMAGE} AS sdk-deps
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY dockerfiles/build-secrets/ /tmp/build-secrets/
COPY sdk/pyproject.toml /src/sdk/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/sdk/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/sdk-requirements.txt \
 && pip install -r /tmp/sdk-requirements.txt

# ctbench-sdk: sdk/ builds it from the repository's own folders (ctbench/project.py says which modules).
FROM sdk-deps AS sdk-builder
COPY sdk/ /src/sdk/
COPY ctbench/ /src/ctbench/
COPY model_servers/ /src/model_servers/
COPY preprocess/ /src/preprocess/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && pip install --no-deps /src/sdk

# The full ctbench: its own dependencies (without ctbench-sdk, which comes from /src/sdk), then both.
FROM sdk-deps AS builder
COPY pyproject.toml /src/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && python3 -c "import tomllib; print('\n'.join(r for r in tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies'] if not r.startswith('ctbench-sdk')))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY setup.py README.md /src/
COPY ctbench/ /src/ctbench/
COPY runners/ /src/runners/
COPY model_servers/ /src/model_servers/
COPY preprocess/ /src/preprocess/
COPY evaluation/ /src/evaluation/
COPY datasets/ /src/datasets/
# The project files the wheel carries inside the package (ctbench/project.py: PROJECT_FILES).
COPY compose/ /src/compose/
COPY dockerfiles/ /src/dockerfiles/
COPY proto/ /src/proto/
COPY docs/ /src/docs/
COPY scripts/docker/ /src/scripts/docker/
COPY scripts/install-wordnet.sh /src/scripts/
COPY LICENSE .dockerignore /src/
COPY sdk/ /src/sdk/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && pip install --no-deps /src/sdk /src

# The environment the image carries: the full one (builder) or the SDK's alone (sdk-builder).
FROM ${VENV_FROM} AS venv

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CTBENCH_PORT=50051
COPY --from=venv /opt/venv /opt/venv
COPY dockerfiles/healthcheck.py /usr/local/bin/ctbench-healthcheck
# No setuid/setgid binaries, whatever BASE_IMAGE brought (the containers run with a read-only root).
RUN groupadd --system --gid 10001 ctbench \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ctbench ctbench \
 && mkdir -p /data /weights \
 && chmod 0755 /usr/local/bin/ctbench-healthcheck \
 && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
USER 10001:10001
WORKDIR /home/ctbench
EXPOSE 50051
# Model loading can take minutes on GPU images: the start period covers it.
HEALTHCHECK --interval=5s --timeout=4s --start-period=120s --retries=3 \
  CMD ["python3", "/usr/local/bin/ctbench-healthcheck"]
ENTRYPOINT ["bench", "serve"]

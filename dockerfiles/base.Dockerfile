# The ctbench server base: the SDK, the preprocessing library and the server dependencies in a
# virtual environment, a non-root user, and a gRPC health check. No model weights.
#
# BASE_IMAGE must provide `python3` with the venv module (dockerfiles/python.Dockerfile builds
# one on Debian or on a CUDA runtime image). Build context: the repository root.
#
# pip reaches the package index through the host's CA bundle when the build script places it in
# dockerfiles/build-secrets/ (ignored by git). It is used only in the `builder` stage; the final
# image copies the finished virtual environment and never contains the bundle.
ARG BASE_IMAGE=ctbench/python:3.11

FROM ${BASE_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY dockerfiles/build-secrets/ /tmp/build-secrets/
# Dependencies first (their own layer, cached until pyproject.toml changes), then the package.
COPY pyproject.toml /src/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
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
 && pip install --no-deps /src

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CTBENCH_PORT=50051
COPY --from=builder /opt/venv /opt/venv
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

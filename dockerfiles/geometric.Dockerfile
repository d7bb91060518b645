# Baseline server `geometric`: no weights, CPU only. Build context: the repository root.
#
# It needs scipy on top of the base. This is the pattern for any server with its own
# dependencies (torch, transformers, a model repo): install them in a builder stage that sees
# the build-time CA bundle (pip --prefix: only what the base's environment lacks), then copy
# just those files over the base's virtual environment in the final stage.
ARG BASE_IMAGE=ctbench/base:latest

FROM ${BASE_IMAGE} AS builder
# The builder stage writes to /opt/venv (root-owned); the final stage stays non-root.
# hadolint ignore=DL3002
USER 0:0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY dockerfiles/build-secrets/ /tmp/build-secrets/
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && mkdir -p /opt/extra && pip install --prefix /opt/extra "scipy>=1.11,<2"

FROM ${BASE_IMAGE}
# Only the new packages: a layer of their size, not a second copy of the environment.
COPY --from=builder /opt/extra/ /opt/venv/
LABEL org.ctbench.server="geometric"
CMD ["geometric", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data"]

# Template for a model team's image. Build context: the repository root (or your own repo with
# the same layout). Copy to dockerfiles/<model>.Dockerfile and adapt.
#
#   CPU:  docker build -f dockerfiles/template.Dockerfile -t ctbench/template:latest .
#   GPU:  --build-arg BASE_IMAGE=ctbench/sdk-cuda:latest (see docs/shipping-a-model-container.md)
#
# It builds on ctbench/sdk (dockerfiles/base.Dockerfile, target `sdk`): ctbench-sdk alone, the
# server's packages and `bench serve` / `bench conformance`, none of the runner's or scorer's.
#
# Rules: no weights baked in (mount them read-only at /weights), non-root (the base's user),
# listen on 0.0.0.0:50051, accept `MODEL --host H --port P --data-root /data`.
ARG BASE_IMAGE=ctbench/sdk:latest

FROM ${BASE_IMAGE} AS builder
# The builder writes to the root-owned /opt/venv; the final stage runs as the base's user.
# hadolint ignore=DL3002
USER 0:0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY dockerfiles/build-secrets/ /tmp/build-secrets/
COPY dockerfiles/template/requirements.txt /tmp/requirements.txt
RUN if [ -s /tmp/build-secrets/ca-certificates.crt ]; then export PIP_CERT=/tmp/build-secrets/ca-certificates.crt; fi \
 && mkdir -p /opt/extra && pip install --prefix /opt/extra -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
# Only the new packages: a layer of their size, not a second copy of the environment.
COPY --from=builder /opt/extra/ /opt/venv/
COPY dockerfiles/template/template_server.py /home/ctbench/server.py
LABEL org.ctbench.server="template"
ENTRYPOINT ["python3", "/home/ctbench/server.py"]
CMD ["template", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data"]

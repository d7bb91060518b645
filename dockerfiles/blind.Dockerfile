# Baseline server `blind`: no weights, CPU only. Build context: the repository root.
ARG BASE_IMAGE=ctbench/base:latest
FROM ${BASE_IMAGE}
LABEL org.ctbench.server="blind"
CMD ["blind", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data"]

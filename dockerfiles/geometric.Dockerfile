# Baseline server `geometric`: no weights, CPU only. Build context: the repository root.
# (Its scipy comes with the base; a server with its own stack follows dockerfiles/template.Dockerfile.)
ARG BASE_IMAGE=ctbench/base:latest
FROM ${BASE_IMAGE}
LABEL org.ctbench.server="geometric"
CMD ["geometric", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data"]

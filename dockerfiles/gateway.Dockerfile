# Loopback gateway: relays a 127.0.0.1-published port to a model container on an internal
# network (see dockerfiles/gateway/forward.py). Standard library only. Build context: repo root.
ARG BASE_IMAGE=ctbench/python:3.11
FROM ${BASE_IMAGE}
COPY dockerfiles/gateway/forward.py /usr/local/bin/ctbench-gateway
RUN chmod 0755 /usr/local/bin/ctbench-gateway
USER 65534:65534
ENTRYPOINT ["python3", "/usr/local/bin/ctbench-gateway"]
CMD ["50051=model:50051"]

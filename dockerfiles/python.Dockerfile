# Python runtime layer: Debian's python3 + venv on top of BASE_IMAGE.
#   local:  BASE_IMAGE=ctbench/debian:bookworm (built with debootstrap by scripts/docker/)
#   GPU:    BASE_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04 (or any Debian/Ubuntu CUDA runtime)
ARG BASE_IMAGE=ctbench/debian:bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# No setuid/setgid binaries (su, mount, passwd, ...): nothing in a server image may gain privileges.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +

CMD ["python3"]

# syntax=docker/dockerfile:1
# tokenrelay: OAuth 2.0 client-credentials token relay.
#
# Two stages: "build" installs the package into a virtualenv; the runtime stage copies only that virtualenv, so
# no compiler, pip cache or source tree reaches the final image. The runtime runs as a fixed non-root UID/GID
# (10001) with no home directory and writes nowhere but /tmp, so it works with a read-only root filesystem
# (mount an emptyDir at /tmp in Kubernetes).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/tokenrelay \
    && /opt/tokenrelay/bin/pip install --no-compile . \
    && /opt/tokenrelay/bin/python -m compileall -q /opt/tokenrelay/lib

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tokenrelay" \
      org.opencontainers.image.description="OAuth 2.0 client-credentials token relay: injects and refreshes tokens for upstream APIs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tokenrelay/tokenrelay"
COPY --from=build /opt/tokenrelay /opt/tokenrelay
# Inside a container the listeners must bind all interfaces to be reachable at all; tokenrelay still refuses to
# start on a non-loopback address unless the config sets an access policy (access.allow_clients / api_keys / open).
# hadolint ignore=DL3064
ENV PATH=/opt/tokenrelay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    TOKENRELAY_LISTEN__HOST=0.0.0.0 \
    TOKENRELAY_ADMIN__HOST=0.0.0.0
USER 10001:10001
WORKDIR /tmp
# 8080: the proxy listener; 9901: the admin listener (/healthz /readyz /metrics /tokens).
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('TOKENRELAY_ADMIN__PORT', '9901'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["tokenrelay"]
CMD ["serve", "--config", "/etc/tokenrelay/config.yaml"]

# pystator: one image for the worker fleet, the relay, the HTTP API and the migrations job.
#   docker build -t pystator .
#   docker run --rm -e PYSTATOR_DATABASE_URL=... pystator db upgrade
# The base image is pinned to a patch release; bump it deliberately (and rebuild for security
# fixes of the same release). Dependencies are installed into a virtualenv in a build stage, so
# the runtime image has no build cache and runs as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11.16-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pystator ./pystator
RUN python -m venv /opt/pystator \
    && /opt/pystator/bin/pip install ".[all]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/pystator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYSTATOR_LOG_FORMAT=json \
    PYSTATOR_MACHINES=/machines
RUN groupadd --system --gid 10001 pystator \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home pystator \
    && mkdir -p /app /machines \
    && chown 10001:10001 /app
COPY --from=build /opt/pystator /opt/pystator
WORKDIR /app
USER 10001:10001
# Machine definitions are mounted at /machines (a ConfigMap in Kubernetes, a volume in compose).
# 8000: `pystator api`; 9100: a worker's Prometheus /metrics (`--metrics-port 9100`).
EXPOSE 8000 9100
# Docker and compose use this; Kubernetes uses the chart's probes instead. Each service in
# docker-compose.yml narrows it (--liveness for workers, the API's /health for the API).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["pystator", "health"]
ENTRYPOINT ["pystator"]
CMD ["worker", "--concurrency", "8", "--metrics-port", "9100"]

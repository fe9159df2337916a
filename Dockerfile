# pystator: the worker fleet image (worker, relay and the migrations job all run from it).
#   docker build -t pystator .
#   docker run --rm -e PYSTATOR_DATABASE_URL=... pystator db upgrade
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYSTATOR_LOG_FORMAT=json \
    PYSTATOR_MACHINES=/machines

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pystator ./pystator
RUN pip install ".[all]" \
    && useradd --system --uid 10001 --home-dir /app pystator \
    && mkdir -p /machines \
    && chown pystator /machines

USER 10001
# Machine definitions are mounted here (a ConfigMap in Kubernetes, a volume in compose).
VOLUME ["/machines"]
ENTRYPOINT ["pystator"]
CMD ["worker", "--concurrency", "8"]

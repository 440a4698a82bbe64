# Multi-stage build: the release binary, then a slim image that runs it as an unprivileged user.
# Alone it serves the sample catalog from /srv/data; deploy/compose.yaml runs it as replicas
# over S3 behind a load balancer.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin qanat

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin qanat
COPY --from=build /src/target/release/qanat /usr/local/bin/qanat
WORKDIR /srv
COPY datasets ./datasets
# The local storage is the only path written; with S3 storage nothing on disk is (but spills of
# large sorts, under the system's temporary directory).
RUN mkdir -p /srv/data && chown qanat:qanat /srv/data
USER qanat
ENV QANAT_ADDR=0.0.0.0:8080 \
    QANAT_STORAGE=/srv/data
EXPOSE 8080
# `qanat health` asks /health on QANAT_ADDR (the image has no curl). The start period covers
# the first ingests of a catalog without versions.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["qanat", "health"]
CMD ["qanat", "serve"]

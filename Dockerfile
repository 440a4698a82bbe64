# Multi-stage build: the release binary, then a slim image that serves the sample catalog.
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
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/qanat /usr/local/bin/qanat
WORKDIR /srv
COPY datasets ./datasets
ENV QANAT_ADDR=0.0.0.0:8080 \
    QANAT_STORAGE=/srv/data
EXPOSE 8080
CMD ["qanat", "serve"]

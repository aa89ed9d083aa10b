# syntax=docker/dockerfile:1
# The worker, the starter and the ChangeNow simulator in one image (for docker-compose.yml).
# cargo-chef builds the dependencies in a layer of their own, keyed by the manifests and
# Cargo.lock only: changing the project's code rebuilds the project's crates, not the hundreds
# of dependencies (the Temporal SDK, alloy, sqlx, axum) under them.

FROM rust:1-bookworm AS chef
# protoc: the Temporal SDK compiles its protobuf definitions at build time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

# The recipe: every Cargo.toml and Cargo.lock, without the sources.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Dependencies first (cached while the recipe is unchanged), then the project itself.
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json \
    --bin worker --bin starter --bin changenow-simulator
COPY . .
RUN cargo build --release --locked --bin worker --bin starter --bin changenow-simulator

FROM debian:bookworm-slim AS runtime
# ca-certificates for HTTPS to ChangeNow, RPC providers and Temporal Cloud; curl for the
# compose file's health checks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10001 payouts
COPY --from=builder /src/target/release/worker /src/target/release/starter /src/target/release/changenow-simulator /usr/local/bin/
WORKDIR /app
USER 10001
# webhook and pages (starter serve), ChangeNow simulator, worker metrics
EXPOSE 8080 8090 9464
CMD ["worker"]

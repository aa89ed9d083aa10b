#!/usr/bin/env bash
# `make soak`: see tests/src/soak/mod.rs. Starts its own Postgres, Temporal dev server, anvil and
# simulator (never the stack's), so it needs the tools and binaries `make up` installs and builds.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo build --quiet --bin worker --bin starter
cargo run --quiet -p integration-tests --bin soak -- "$@"

#!/usr/bin/env bash
# `make bench-conversion`: see tests/src/bin/bench_conversion.rs. Uses the stack's Temporal
# server; each pool gets its own anvil, simulator and database.
. "$(dirname "$0")/lib.sh"
load_env
cd "$ROOT"
cargo run --quiet -p integration-tests --bin bench-conversion

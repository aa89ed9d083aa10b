#!/usr/bin/env bash
# `make bench-intake`: see tests/src/bin/bench_intake.rs. Runs against the stack `make up` started
# (same Temporal server, same worker). Pass options through BENCH_ARGS, e.g.
#   make bench-intake BENCH_ARGS="--payments 1000 --rate 200 --concurrency 50"
. "$(dirname "$0")/lib.sh"
load_env
cd "$ROOT"
cargo run --quiet -p integration-tests --bin bench-intake -- ${BENCH_ARGS:-}

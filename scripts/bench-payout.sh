#!/usr/bin/env bash
# `make bench-payout`: see tests/src/bin/bench_payout.rs. Uses the stack's Temporal
# server; the payouts get their own anvil, simulator and database.
. "$(dirname "$0")/lib.sh"
load_env
cd "$ROOT"
cargo run --quiet -p integration-tests --bin bench-payout -- "$@"

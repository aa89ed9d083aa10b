#!/usr/bin/env bash
# Keeps the shared build cache from filling the disk: every rebuild of the workspace leaves its
# old test binaries (~600 MB each, with debug info) behind. When less than PRUNE_BELOW_GB
# (default 20) is free, removes the workspace's own artifacts and the incremental cache; the
# dependencies (the slow part: Temporal SDK, sqlx, alloy) stay.
. "$(dirname "$0")/lib.sh"
below_gb="${PRUNE_BELOW_GB:-20}"
mkdir -p "$CARGO_TARGET_DIR"
free_gb=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gb" -ge "$below_gb" ]; then exit 0; fi
say "only ${free_gb} GB free: pruning the workspace's old build artifacts in $CARGO_TARGET_DIR"
debug="$CARGO_TARGET_DIR/debug"
rm -rf "$debug/incremental"
# The workspace's own crates, every integration test and every binary: each rebuild leaves a new
# copy of each behind.
crates="starter worker payout_worker payout_starter activities workflows changenow_simulator integration_tests"
for file in "$ROOT"/tests/tests/*.rs "$ROOT"/tests/src/bin/*.rs; do
  crates="$crates $(basename "$file" .rs | tr - _)"
done
for crate in $crates; do
  rm -rf "$debug/deps/$crate"-* "$debug/deps/lib$crate"-* "$debug/.fingerprint/$crate"-* "$debug/.fingerprint/$(echo "$crate" | tr _ -)"-*
done
say "now $(df -Pk "$CARGO_TARGET_DIR" | awk 'NR==2 {print int($4 / 1048576)}') GB free"

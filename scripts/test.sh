#!/usr/bin/env bash
# Runs every test against the running stack. Integration tests create their own databases
# (payouts_test_*) and task queues, so they never touch the stack's own data or worker.
. "$(dirname "$0")/lib.sh"
load_env
server_url="${DATABASE_URL%/*}/postgres"
# Databases left by earlier runs.
for db in $(psql "$server_url" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'payouts_test_%'"); do
  psql "$server_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
done
cd "$ROOT"
if [ -x "$TOOLS/promtool" ]; then
  "$TOOLS/promtool" check rules ops/prometheus/payout-engine.rules.yml || exit 1
else
  say "promtool missing: ops/prometheus rules not checked"
fi
# docker-compose.yml and the Dockerfile, statically (no Docker engine here).
"$ROOT/scripts/check-compose.sh" || exit 1
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

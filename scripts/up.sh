#!/usr/bin/env bash
# `make up`: install what is missing, then start the whole stack (Temporal dev server with its
# Web UI, anvil, Postgres database and migrations, worker, webhook) and wait until each answers.
# Running it again starts only what is not running. `make down` stops what this started.
. "$(dirname "$0")/lib.sh"
"$ROOT/scripts/ensure-tools.sh"
load_env

with_services_only=${1:-}

# --- Postgres database ---------------------------------------------------------------------
ensure_database() {
  db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
  server_url="${DATABASE_URL%/*}/postgres"
  if ! psql "$DATABASE_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    say "creating database $db_name"
    psql "$server_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null
  fi
}
ensure_database

# --- Temporal dev server -------------------------------------------------------------------
temporal_host="${TEMPORAL_ADDRESS%:*}"; temporal_port="${TEMPORAL_ADDRESS##*:}"
if port_open "$temporal_host" "$temporal_port" && ! pid_alive temporal; then
  say "Temporal already answers on $TEMPORAL_ADDRESS (not started by us); using it"
else
  start_bg temporal temporal server start-dev --ip "$temporal_host" --port "$temporal_port" --ui-port 8233 \
    --db-filename "$STATE/temporal.db" --namespace "$TEMPORAL_NAMESPACE" --log-level warn \
    --search-attribute ClientId=Keyword --search-attribute PaymentId=Keyword
fi
wait_for "Temporal" 60 temporal operator cluster health --address "$TEMPORAL_ADDRESS"
# Operators find a payment's workflow by these; registering is idempotent.
for attr in ClientId PaymentId; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
    --name "$attr" --type Keyword >/dev/null 2>&1 || true
done

# --- anvil ---------------------------------------------------------------------------------
rpc_host="$(echo "$ETH_RPC_URL" | sed -E 's#^https?://([^:/]+).*#\1#')"
rpc_port="$(echo "$ETH_RPC_URL" | sed -E 's#^https?://[^:/]+:([0-9]+).*#\1#')"
if port_open "$rpc_host" "$rpc_port" && ! pid_alive anvil; then
  say "an Ethereum node already answers on $ETH_RPC_URL (not started by us); using it"
else
  # --state keeps the chain across `make down` / `make up` (dumped every 5 s and on exit), so
  # it stays in step with the nonces the outbox stored in the payouts database.
  start_bg anvil anvil --host "$rpc_host" --port "$rpc_port" --silent \
    --state "$STATE/anvil-state.json" --state-interval 5
fi
anvil_ready() { curl -sf -H 'content-type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$ETH_RPC_URL"; }
wait_for "anvil" 30 anvil_ready

# --- one database, one chain ---------------------------------------------------------------
# A database whose outbox belongs to another chain (another checkout's stack on this machine, or
# a chain that was reset) is never used. With the default DATABASE_URL this checkout gets a
# database of its own; a DATABASE_URL set by hand is refused, naming both chains.
if ! refusal="$("$ROOT/scripts/check-chain-binding.sh" "$DATABASE_URL" "$ETH_RPC_URL" 2>&1)"; then
  default_url="$(grep -E '^DATABASE_URL=' "$ROOT/.env.example" | cut -d= -f2-)"
  [ "$DATABASE_URL" = "$default_url" ] || { printf '%s\n' "$refusal" >&2; exit 1; }
  own_url="${DATABASE_URL%/*}/payouts_$(printf %s "$ROOT" | sha256sum | cut -c1-10)"
  say "database ${DATABASE_URL##*/} belongs to another chain; this checkout uses ${own_url##*/} (DATABASE_URL in .env)"
  sed -i "s#^DATABASE_URL=.*#DATABASE_URL=$own_url#" "$ROOT/.env"
  load_env
  ensure_database
  "$ROOT/scripts/check-chain-binding.sh" "$DATABASE_URL" "$ETH_RPC_URL" || exit 1
fi

# --- binaries, migrations ------------------------------------------------------------------
say "building the worker, the starter and the ChangeNow simulator"
(cd "$ROOT" && cargo build --quiet --bin worker --bin starter --bin changenow-simulator)
BIN="$CARGO_TARGET_DIR/debug"
(cd "$ROOT" && "$BIN/starter" migrate)

# --- local USDT (deployed once per chain; its address goes to .env) ------------------------
(cd "$ROOT" && "$BIN/changenow-simulator" setup-chain --env-file "$ROOT/.env" >/dev/null)
load_env

if [ "$with_services_only" = "--services-only" ]; then exit 0; fi

# --- ChangeNow simulator, worker and webhook ----------------------------------------------
# NOWPayments' records outlive a restart of the sandbox (a fresh chain keeps them too: reset
# .state to forget them).
(cd "$ROOT" && SIMULATOR_STATE_FILE="${SIMULATOR_STATE_FILE:-$STATE/sandbox-state.json}" start_bg changenow-simulator "$BIN/changenow-simulator" serve)
wait_for "ChangeNow simulator" 30 curl -sf "$CHANGENOW_API_URL/sim/faults"

(cd "$ROOT" && start_bg worker "$BIN/worker")
worker_ready() { pid_alive worker && grep -q "worker running" "$STATE/logs/worker.log"; }
wait_for "worker" 30 worker_ready

# The periodic conversion (idempotent: an existing schedule is updated).
(cd "$ROOT" && "$BIN/starter" schedules apply >/dev/null)

(cd "$ROOT" && start_bg webhook "$BIN/starter" serve)
wait_for "webhook" 30 curl -sf "http://$HTTP_ADDR/health"

cat <<INFO

  Temporal Web UI   http://localhost:8233/namespaces/$TEMPORAL_NAMESPACE/workflows
  Temporal gRPC     $TEMPORAL_ADDRESS   (task queue $TEMPORAL_TASK_QUEUE)
  Webhook           http://$HTTP_ADDR/webhooks/nowpayments   (health: http://$HTTP_ADDR/health)
  Ethereum (anvil)  $ETH_RPC_URL   (test USDT at $USDT_CONTRACT)
  ChangeNow (sim)   $CHANGENOW_API_URL   (exchanges: $CHANGENOW_API_URL/)
  Postgres          $(echo "${DATABASE_URL%%\?*}" | sed -E 's#://[^@/]*@#://#')
  Logs              $STATE/logs/

  Try it:  $BIN/starter client add -1001234567890 --strategy threshold --threshold-usd 100 \\
             --currency xmr --wallet 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A
           $BIN/starter ipn send-test --client-id -1001234567890

INFO

# Shared helpers of the stack scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.state"
TOOLS="${PAYOUT_TOOLS_DIR:-$HOME/.cache/payout-engine/tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/payout-engine-target}"
export PATH="$TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin:$TOOLS/venv/bin:$PATH"
mkdir -p "$STATE/pids" "$STATE/logs" "$TOOLS"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

load_env() {
  [ -f "$ROOT/.env" ] || { cp "$ROOT/.env.example" "$ROOT/.env"; say "created .env from .env.example"; }
  # A .env made before a variable was added lacks it: take the new ones from .env.example, leave
  # every value already set alone.
  local name line
  while IFS= read -r line; do
    name="${line%%=*}"
    if ! grep -q "^${name}=" "$ROOT/.env"; then
      printf '%s\n' "$line" >>"$ROOT/.env"; say "added $name to .env (from .env.example)"
    fi
  done < <(grep -E '^[A-Z_][A-Z0-9_]*=' "$ROOT/.env.example")
  set -a; . "$ROOT/.env"; set +a
}

# host:port answers a TCP connection
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for <what> <seconds> <command...>
wait_for() {
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within ${seconds}s (see $STATE/logs)"
}

pid_alive() { local f="$STATE/pids/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# start_bg <name> <command...>: starts once, records the pid; a live pid file means "already running".
start_bg() {
  local name=$1; shift
  if pid_alive "$name"; then say "$name already running (pid $(cat "$STATE/pids/$name.pid"))"; return 0; fi
  say "starting $name"
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/pids/$name.pid"
}

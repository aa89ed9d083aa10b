#!/usr/bin/env bash
# `make down`: stops exactly the processes `make up` started (by their pid files, never by name).
. "$(dirname "$0")/lib.sh"
for name in webhook worker changenow-simulator anvil temporal; do
  f="$STATE/pids/$name.pid"
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
done

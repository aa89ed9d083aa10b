# The two commands of the README's Quick start, and their helpers.
# Everything installs what is missing first, so a fresh machine needs only `make up` / `make test`.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/payout-engine-target
SHELL := /bin/bash

.PHONY: up down test unit bench-intake bench-conversion bench-payout soak logs

## Set up what is missing and run the whole stack (Temporal + UI, anvil, Postgres, worker, webhook).
up:
	@scripts/up.sh

## Stop exactly what `make up` started.
down:
	@scripts/down.sh

## Set up what is missing, start the services the tests need, run every test.
test:
	@scripts/up.sh
	@scripts/test.sh

## Unit and property tests only (no services needed).
unit:
	cargo test --workspace --lib --bins

## Intake benchmark: payments per second through the webhook against a no-op workflow.
bench-intake:
	@scripts/up.sh
	@scripts/bench-intake.sh

## Conversion benchmark: gas per converted payment for pools of 1/10/100, pool query over 1M rows.
bench-conversion:
	@scripts/up.sh
	@scripts/bench-conversion.sh

## Payout benchmark: 1,000 clients over threshold at once, the over-threshold query over 1M rows.
bench-payout:
	@scripts/up.sh
	@scripts/bench-payout.sh

## Chaos soak on its own Postgres, Temporal, anvil and simulator: two workers, seeded faults, every invariant checked.
SEED ?= 1
PAYMENTS ?= 1000
CLIENTS ?= 50
soak:
	@scripts/ensure-tools.sh
	@SEED=$(SEED) PAYMENTS=$(PAYMENTS) CLIENTS=$(CLIENTS) scripts/soak.sh

logs:
	@tail -n 50 -f .state/logs/*.log

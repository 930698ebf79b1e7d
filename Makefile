# ctl: one command runs the system (`make up`), one runs the tests (`make test`).
# Every target first runs `setup`, which installs the pinned Deno from the npm registry's `deno`
# package into .tools/ when `deno` on PATH is missing or not the pinned version.

DENO_VERSION := 2.9.6
TOOLS        := $(CURDIR)/.tools
DENO_LOCAL   := $(TOOLS)/deno/node_modules/.bin/deno
DENO         := $(shell if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -1 | grep -q "deno $(DENO_VERSION) "; then command -v deno; else echo $(DENO_LOCAL); fi)

.PHONY: setup test check lint fmt fmt-check unit build bench up clean soak fault

setup:
	@if [ "$(DENO)" = "$(DENO_LOCAL)" ] && ! "$(DENO_LOCAL)" --version 2>/dev/null | head -1 | grep -q "deno $(DENO_VERSION) "; then \
	  echo "setup: installing deno $(DENO_VERSION) from the npm registry into .tools/deno"; \
	  mkdir -p "$(TOOLS)/deno" && \
	  printf '{"name":"ctl-tools","private":true}\n' > "$(TOOLS)/deno/package.json" && \
	  npm install --silent --no-audit --no-fund --prefix "$(TOOLS)/deno" "deno@$(DENO_VERSION)" && \
	  "$(DENO_LOCAL)" --version | head -1; \
	fi
	@$(DENO) install --quiet --frozen

fmt-check: setup
	$(DENO) fmt --check

lint: setup
	$(DENO) lint

check: setup
	$(DENO) check main.ts mod.ts

unit: setup
	$(DENO) test --allow-all --frozen

## test: format check, lint, type check, then every test (unit and whole-system).
test: fmt-check lint check unit

fmt: setup
	$(DENO) fmt

## build: dist/ctl.js with deno bundle (offline), and dist/ctl with deno compile where possible.
build: setup
	@mkdir -p dist
	$(DENO) bundle --quiet -o dist/ctl.js main.ts
	@echo "build: dist/ctl.js"
	@if $(DENO) compile --quiet --allow-all -o dist/ctl main.ts >dist/compile.log 2>&1; then \
	  echo "build: dist/ctl"; \
	else \
	  echo "build: skipped dist/ctl: deno compile could not get Deno's runtime base binary (denort); set DENORT_BIN to a denort binary or reach Deno's download host (details: dist/compile.log)"; \
	fi

bench: setup
	$(DENO) task bench

## fault: long fault-injection schedules with reports (FAULT_ARGS="--schedules 50 --seed 1000").
fault: setup
	$(DENO) task fault $(FAULT_ARGS)

## soak: 100,000 Raft simulator seeds (sizes 3, 5, 7); a failure prints the seed to replay.
soak: setup
	$(DENO) task soak

up: setup
	$(DENO) run --allow-all main.ts up

clean:
	rm -rf dist .ctl

# Two entry points: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast fuzz lint system-deps eval clean image

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vqm demo $(ARGS)

# Test peers the suite talks to for real: FFmpeg's CLI, redis-server, promtool, Alertmanager,
# Chromium. Installed from Debian's packages when missing (needs root or sudo).
system-deps:
	@scripts/system-deps.sh

# The layer contracts (pyproject.toml, [tool.importlinter]) first: a wrong import fails fast.
test: $(STAMP) system-deps
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The property tests on hostile input, with a budget fifty times that of `make test`.
fuzz: $(STAMP)
	VQM_FUZZ=long $(BIN)/python -m pytest -q -m fuzz tests/unit $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check monitor stream_ingest alerting lab tests benchmarks
	$(BIN)/mypy monitor stream_ingest alerting
	$(BIN)/lint-imports --no-cache

eval: $(STAMP) system-deps
	$(BIN)/vqm eval signal

# The container image (Containerfile; VARIANT=cuda builds Containerfile.cuda, tagged -cuda) with
# podman or docker, whichever is on PATH; tagged $(IMAGE):<version in pyproject.toml>[-cuda].
IMAGE ?= vqm
VARIANT ?= cpu
ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	@test -n "$(ENGINE)" || { echo "make image: needs podman or docker on PATH; neither is here" >&2; exit 1; }
	@$(ENGINE) info > /dev/null 2>&1 || { echo "make image: $(ENGINE) cannot reach a container engine (is its service running?)" >&2; exit 1; }
	$(ENGINE) build -f Containerfile$(if $(filter cuda,$(VARIANT)),.cuda) \
		--build-arg VERSION=$(IMAGE_VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		-t $(IMAGE):$(IMAGE_VERSION)$(if $(filter cuda,$(VARIANT)),-cuda) .

clean:
	rm -rf $(VENV) .pytest_cache artifacts

# The two commands of the README: `make run` and `make test`.
#   make run  ARGS='--port 9443'     extra flags for `strongroom up`
#   make test ARGS='-k secret_client' extra flags for pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# Install stamps: pip runs again only when pyproject.toml changes, so a second `make run` starts at once
# (the install is editable, so source changes need no reinstall).
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test install install-dev clean bench lint

# A venv whose creation failed half-way (Debian without python3-venv leaves one without pip) is
# removed, so the next run does not mistake it for a working one.
$(BIN)/pip:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Strongroom needs Python 3.11 or newer, found " + sys.version.split()[0] + "; run: make PYTHON=python3.11 ...")'
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

run: install
	$(BIN)/strongroom up $(ARGS)

# TEST_WORKERS=2: two worker processes (pytest-xdist), each test file on one worker so its module-scoped
# servers start once; about half the time. Default one process until a -n 2 run that ended at 92% of the
# collected tests without an error is explained (docs/testing.md).
TEST_WORKERS ?= 0
test: install-dev
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

# ruff and mypy as configured in pyproject.toml (docs/architecture.md, "Working on Strongroom"); .ci/run runs it first.
lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Strongroom against OpenBao on this machine (bench/): ARGS='--quick' for a short run.
# wrk comes from Debian when missing (as root, or through sudo).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet -e '.[bench]'
	@touch $@ $(STAMP)

bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .strongroom .pytest_cache .hypothesis .mypy_cache .ruff_cache

# Regenerate the CSI provider's gRPC modules from the committed .proto; the output
# depends only on the grpcio-tools version pinned in the dev extras.
.PHONY: proto
proto: install-dev
	$(BIN)/python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src \
		src/strongroom/csi/proto/v1alpha1/service.proto

# A longer fuzzing run than `make test`'s bounded one (see docs/security.md, "Input handling and fuzzing"):
#   make fuzz FUZZ_EXAMPLES=1000 FUZZ_STEPS=20
FUZZ_EXAMPLES ?= 200
FUZZ_STEPS ?= 12
.PHONY: fuzz
fuzz: install-dev
	STRONGROOM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) STRONGROOM_FUZZ_STEPS=$(FUZZ_STEPS) \
	STRONGROOM_FUZZ_PHASES=examples,coverage,fuzzing \
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz tests/server/test_bad_input.py \
		tests/e2e/test_schemathesis_secrets.py tests/keyvault/keys/test_schemathesis_keys.py \
		tests/keyvault/certificates/test_schemathesis_certificates.py $(ARGS)

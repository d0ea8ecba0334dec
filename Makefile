# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck pytest browser acl promtool constraints bench docs schema clean

# Every machine installs the same versions: those pinned in constraints.txt (see `make constraints`).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,test]'
	touch $(STAMP)

# Refresh the pins after changing a dependency: install without the old pins, then freeze
# (cloudwatcher itself, installed editable, is left out).
constraints:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -e '.[all,test]'
	$(BIN)/python -m pip freeze --exclude-editable --exclude cloudwatcher > constraints.txt
	touch $(STAMP)

# `make .venv` builds the environment and does nothing else.
.venv: $(STAMP)

run: $(STAMP)
	$(BIN)/cloudwatcher run

lint: $(STAMP)
	$(BIN)/ruff check cloudwatcher tests benchmarks
	$(BIN)/ruff format --check cloudwatcher tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The dashboard's browser tests drive Debian's headless Chromium through its chromedriver
# (a test tool's own browser download cannot work offline). Needs root, like CI.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# setfacl/getfacl (Debian's acl): systemd/cloudwatcher-add-device and its tests use them.
acl:
	@command -v setfacl >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null; }

# promtool (Debian's prometheus package) checks contrib/prometheus/alerts.yml in the tests.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

# Two workers (each with its own embedded PostgreSQL and databases) on the 2-core machines
# the suite is sized for; PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

pytest: $(STAMP) browser acl promtool
	$(BIN)/pytest -n $(PYTEST_WORKERS)

test: lint typecheck pytest

# The configuration reference (README's settings table, docs/configuration.md's tables and
# systemd/cloudwatcher.toml.example) is generated from the settings models; a test fails when
# the committed files differ from what this writes.
docs: $(STAMP)
	$(BIN)/python -m cloudwatcher.config.reference

# cloudwatcher/schema/schema.sql, the full schema the migrations produce (pg_dump of a freshly
# migrated database on a throwaway embedded server): run after adding a migration.
schema: $(STAMP)
	$(BIN)/python -m cloudwatcher.schema.dump

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

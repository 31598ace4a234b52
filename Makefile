# Two commands on a fresh machine: `make serve` and `make test`. Both are idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install serve index test lint bench browser-deps clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first: letting pip resolve torch pulls gigabytes of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

browser-deps:
	@command -v /usr/bin/chromium >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "note: chromium not installed; browser tests will be skipped"; }

index: install
	$(VENV)/bin/karabakh-qa index

serve: install
	$(VENV)/bin/karabakh-qa serve --host 127.0.0.1 --port $${PORT:-8000}

test: install browser-deps
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	$(PY) benchmarks/bench_query.py
	$(PY) benchmarks/bench_http.py
	$(PY) benchmarks/bench_incremental.py

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT index/.lock .cache test-output

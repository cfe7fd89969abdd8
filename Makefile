# spywall: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= build/demo
JOBS   ?= auto
PLATFORM_DB = sqlite:///$(abspath $(DEMO))/platform/spywall.db

.PHONY: demo test install web-vendor lint typecheck unit fuzz-smoke fuzz system-deps bench-deps bench clean

$(STAMP): pyproject.toml setup.py src/spywall/formats/_glyphs.pyx src/spywall/formats/_bytescan.pyx \
		src/spywall/formats/_bytescan_vec.h src/spywall/device/_times.pyx
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(MAKE) --no-print-directory web-vendor
	touch $(STAMP)

# The dashboard's third-party files, taken from the npm registry at install time into the
# package's static folder (not committed): htmx (in-place review steps), d3 and
# topojson-client (the map), world-atlas (Natural Earth countries). Without them (no npm,
# no network) the pages still work as plain forms and links, with a server-drawn map.
WEB_VENDOR := src/spywall/platform/web/static/vendor
web-vendor:
	@mkdir -p $(WEB_VENDOR)
	@for spec in "htmx.org@2 package/dist/htmx.min.js" "d3@7 package/dist/d3.min.js" \
	    "topojson-client@3 package/dist/topojson-client.min.js" \
	    "world-atlas@2 package/countries-110m.json"; do \
	  set -- $$spec; name=$$(basename $$2); \
	  [ -s $(WEB_VENDOR)/$$name ] && continue; \
	  command -v npm >/dev/null || { echo "npm not found: $$name not vendored"; continue; }; \
	  tmp=$$(mktemp -d); \
	  (cd $$tmp && npm pack $$1 --silent >/dev/null 2>&1 && tar -xzf *.tgz $$2) \
	    && cp $$tmp/$$2 $(WEB_VENDOR)/$$name \
	    || echo "$$name not vendored (npm registry unavailable): the console works without it"; \
	  rm -rf $$tmp; \
	done

install: $(STAMP)

# Optional system tools that widen the tests (real fonts, tshark, cwebp, Chromium for the
# dashboard's browser tests, driven by Playwright with this executable). Best effort:
# they are installed when this runs as root with apt, and the tests that need them skip
# with a reason otherwise.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  need=""; \
	  for p in fonts-noto-core fonts-dejavu-core fonts-liberation2 tshark webp jbig2dec libheif-examples age chromium; do \
	    dpkg -s $$p >/dev/null 2>&1 || need="$$need $$p"; \
	  done; \
	  if [ -n "$$need" ]; then \
	    echo "installing system packages:$$need"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null) \
	      || echo "system packages not installed; dependent tests will skip"; \
	  fi; \
	else echo "not root or no apt: tests needing fonts/tshark/cwebp will skip"; fi

# The producers of the realistic scan corpus (benchmarks/corpus.py): Ghostscript, Cairo
# (through rsvg-convert), img2pdf, cwebp, heif-enc and fonts. Only `make bench` needs them.
BENCH_APT := ghostscript librsvg2-bin img2pdf webp libheif-examples fonts-noto-core \
             fonts-dejavu-core fonts-liberation2
bench-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  need=""; \
	  for p in $(BENCH_APT); do dpkg -s $$p >/dev/null 2>&1 || need="$$need $$p"; done; \
	  if [ -n "$$need" ]; then \
	    echo "installing corpus producers:$$need"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$need >/dev/null) \
	      || echo "corpus producers not installed; the corpus will lack their files"; \
	  fi; \
	else echo "not root or no apt: the corpus will lack the files of missing producers"; fi

# Each command exits 1 when it finds something, as it must on the planted samples.
demo: install
	rm -rf $(DEMO)
	$(PY) -m spywall.samples.demo $(DEMO)
	@echo "== spywall scan: crafted exploit samples and benign controls"
	$(BIN)/spywall scan $(DEMO)/files --format table; test $$? -le 1
	@echo "== spywall pcap: the 2019 zero-click pattern against the court-record infrastructure"
	$(BIN)/spywall pcap $(DEMO)/captures/*.pcap* --format table; test $$? -le 1
	@echo "== spywall check-ios: a backup with planted indicators, then its clean twin"
	$(BIN)/spywall check-ios $(DEMO)/ios-planted --format table --output $(DEMO)/ios-results; test $$? -le 1
	$(BIN)/spywall check-ios $(DEMO)/ios-clean --format table
	@echo "== spywall check-android: an androidqf capture with planted indicators"
	$(BIN)/spywall check-android $(DEMO)/android-planted.zip --format table; test $$? -le 1
	@echo "== spywall platform: the 2019 campaign on a platform, the order, and the vendor's return"
	mkdir -p $(DEMO)/platform
	$(PY) -m spywall.platform.world $(DEMO)/platform > $(DEMO)/platform/truth.json
	$(BIN)/spywall platform init --db $(PLATFORM_DB) -q -f table
	$(BIN)/spywall platform registry import --db $(PLATFORM_DB) $(DEMO)/platform/registry.json -f table
	$(BIN)/spywall platform ingest --db $(PLATFORM_DB) $(DEMO)/platform/events.jsonl -f table; test $$? -le 1
	$(BIN)/spywall platform campaigns --db $(PLATFORM_DB) -f table; test $$? -le 1
	$(BIN)/spywall platform violations --db $(PLATFORM_DB) -f table; test $$? -le 1
	$(BIN)/spywall platform notifications --db $(PLATFORM_DB) -f table; test $$? -le 1
	$(BIN)/spywall platform bans --db $(PLATFORM_DB) -f table; test $$? -le 1
	@echo "== the analyst's console on this world: make a key, then serve and open http://127.0.0.1:8080/ui/"
	@echo "   $(BIN)/spywall platform keys add analyst --scopes analyst,admin --db $(PLATFORM_DB)"
	@echo "   $(BIN)/spywall serve --db $(PLATFORM_DB) --media-root $(DEMO)/platform"

lint: install
	$(BIN)/ruff check src tests fuzz benchmarks

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q -n $(JOBS)

fuzz-smoke: install
	$(PY) fuzz/smoke.py

test: install system-deps lint typecheck unit fuzz-smoke

# Longer fuzzing (not part of test): FUZZ_SECONDS per target (default 300), corpora kept
# in build/fuzz/ and seeded with the samples and the hostile shapes of tests/hostile/.
fuzz: install
	$(PY) fuzz/long.py

# Benchmarks run in a venv of their own: MVT (the comparison) pins its own versions of
# shared dependencies, which must not leak into the test environment.
BENCH_VENV ?= .venv-bench
bench: system-deps bench-deps
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[dev,bench]'
	$(BENCH_VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) build .pytest_cache .mypy_cache .ruff_cache

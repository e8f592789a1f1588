# Sparse Tickets: `make book` builds the executed book, `make test` runs every test and chapter,
# `make lab` opens the chapters live in JupyterLab. All set everything up on a fresh machine (a
# virtual environment in .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LOTTERYLIB_DATA ?= $(abspath ../shared/data)
export PYTHONHASHSEED := 0
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# The order chapters start in `make book`: longest first (quick profile, empty cache), so two workers
# finish together instead of one long chapter running alone at the end; any chapter not listed
# (a new one) follows in name order.
LONGEST_FIRST := 03_deconstructing_tickets 05_binary_networks 07_comparison 06_neural_wirings 04_net_trim \
  08_structure 02_lottery_ticket 01_magnitude_pruning
BOOK_ORDER := $(filter $(NOTEBOOKS),$(LONGEST_FIRST:%=notebooks/%.ipynb)) \
  $(filter-out $(LONGEST_FIRST:%=notebooks/%.ipynb),$(NOTEBOOKS))
VENDOR := book/_vendor
BOOK_CACHE ?= $(abspath .cache/lotterylib)
UV_VERSION := 0.13.9
# Two jobs share two cores, so every library computes on one thread: torch and the BLAS read
# OMP_NUM_THREADS, the others their own variable (on a small shared machine two threads on a busy
# core ran 100x slower than one, lotterylib.train.configure_threads).
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 RAYON_NUM_THREADS=1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all book chapters html test unit install-test browser chromium claims bench vendor clean help lab student
all: help
help:
	@echo "make book   - set up, execute every chapter (quick profile) and build book/_build/html"
	@echo "              (= make chapters, which executes them into book/notebooks/, then make html)"
	@echo "make test   - set up, build the book, run the unit tests, every chapter as a test and the"
	@echo "              browser tests of the built pages and of make lab (installs Debian's chromium"
	@echo "              when missing)"
	@echo "make lab    - set up and open notebooks/ in JupyterLab, live (sliders, this venv's kernel);"
	@echo "              BOOK_PROFILE=full make lab runs the chapters at the papers' settings"
	@echo "make student - copies of the chapters for students, without the worked solutions (build/student/)"
	@echo "make bench  - run the benchmarks and write benchmarks/results.json"

# uv installs requirements.txt in parallel (seconds, where pip takes minutes). uv reads neither pip's
# configuration nor $$PIP_FIND_LINKS, so the local wheel folders pip is configured with are passed on
# to it: this project's machines keep a CPU build of torch in one (uv unpacks it in ~4 s, pip in ~30 s).
FIND_LINKS = $$($(PY) -m pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$$/\1/p" \
  | tr ' ' '\n' | sort -u | sed 's/^/--find-links /')
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --python $(PY) $(FIND_LINKS) -r requirements.txt
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	touch $@

# Executes every chapter once, as `make book` does (papermill fails on any cell error and every chapter
# ends with its claim checks), into a fresh result cache; then runs the unit tests and the checks of the
# executed chapters (tests/test_chapters.py reads them: nothing is executed twice) while the claims page
# and the HTML are built beside them (one process: alone it would leave a core idle), and the browser
# tests of the built pages (tests/test_browser.py, headless Chromium) as soon as the HTML is there;
# tests/test_lab.py checks `make lab` (chapter 01 live in JupyterLab, 30-45 s). The unit tests run on
# two workers, one test file per worker, the longest files first (tests/conftest.py); every process
# computes on one thread. The logs of the HTML build and of the browser tests follow pytest's;
# `make test` fails if either does.
# The fresh-venv install test (tests/test_install.py, about 1.5 min) runs with `make install-test`.
TEST_CACHE := $(abspath .cache/lotterylib-test)
SIDE := .cache/test-html
test: $(STAMP) chromium
	rm -rf $(TEST_CACHE) $(SIDE) && mkdir -p $(TEST_CACHE) $(SIDE)
	$(MAKE) --no-print-directory chapters BOOK_CACHE=$(TEST_CACHE)
	{ { $(MAKE) --no-print-directory html BOOK_CACHE=$(TEST_CACHE) && LOTTERYLIB_CHROMIUM=$$(command -v chromium) $(PY) -m pytest -q \
	    -p no:cacheprovider --durations=5 tests/test_browser.py; } > $(SIDE)/log 2>&1; echo $$? > $(SIDE)/status; } & \
	$(ONE_THREAD) LOTTERYLIB_CACHE=$(TEST_CACHE) BOOK_PROFILE=quick LOTTERYLIB_CHROMIUM=$$(command -v chromium) \
	  $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --timeout 1200 -m "not install" \
	  -p no:cacheprovider --durations=12 --ignore tests/test_browser.py tests; unit=$$?; \
	wait; echo "--- the HTML build and the browser tests (tests/test_browser.py):"; cat $(SIDE)/log; \
	side=$$(cat $(SIDE)/status); [ "$$side" = 0 ] || echo "make test: the HTML build or the browser tests failed (exit $$side)"; \
	[ $$unit = 0 ] && [ "$$side" = 0 ]

unit: $(STAMP)
	$(ONE_THREAD) $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -q -m "not install" --ignore tests/test_browser.py \
	  --ignore tests/test_lab.py --ignore tests/test_chapters.py tests

install-test: $(STAMP)
	$(PY) -m pytest -q -m install tests/test_install.py

# The built book in headless Chromium (no network): every page, the sliders, the search. Needs `make book`.
browser: $(STAMP) chromium
	LOTTERYLIB_CHROMIUM=$$(command -v chromium) $(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py

# Debian's Chromium for the browser test (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# JS for widgets and MathJax comes from the npm registry once and is served by the book itself,
# so the built pages work with no network.
$(VENDOR)/.done:
	rm -rf $(VENDOR) .cache/npm && mkdir -p $(VENDOR)/widgets $(VENDOR)/mathjax .cache/npm
	cd .cache/npm && npm pack --silent @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 mathjax@3.2.2 >/dev/null
	cd .cache/npm && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar -xzf "$$f" -C "$${f%.tgz}"; done
	cp .cache/npm/requirejs-*/package/require.js $(VENDOR)/require.js
	cp .cache/npm/jupyter-widgets-html-manager-*/package/dist/embed-amd.js $(VENDOR)/widgets/
	cp .cache/npm/jupyter-widgets-html-manager-*/package/dist/*.{woff,woff2,eot,ttf,svg} $(VENDOR)/widgets/ 2>/dev/null || true
	cp .cache/npm/mathjax-*/package/es5/tex-mml-chtml.js $(VENDOR)/mathjax/
	mkdir -p $(VENDOR)/mathjax/output/chtml/fonts && cp -r .cache/npm/mathjax-*/package/es5/output/chtml/fonts/woff-v2 $(VENDOR)/mathjax/output/chtml/fonts/
	touch $@
vendor: $(VENDOR)/.done

# Chapters run once, two at a time, with papermill (failing on any cell error); the claims page is
# made from the same cached runs; the book is then built from the executed copies without executing again.
# Chapters that need the same run share it through the result cache (its per-entry lock makes the
# second one wait for the first one's result). The cache is stamped with a digest of the library's
# source (LOTTERYLIB_CACHE_SALT), so a code change never reuses results made by older code.
# No progress bars in the book (TQDM_DISABLE): a static page cannot show them. Each chapter's wall time
# is printed when it ends. CELL_TIMEOUT_S bounds each cell: a cell past it fails its chapter, which is
# then executed once more (every run it finished comes back from the result cache, so a slow machine's
# second attempt goes on where the first stopped); a chapter that fails twice fails the build, with
# papermill's message naming the cell. The longest quick cell computes for 2-3.5 min with both cores busy,
# so 10 min leave room for a machine three times slower. (The limit also ended a stall, 3 times in 5 clean
# builds: papermill missed the reply to a slider cell the kernel had finished, because the live figure was
# captured with `with output:` and nbclient sent it back to the kernel on the shell channel it was waiting
# on, jupyter/nbclient#312. lotterylib.widgets no longer captures; tests/test_widgets.py checks it.)
CELL_TIMEOUT_S ?= 600
CODE_SALT = $$($(PY) -c "from lotterylib.provenance import source_digest; print(source_digest())")
book: chapters
	$(MAKE) --no-print-directory html
	@echo "Book: book/_build/html/index.html"

chapters: $(STAMP) $(VENDOR)/.done
	rm -rf book/notebooks book/_build && mkdir -p book/notebooks
	export LOTTERYLIB_CACHE_SALT=$(CODE_SALT) && \
	printf '%s\n' $(BOOK_ORDER) | $(ONE_THREAD) LOTTERYLIB_CACHE=$(BOOK_CACHE) BOOK_PROFILE=quick TQDM_DISABLE=1 \
	  xargs -P 2 -I{} sh -c 'echo "executing {}"; start=$$(date +%s); \
	    for attempt in 1 2; do \
	      if $(PY) -m papermill --log-level ERROR --execution-timeout $(CELL_TIMEOUT_S) --cwd notebooks "{}" "book/{}"; then \
	        echo "executed {} in $$(( $$(date +%s) - start )) s (attempt $$attempt)"; exit 0; fi; \
	      [ $$attempt = 1 ] && echo "{} failed; executing it once more (its finished runs come from the result cache)"; \
	    done; exit 255'

# The claims page from the chapters' cached runs, and the HTML from the executed chapters (`make
# chapters`), without executing anything again.
html: $(STAMP) $(VENDOR)/.done
	LOTTERYLIB_CACHE=$(BOOK_CACHE) LOTTERYLIB_CACHE_SALT=$(CODE_SALT) $(PY) -m lotterylib scoreboard --profile quick --out book/scoreboard.md --no-progress
	$(VENV)/bin/jupyter-book build book -W -n --keep-going

# The chapters live in JupyterLab: the sliders are ipywidgets redrawn by a kernel, and the kernel is this
# venv's python (with lotterylib). Same data and result cache as `make book` (the cache stamped with
# the library's source as the server starts: restart `make lab` after changing lotterylib), so a
# chapter the book has run comes back from the cache. Only on 127.0.0.1; JupyterLab prints its URL,
# with the token that lets the browser in. LAB_DIR, LAB_PORT and LAB_ARGS (e.g. --no-browser) change
# it; tests/test_lab.py runs this target on a copy of chapter 01, runs it to its first slider in
# Chromium and moves the slider.
LAB_DIR ?= notebooks
LAB_PORT ?= 8888
LAB_ARGS ?=
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: $(STAMP)
	LOTTERYLIB_CACHE=$${LOTTERYLIB_CACHE:-$(BOOK_CACHE)} LOTTERYLIB_CACHE_SALT=$(CODE_SALT) JUPYTER_PREFER_ENV_PATH=1 \
	  $(VENV)/bin/jupyter-lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
	  --ServerApp.root_dir="$(LAB_DIR)" $(ALLOW_ROOT) $(LAB_ARGS)

# The notebooks a course hands out: every exercise, no worked solution (book/course.md).
student: $(STAMP)
	$(PY) scripts/student_notebooks.py build/student

claims: $(STAMP)
	$(PY) -m lotterylib claims --profile quick

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf book/_build book/notebooks book/scoreboard.md

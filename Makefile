# The two commands of the README. Each installs what it needs on a fresh machine (scripts/setup.sh).
.PHONY: setup demo test test-slow benchmarks

PYTHON ?= python

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

# The main job: the instructor pipeline end to end on the built-in data (CPU).
demo: setup
	$(PYTHON) -m autograder.cli demo

# The tests (CPU, offline). .ci/run calls this.
test: setup
	$(PYTHON) -m pytest -n 2 -q

# Slow tests, kept out of the default run; .ci/run calls this too. The Colab-like runtime test runs last and
# alone: the quick-mode minutes it checks are those of an otherwise idle 2-core machine.
test-slow: setup
	$(PYTHON) -m pytest -n 2 -q -m slow --ignore=tests/test_student_runtime.py || [ $$? -eq 5 ]  # 5: none collected
	$(PYTHON) -m pytest -q -s -m slow tests/test_student_runtime.py || [ $$? -eq 5 ]

benchmarks: setup
	for b in benchmarks/bench_*.py; do $(PYTHON) $$b || exit 1; done

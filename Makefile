# The two commands of the README. Each installs what it needs on a fresh machine.
.PHONY: setup demo test test-slow benchmarks

setup:
	bash scripts/setup.sh

demo: setup
	python -m autograder.cli demo

test: setup
	python -m pytest -n 2 -q

test-slow: setup
	python -m pytest -q -m slow

benchmarks: setup
	for b in benchmarks/bench_*.py; do python $$b || exit 1; done

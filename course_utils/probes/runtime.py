"""Runs one probe inside the grading kernel and writes its observations to a file.

The grader executes a cell that calls :func:`run_probe`; the observations travel back to the
grader's process as a ``torch.save`` file, which the grader reads with ``weights_only=True``.
"""
from __future__ import annotations

import importlib
import traceback


def _namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except Exception:
        pass
    import __main__

    return vars(__main__)


def run_probe(probe_spec: str, names: list, inputs_path: str, out_path: str) -> None:
    """Look up ``names`` in the notebook, run the probe on the grader's inputs, save observations."""
    import torch

    ns = _namespace()
    required, optional = names[:1], names[1:]
    missing = [n for n in required if n not in ns]
    if missing:
        obs = {"error": f"{missing[0]} is not defined in the notebook. The grader looks for it by this exact "
                        f"name: check that its cell was not renamed, deleted or turned into Markdown, and that it ran "
                        f"without an error."}
    else:
        objects = {n: ns[n] for n in required + [o for o in optional if o in ns]}
        inputs = torch.load(inputs_path, weights_only=True)
        module, _, func = probe_spec.partition(":")
        try:
            obs = getattr(importlib.import_module(module), func)(objects, inputs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from student code included
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            obs = {"error": f"{names[0]} raised an error when the grader ran it: {last}"}
    torch.save(obs, out_path)

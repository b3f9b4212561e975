"""Runs one probe inside the grading kernel and hands its observations back to the grader.

The grader executes a cell that calls the probe entry point; the observations travel back to the
grader's process as a ``torch.save`` file, which the grader reads with ``weights_only=True``.

Tampering. The student's code runs in this same process, so everything here could in principle be
reached by it. What this module does about it (the grader's trust model is described in
``autograder/grader.py``):

* :func:`arm` runs when the kernel starts, before any student cell. It keeps the *original*
  objects the probes rely on (``torch``, ``torch.Tensor``, ``torch.nn`` modules and functions, the
  probe modules, serialisation, a few builtins) and installs the entry point under a name that only
  the grader knows.
* Before a probe runs, anything the notebook replaced among those objects (``torch.save``,
  ``torch.allclose``, ``nn.Module.__call__``, a probe function, a module in ``sys.modules``...) is
  put back and reported; tracing hooks are removed. So a notebook that patched the machinery is
  graded on what its own code does, and the instructor is told.
* If something is replaced *while* the probe runs (by the student's code that the probe calls), the
  observations are discarded: the unit scores 0 with a message saying why.
* The observations file is signed (HMAC-SHA256) with a key that the grader handed to the kernel
  through a file deleted before any student code ran, over a fresh nonce per call; the grader
  rejects anything unsigned (a fake ``run_probe`` or a rewritten grader cell cannot sign).
"""
from __future__ import annotations

import importlib
import traceback
import types

MAGIC = b"CKOBS1"
MAX_LIST = 10_000


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


def _observe(probe_fn, names: list, inputs: dict, ns: dict) -> dict:
    required, optional = names[:1], names[1:]
    missing = [n for n in required if n not in ns]
    if missing:
        return {"error": f"{missing[0]} is not defined in the notebook. The grader looks for it by this exact "
                         f"name: check that its cell was not renamed, deleted or turned into Markdown, and that it ran "
                         f"without an error."}
    objects = {n: ns[n] for n in required + [o for o in optional if o in ns]}
    try:
        return probe_fn(objects, inputs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from student code included
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"error": f"{names[0]} raised an error when the grader ran it: {last}"}


def run_probe(probe_spec: str, names: list, inputs_path: str, out_path: str) -> None:
    """Look up ``names`` in the notebook, run the probe on the grader's inputs, save observations.

    The plain, unsigned path (instructor tools, tests). The grader uses the armed entry point."""
    import torch

    inputs = torch.load(inputs_path, weights_only=True)
    module, _, func = probe_spec.partition(":")
    obs = _observe(getattr(importlib.import_module(module), func), names, inputs, _namespace())
    torch.save(obs, out_path)


# ---- the armed entry point ------------------------------------------------------------------

_BUILTINS_WATCHED = ("open", "isinstance", "issubclass", "getattr", "setattr", "hasattr", "len", "list", "dict",
                     "tuple", "float", "int", "bool", "str", "type", "zip", "range", "sum", "any", "all", "min",
                     "max", "iter", "next", "repr", "id", "print", "__import__", "super", "callable", "round", "abs")


def _watched_objects():
    """(label, object whose attributes are watched, watch only these names or None for all)."""
    import builtins
    import hashlib
    import hmac
    import io
    import pickle
    import pkgutil
    import sys

    import torch
    import torch.nn.functional
    import torch.serialization

    try:  # torch wraps some of its functions (torch.manual_seed ...) when this is first imported, which
        import torch._dynamo  # noqa: F401  the first optimizer.step() does; take the snapshot after that
    except Exception:  # pragma: no cover - builds without dynamo
        pass

    import course_utils.probes as probes_pkg

    out = [("torch", torch, None), ("torch.Tensor", torch.Tensor, None), ("torch.nn.functional", torch.nn.functional, None),
           ("torch.serialization", torch.serialization, None), ("torch.nn.init", torch.nn.init, None),
           ("pickle", pickle, None), ("io", io, None), ("hmac", hmac, None), ("hashlib", hashlib, None),
           ("builtins", builtins, _BUILTINS_WATCHED), ("sys", sys, ("modules", "settrace", "setprofile"))]
    for name, cls in sorted(vars(torch.nn).items()):
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            out.append((f"torch.nn.{name}", cls, None))
    out.append(("torch.nn.Parameter", torch.nn.Parameter, None))
    out.append((__name__, sys.modules[__name__], None))  # this entry point itself
    for info in pkgutil.iter_modules(probes_pkg.__path__):
        try:
            mod = importlib.import_module(f"course_utils.probes.{info.name}")
        except Exception:
            continue
        out.append((mod.__name__, mod, None))
    return out


def arm(key: bytes, entry_name: str) -> None:
    """Keep the original machinery and install the signed probe entry point as ``builtins.<entry_name>``."""
    import builtins
    import hashlib
    import hmac
    import io
    import sys

    import torch

    watched = _watched_objects()
    missing = object()
    snapshot = []  # (label, owner, name, original value)
    for label, owner, only in watched:
        items = vars(owner)
        for name in (only if only is not None else list(items)):
            if name in items:
                snapshot.append((label, owner, name, items[name]))
    # A function can be changed in place (its __code__ or defaults replaced) without replacing the object:
    # the parts of every watched Python function are kept too, so the probe functions and everything they call
    # run as they were when the entry point was armed.
    function_type = types.FunctionType
    function_parts = [(label, name, value, value.__code__, value.__defaults__, value.__kwdefaults__)
                      for label, _owner, name, value in snapshot if isinstance(value, function_type)]
    class_keys = {id(owner): set(vars(owner)) for _label, owner, _only in watched if isinstance(owner, type)}
    modules = {name: mod for name, mod in sys.modules.items()
               if name in ("torch", "torch.nn", "torch.nn.functional", "torch.serialization", "builtins", "pickle", "io",
                           "hmac", "hashlib", "course_utils", "course_utils.probes", "course_utils.grading", __name__)
               or name.startswith("course_utils.probes.")}
    modules_dict = sys.modules
    pristine_probe_modules = {name: mod for name, mod in modules.items() if name.startswith("course_utils.probes.")}
    # The probe functions themselves, as they are now: the entry point calls these, whatever the module holds later.
    probe_functions = {f"{name}:{attr}": value for name, mod in pristine_probe_modules.items()
                       for attr, value in vars(mod).items() if attr.startswith("probe_") and callable(value)}
    save, load, BytesIO, hmac_new, sha256 = torch.save, torch.load, io.BytesIO, hmac.new, hashlib.sha256
    open_, settrace, setprofile, gettrace, getprofile = builtins.open, sys.settrace, sys.setprofile, sys.gettrace, sys.getprofile
    namespace = _namespace
    vars_, setattr_, delattr_, isinstance_ = vars, setattr, delattr, isinstance
    observe = _observe
    name_in = lambda cls, n: n in vars_(cls)  # noqa: E731
    lazy = {"__slotnames__", "_abc_impl", "_abc_cache", "_abc_registry", "_abc_negative_cache",
            "_abc_negative_cache_version"}  # set by pickling / abc on first use, not by a notebook

    def restore() -> list:
        """Put every replaced original back; return what was replaced."""
        changed = []
        for name, mod in modules.items():
            if modules_dict.get(name) is not mod:
                changed.append(f"sys.modules[{name!r}]")
                modules_dict[name] = mod
        for label, owner, name, value in snapshot:
            if vars_(owner).get(name, missing) is not value:
                changed.append(f"{label}.{name}")
                try:
                    setattr_(owner, name, value)
                except Exception:
                    pass
        for label, name, fn, code, defaults, kwdefaults in function_parts:
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                changed.append(f"{label}.{name} (its code)")
                try:
                    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
                except Exception:
                    pass
        for label, owner, _only in watched:
            known = class_keys.get(id(owner))
            if known is None:
                continue
            # A new attribute matters only when it shadows an inherited one (nn.Sigmoid.__call__ = ...);
            # plain additions are what libraries do on import (transformers adds nn.Module.smart_apply).
            for name in [n for n in list(vars_(owner)) if n not in known and n not in lazy
                         and any(name_in(base, n) for base in owner.__mro__[1:])]:
                changed.append(f"{label}.{name}")
                try:
                    delattr_(owner, name)
                except Exception:
                    pass
        return changed

    def entry(probe_spec: str, names: list, inputs_path: str, out_path: str, nonce: str) -> None:
        hooks = []
        if gettrace() is not None or getprofile() is not None:
            hooks.append("a tracing hook (sys.settrace / sys.setprofile)")
        settrace(None)
        setprofile(None)
        before = restore()
        module, _, func = probe_spec.partition(":")
        probe_fn = probe_functions.get(probe_spec)
        if probe_fn is None:  # a probe module the kernel had not imported when it was armed
            mod = pristine_probe_modules.get(module) or importlib.import_module(module)
            probe_fn = vars_(mod)[func]
        with open_(inputs_path, "rb") as fh:
            inputs = load(BytesIO(fh.read()), weights_only=True)
        obs = observe(probe_fn, list(names), inputs, namespace())
        settrace(None)
        setprofile(None)
        during = restore()
        if not isinstance_(obs, dict):
            obs = {"error": "the probe returned no observations."}
        if during:
            obs = {"error": f"while the grader ran it, the notebook's code replaced part of the grading machinery "
                            f"({', '.join(during[:5])}); its results cannot be trusted and were discarded."}
        if before or hooks or during:
            obs["_integrity"] = before + hooks + [f"{c} (while the probe ran)" for c in during]
        buf = BytesIO()
        save(obs, buf)
        payload = buf.getvalue()
        mac = hmac_new(key, nonce.encode() + b"\0" + probe_spec.encode() + b"\0" + payload, sha256).digest()
        with open_(out_path, "wb") as fh:
            fh.write(MAGIC + mac + payload)

    entry.__name__ = entry.__qualname__ = "probe_entry"
    setattr(builtins, entry_name, entry)

    # No audit hook after this one: a hook added by a notebook could swap a probe's helpers while the probe
    # runs and put them back before the check that follows it. (A hook that raises RuntimeError on this
    # event makes Python drop the new hook.)
    def no_more_audit_hooks(event, _args):
        if event == "sys.addaudithook":
            raise RuntimeError("audit hooks are not allowed in a graded notebook")

    sys.addaudithook(no_more_audit_hooks)


def verify(blob: bytes, key: bytes, nonce: str, probe_spec: str):
    """Grader side: the payload of a signed observations file, or None when the signature is wrong."""
    import hashlib
    import hmac

    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 32:
        return None
    mac, payload = blob[len(MAGIC):len(MAGIC) + 32], blob[len(MAGIC) + 32:]
    expected = hmac.new(key, nonce.encode() + b"\0" + probe_spec.encode() + b"\0" + payload, hashlib.sha256).digest()
    return payload if hmac.compare_digest(mac, expected) else None

"""Prepare a notebook for upload: check it, remove personal metadata, package it.

Run the last cell of a problem set::

    from course_utils.submit import submit
    submit()                      # in Colab: packages this notebook and downloads the zip
    submit("autoencoder_probing.ipynb", student="jdoe")   # locally

What happens (:func:`prepare_submission`):

1. The notebook is read and validated (nbformat). A file that is not a notebook stops here with an
   error that says what is wrong.
2. Problems the grader would run into are *reported*, never "fixed" in your work: graded cells that
   were deleted or lost their nbgrader metadata (possible when a notebook is re-saved by Colab or
   cells are copied into a new notebook), duplicated cell ids, answers still left to write (code that
   still raises ``NotImplementedError``, a written answer that still reads "YOUR ANSWER HERE").
3. A CLEAN COPY is made without Colab's personal metadata (your Google name, user id, photo and
   time zone in ``executionInfo``; file ids and authorship tags in the notebook's ``colab``
   metadata). Your original file is never modified.
4. When the tools exist, a PDF is exported too (nbconvert: webpdf or LaTeX); otherwise it says so.
5. Everything goes into one zip, ``<assignment>_<student>.zip``, ready to upload.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Union

from .modes import is_grading
from .notebook_checks import (ANSWER_STUB, UNANSWERED, Issue, SubmissionError, check_notebook,  # noqa: F401
                              read_notebook, validate)

# Keys holding who the student is (Colab writes them into executionInfo and provenance entries).
PERSONAL_KEYS = frozenset({"user", "user_tz", "userId", "displayName", "photoUrl", "email", "permissionId"})
# Keys of the notebook-level `colab` metadata that identify the author or their Drive files.
PERSONAL_COLAB_KEYS = frozenset({"provenance", "authorship_tag"})


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------
def _drop_personal(value, removed: set, where: str):
    if isinstance(value, dict):
        for key in [k for k in value if k in PERSONAL_KEYS]:
            del value[key]
            removed.add(f"{where}.{key}")
        for key, item in value.items():
            _drop_personal(item, removed, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _drop_personal(item, removed, where)


def strip_personal_metadata(nb: dict) -> tuple:
    """Return ``(clean_copy, removed)``: a deep copy of ``nb`` without the student's Google
    identity (user name / id / photo / time zone in ``executionInfo``; ``provenance`` and
    ``authorship_tag`` of the notebook's ``colab`` metadata), and the sorted list of what was
    removed. Cell ids (``metadata.id``), ``outputId``, outputs and answers are kept."""
    clean = copy.deepcopy(nb)
    removed: set = set()
    meta = clean.get("metadata", {})
    colab_meta = meta.get("colab")
    if isinstance(colab_meta, dict):
        for key in PERSONAL_COLAB_KEYS & set(colab_meta):
            del colab_meta[key]
            removed.add(f"metadata.colab.{key}")
    _drop_personal(meta, removed, "metadata")
    for cell in clean.get("cells", []):
        _drop_personal(cell.get("metadata", {}), removed, "cell.metadata")
        for output in cell.get("outputs", []) or []:
            _drop_personal(output.get("metadata", {}), removed, "output.metadata")
    return clean, sorted(removed)


# --------------------------------------------------------------------------------------------
# Names, PDF, packaging
# --------------------------------------------------------------------------------------------
def assignment_name(notebook_path: Union[str, Path], nb: Optional[dict] = None) -> str:
    """The assignment's name: ``metadata.course_kit.assignment`` when the release wrote it, else the
    file name without what browsers and Colab add ("Copy of ...", " (1)")."""
    if nb:
        name = nb.get("metadata", {}).get("course_kit", {}).get("assignment")
        if isinstance(name, str) and name.strip():
            return _safe(name)
    stem = Path(notebook_path).stem
    stem = re.sub(r"^(Copy of |Copie de |Kopie von )+", "", stem)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    stem = re.sub(r"-checkpoint$", "", stem)
    return _safe(stem) or "notebook"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_.")


def pdf_tools() -> Optional[str]:
    """Which nbconvert PDF exporter can run here: ``"webpdf"``, ``"pdf"`` (LaTeX) or None."""
    if importlib.util.find_spec("nbconvert") is None:
        return None
    if importlib.util.find_spec("playwright") is not None:
        return "webpdf"
    if shutil.which("xelatex") and shutil.which("pandoc"):
        return "pdf"
    return None


def export_pdf(nb: dict, out_path: Path) -> Optional[str]:
    """Export ``nb`` (not re-executed) to ``out_path``; return None on success, else why not."""
    exporter_name = pdf_tools()
    if exporter_name is None:
        return ("PDF export is not available here (it needs nbconvert with playwright, or xelatex + pandoc); "
                "the zip holds the notebook only. If your course asks for a PDF: File -> Print -> Save as PDF.")
    try:
        import nbformat
        from nbconvert import PDFExporter, WebPDFExporter

        exporter = WebPDFExporter() if exporter_name == "webpdf" else PDFExporter()
        if exporter_name == "webpdf":
            exporter.allow_chromium_download = False
        body, _ = exporter.from_notebook_node(nbformat.from_dict(nb))
        out_path.write_bytes(body)
        return None
    except Exception as err:  # noqa: BLE001 - a PDF is a convenience, never a reason to fail
        out_path.unlink(missing_ok=True)
        return (f"PDF export failed ({type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}); "
                "the zip holds the notebook only.")


def prepare_submission(notebook_path: Union[str, Path], out_dir: Union[str, Path, None] = None,
                       student: Optional[str] = None, pdf: bool = True,
                       release_notebook: Union[str, Path, None] = None, quiet: bool = False) -> Path:
    """Check ``notebook_path``, clean a copy, add a PDF when possible, and zip it for upload.

    - ``out_dir``: where the zip goes (default: next to the notebook).
    - ``student``: your name or id, used in the zip's name (``<assignment>_<student>.zip``).
    - ``pdf``: also export a PDF when the tools exist (otherwise a note says so and this continues).
    - ``release_notebook``: the released notebook, to compare graded cells against (optional).

    Returns the zip's path. The original notebook is never modified.
    """
    notebook_path = Path(notebook_path)
    nb = read_notebook(notebook_path)
    issues = check_notebook(nb, release_notebook)
    clean, removed = strip_personal_metadata(nb)
    validate(clean, f"the cleaned copy of {notebook_path}")

    assignment = assignment_name(notebook_path, nb)
    who = _safe(student or "") or "submission"
    out_dir = Path(out_dir) if out_dir is not None else notebook_path.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{assignment}_{who}.zip"
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        nb_file = Path(tmp) / f"{assignment}.ipynb"
        nb_file.write_text(json.dumps(clean, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        members = [nb_file]
        if pdf:
            pdf_file = Path(tmp) / f"{assignment}.pdf"
            why_not = export_pdf(clean, pdf_file)
            if why_not is None:
                members.append(pdf_file)
            else:
                notes.append(why_not)
        partial = zip_path.with_name(zip_path.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for member in members:
                zf.write(member, member.name)
        os.replace(partial, zip_path)

    if not quiet:
        print(f"Checked {notebook_path.name}: {len(nb.get('cells', []))} cells, valid notebook format.")
        for issue in issues:
            print(f"  {issue}")
        if removed:
            print(f"Removed personal metadata from the copy: {', '.join(removed)} (your file is unchanged).")
        for note in notes:
            print(note)
        print(f"Submission ready: {zip_path} ({', '.join(m.name for m in members)})")
    return zip_path


# --------------------------------------------------------------------------------------------
# The notebook's last cell
# --------------------------------------------------------------------------------------------
def _colab_notebook(out_dir: Path) -> Path:
    """Fetch the notebook open in Colab (with your latest edits) and write it to ``out_dir``."""
    from google.colab import _message  # type: ignore

    reply = _message.blocking_request("get_ipynb", timeout_sec=60)
    nb = reply.get("ipynb") if isinstance(reply, dict) else None
    if not nb:
        raise SubmissionError("Colab did not hand over the notebook; save it (Ctrl+S / File -> Save) and run this "
                              "cell again, or download it (File -> Download -> .ipynb) and upload that file.")
    name = nb.get("metadata", {}).get("colab", {}).get("name") or "notebook.ipynb"
    path = out_dir / Path(name).name
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def _local_notebook() -> Optional[Path]:
    """The path of the running notebook, when Jupyter tells the kernel (``JPY_SESSION_NAME`` or
    IPython's ``__session__``)."""
    candidates = [os.environ.get("JPY_SESSION_NAME")]
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            candidates.append(shell.user_ns.get("__session__"))
    except ImportError:  # pragma: no cover
        pass
    for candidate in candidates:
        if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    return None


def find_notebook(notebook_path=None, colab_dir: Union[str, Path] = "/content"):
    """Which notebook file a cell means: a path, an assignment id (``"autoencoder_probing"`` ->
    ``autoencoder_probing.ipynb`` here), or ``None`` for the running notebook (Colab's open notebook,
    or the local Jupyter session). Returns ``(path or None, an example file name for messages)``."""
    from .colab import in_colab

    example = "autoencoder_probing.ipynb"
    if notebook_path is not None and not str(notebook_path).endswith(".ipynb") and not Path(notebook_path).is_file():
        example = f"{notebook_path}.ipynb"
        notebook_path = Path(example) if Path(example).is_file() else None
    if notebook_path is None:
        notebook_path = _colab_notebook(Path(colab_dir)) if in_colab() else _local_notebook()
    return notebook_path, example


class SubmissionZip(type(Path())):
    """The zip's path, as :func:`submit` returns it: a plain ``Path`` whose repr is one short line, so that the
    notebook's last cell does not end with a long ``Out[]`` under what ``submit()`` already printed."""

    def __repr__(self) -> str:
        return f"<submission zip: {self.name}>"

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's display of a cell's value
        printer.text(repr(self))


def submit(notebook_path: Union[str, Path, None] = None, student: Optional[str] = None, pdf: bool = True,
           out_dir: Union[str, Path, None] = None) -> Optional[Path]:
    """Package this notebook for upload (run it as the notebook's last cell).

    In Colab it takes the open notebook, prepares the zip and downloads it to your computer. Locally
    it finds the running notebook (or takes ``notebook_path``) and prints where the zip is.
    Save the notebook first so the file holds your latest answers. Returns the zip's path (a
    :class:`SubmissionZip`, shown as one short line), or None when nothing was packaged.
    """
    from .colab import in_colab

    if is_grading():
        print("submit(): skipped while the notebook is being graded.")
        return None
    colab = in_colab()
    notebook_path, example = find_notebook(notebook_path, out_dir or "/content")
    if notebook_path is None:
        print("submit(): cannot tell which file this notebook is. Save it, then run for example\n"
              f"    submit('{example}', student='your_id')\n"
              "with the path of your notebook file.")
        return None
    zip_path = prepare_submission(notebook_path, out_dir=out_dir, student=student, pdf=pdf)
    if colab:
        try:
            from google.colab import files  # type: ignore

            files.download(str(zip_path))
            print("Your browser is downloading the zip; upload it to the course's submission page.")
        except Exception as err:  # noqa: BLE001 - downloads can be blocked by the browser
            print(f"Automatic download failed ({err}); open the Files panel (left), right-click "
                  f"{zip_path.name} -> Download.")
    else:
        print(f"Upload {zip_path} to the course's submission page.")
    return SubmissionZip(zip_path)


__all__ = ["Issue", "SubmissionError", "find_notebook", "read_notebook", "validate", "check_notebook", "strip_personal_metadata",
           "assignment_name", "pdf_tools", "export_pdf", "prepare_submission", "submit", "SubmissionZip"]

if __name__ == "__main__":  # python -m course_utils.submit NOTEBOOK [STUDENT]
    prepare_submission(sys.argv[1], student=sys.argv[2] if len(sys.argv) > 2 else None)

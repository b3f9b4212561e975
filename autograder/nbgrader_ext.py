"""nbgrader preprocessors of the course kit, configured in ``nbgrader_config.py``.

``RestoreHiddenTests`` (``nbgrader autograde``, in place of ``OverwriteCells``)
    ``nbgrader generate_assignment`` records a locked cell in the gradebook *before* it removes the
    hidden tests (``ComputeChecksums`` and ``SaveCells`` run before ``ClearHiddenTests``), so the
    gradebook holds the test cell with its hidden region and that version's checksum, while the released
    cell, without the region, carries another checksum. ``OverwriteCells`` compares the submitted cell
    with the gradebook's checksum, so every test cell with hidden tests of every student was reported
    as changed ("Attribute 'checksum' for cell test_encoder has changed!", jupyter/nbgrader#1961), which
    buries the one warning that matters: a student who did edit a locked cell. This subclass compares a
    submitted locked cell with what was *released* (the gradebook's source without its hidden regions,
    as ``ClearHiddenTests`` makes it): when they agree, the gradebook's source (hidden tests included) is
    put back silently; when they do not, ``OverwriteCells`` warns and restores it as before.

``FeedbackClearHiddenTests`` + ``CleanFeedback`` (``nbgrader generate_feedback``)
    nbgrader 0.9.6 has no switch to keep hidden tests out of feedback (jupyter/nbgrader#917): its
    ``GenerateFeedback.preprocessors`` list is the option. nbgrader's own ``ClearHiddenTests`` removes the
    hidden regions of the autograded notebook, and ``CleanFeedback`` replaces every error's traceback by
    its last line and removes paths into the instructor's files from what the cells printed.

:func:`keep_release_on_failure` (``nbgrader generate_assignment`` / ``generate_solution``)
    With ``--force`` (or a source newer than the release) nbgrader deletes ``assignments/<pset>`` before it
    converts, and deletes what it wrote when the conversion fails: a broken source notebook cost the
    committed release. The folders nbgrader would delete are copied aside first and put back when the
    conversion fails (``course-kit release`` builds in a temporary folder and never had the problem).
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import sys
import tempfile

from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from traitlets import List, Unicode

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def released_checksum(source_cell, cell) -> str:
    """The checksum the released version of ``source_cell`` (a gradebook SourceCell) carries."""
    released = copy.deepcopy(cell)
    released.source = source_cell.source
    released.cell_type = source_cell.cell_type
    released.metadata.nbgrader["locked"] = source_cell.locked
    ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(released)
    return utils.compute_checksum(released)


class RestoreHiddenTests(OverwriteCells):
    """``OverwriteCells`` that does not report a test cell as changed because its hidden tests were removed."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and utils.is_locked(cell):
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if (source_cell is not None and source_cell.locked and cell.cell_type == source_cell.cell_type
                    and cell.source != source_cell.source
                    and utils.compute_checksum(cell) == released_checksum(source_cell, cell)):
                cell.source = source_cell.source  # the released cell, untouched: put its hidden tests back
        return super().preprocess_cell(cell, resources, cell_index)


# generate_feedback configures `display_data_priority` for every preprocessor it runs; nbgrader's base class
# does not declare it configurable, and traitlets would warn "Config option not recognized" for each.
_PRIORITY = ['text/html', 'application/pdf', 'text/latex', 'image/svg+xml', 'image/png', 'image/jpeg', 'text/plain']


class FeedbackClearHiddenTests(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests``, run on the autograded notebook when feedback is generated."""

    display_data_priority = List(_PRIORITY, config=True)


class CleanFeedback(NbGraderPreprocessor):
    """Feedback without grader tracebacks or paths into the instructor's files."""

    display_data_priority = List(_PRIORITY, config=True)
    course_root = Unicode("", help="The course folder, removed from paths shown in feedback").tag(config=True)

    def preprocess(self, nb, resources):
        here = os.path.dirname(os.path.abspath(__file__))
        prefixes = {self.course_root and os.path.abspath(self.course_root), os.getcwd(), here, os.path.dirname(here),
                    sys.prefix, os.path.expanduser("~")}
        prefixes = sorted((p for p in prefixes if p and p != os.sep), key=len, reverse=True)
        self._paths = [re.compile(re.escape(p) + r"(?:" + re.escape(os.sep) + r"|(?![\w.-]))") for p in prefixes]
        return super().preprocess(nb, resources)

    def _scrub(self, text) -> str:
        text = _ANSI.sub("", str(text))
        for pattern in self._paths:
            text = pattern.sub("", text)
        return text

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                evalue = self._scrub(output.get("evalue", ""))
                output["evalue"] = evalue
                output["traceback"] = [f"{output.get('ename', 'Error')}: {evalue}".rstrip(": ")]
            elif kind == "stream":
                output["text"] = self._scrub(output.get("text", ""))
            elif kind in ("execute_result", "display_data") and "text/plain" in output.get("data", {}):
                output["data"]["text/plain"] = self._scrub(output["data"]["text/plain"])
        return cell, resources


PROTECTED_CONVERTERS = ("GenerateAssignment", "GenerateSolution")  # their destinations are committed


def keep_release_on_failure() -> None:
    """Make nbgrader's release converters put back the folders they removed when a conversion fails."""
    from nbgrader.converters.base import BaseConverter

    if getattr(BaseConverter, "_course_kit_keeps_release", False):
        return
    init_destination, convert_notebooks = BaseConverter.init_destination, BaseConverter.convert_notebooks

    def saving_init_destination(self, assignment_id, student_id):
        kept = getattr(self, "_course_kit_kept", None)
        if kept is not None:
            dest = os.path.normpath(self._format_dest(assignment_id, student_id))
            if os.path.isdir(dest) and dest not in kept:
                copy_dir = os.path.join(kept["_tmp"], str(len(kept)))
                shutil.copytree(dest, copy_dir)
                kept[dest] = copy_dir
        return init_destination(self, assignment_id, student_id)

    def restoring_convert_notebooks(self):
        if type(self).__name__ not in PROTECTED_CONVERTERS:
            return convert_notebooks(self)
        self._course_kit_kept = {"_tmp": tempfile.mkdtemp(prefix="nbgrader_kept_")}
        try:
            return convert_notebooks(self)
        except BaseException:
            for dest, copy_dir in self._course_kit_kept.items():
                if dest == "_tmp":
                    continue
                restored = _put_back(copy_dir, dest)
                if restored:
                    self.log.warning("The conversion failed: %s put back as it was before (%d file(s))", dest,
                                     restored)
            raise
        finally:
            shutil.rmtree(self._course_kit_kept.pop("_tmp"), ignore_errors=True)
            self._course_kit_kept = None

    BaseConverter.init_destination = saving_init_destination
    BaseConverter.convert_notebooks = restoring_convert_notebooks
    BaseConverter._course_kit_keeps_release = True


def _put_back(copy_dir: str, dest: str) -> int:
    """Copy back into ``dest`` what the failed conversion removed: the whole folder when it is gone (nbgrader
    removes a failed assignment), else the notebooks it removed (``--notebook``). Returns the files restored."""
    if not os.path.isdir(dest):
        shutil.copytree(copy_dir, dest)
        return sum(len(files) for _, _, files in os.walk(dest))
    restored = 0
    for name in os.listdir(copy_dir):
        if name.endswith(".ipynb") and not os.path.exists(os.path.join(dest, name)):
            shutil.copy2(os.path.join(copy_dir, name), os.path.join(dest, name))
            restored += 1
    return restored

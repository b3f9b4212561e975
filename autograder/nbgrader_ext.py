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
"""
from __future__ import annotations

import copy
import os
import re
import sys

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

"""The released code stub (issue 13): running it says what to do, not an empty `NotImplementedError:`."""
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from autograder.release import _STUB, fill_solutions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def test_the_stub_raises_with_a_message(config):
    stub = config.ClearSolutions.code_stub["python"]
    assert stub.startswith("# YOUR CODE HERE\n")
    with pytest.raises(NotImplementedError) as err:
        exec(compile(stub, "<stub>", "exec"), {})
    assert "replace this line with your code" in str(err.value)


def test_nbgrader_writes_that_stub_and_the_sample_submissions_recognise_it(config):
    from nbgrader.preprocessors import ClearSolutions

    cell = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n")
    cell.metadata["nbgrader"] = {"grade_id": "f", "solution": True, "grade": False, "locked": False,
                                 "schema_version": 3}
    source_nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    released, _ = ClearSolutions(config=config).preprocess(nbformat.from_dict(source_nb), {})
    text = released.cells[0].source
    assert 'raise NotImplementedError("replace this line with your code")' in text
    assert _STUB.search(text)
    filled = fill_solutions(released, source_nb)
    assert filled.cells[0].source == "def f(x):\n    return 2 * x\n"


def test_the_previous_stub_is_still_recognised():  # releases made before the change (e.g. committed ones)
    assert _STUB.fullmatch("    # YOUR CODE HERE\n    raise NotImplementedError()\n")

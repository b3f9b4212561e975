"""The sandbox around the grading kernel (course_utils/grading/sandbox.py), tried from inside a real kernel."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.grading.session import KernelSession, RunLimits
from course_utils.grading.sandbox import bwrap_command, hidden_package_dirs, sandbox_problem

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")
REPO = Path(__file__).resolve().parent.parent


def _out(res: dict) -> str:
    return "".join(o.get("text", "") for o in res["outputs"] if o.get("output_type") == "stream")


def _python_entries_in_home() -> list:
    home = Path.home().resolve()
    out = []
    for d in {sys.prefix, sys.base_prefix}:
        d = Path(d).resolve()
        if home in d.parents:
            out.append(d.relative_to(home).parts[0])
    return out


@pytest.fixture(scope="module")
def session():
    s = KernelSession(None, RunLimits(sandbox=True, memory_mb=2048))
    s.start()
    yield s
    s.stop()


def test_the_kernel_cannot_read_the_instructor_package_or_the_repository(session):
    import autograder

    code = f"""
import os
paths = {[str(Path(autograder.__file__)), str(REPO / 'source'), str(REPO / 'solutions')]!r}
home = {str(Path.home())!r}
python_dirs = {_python_entries_in_home()!r}  # the Python installation, where it lives in the home folder
seen = [p for p in paths if os.path.exists(p) and (os.path.isfile(p) or os.listdir(p))]
seen += [os.path.join(home, e) for e in (os.listdir(home) if os.path.isdir(home) else []) if e not in python_dirs]
print(seen)
try:
    import autograder.autoencoder_probing
    print("imported")
except ImportError as exc:
    print("blocked")
"""
    res = session.run(code, 30)
    assert res["status"] == "ok", res
    assert _out(res).split("\n")[:2] == ["[]", "blocked"]


def test_the_kernel_writes_only_its_scratch_and_has_no_network_and_sees_no_grader(session):
    here = os.getpid()
    code = f"""
import os, socket
results = []
for target in ({sys.prefix + '/pwned.txt'!r}, '/etc/pwned'):
    try:
        open(target, 'w').write('x'); results.append('wrote ' + target)
    except OSError:
        pass
try:  # the repository: checked on the host below (a checkout under /tmp is shadowed by the sandbox's own /tmp)
    open({str(REPO / 'pwned.txt')!r}, 'w').write('x')
except OSError:
    pass
open('mine.txt', 'w').write('ok')  # its own working folder
try:
    socket.create_connection(('1.1.1.1', 80), timeout=3); results.append('network')
except OSError:
    pass
try:
    os.kill({here}, 0); results.append('sees the grader')
except OSError:
    pass
print(results, os.getuid())
"""
    res = session.run(code, 30)
    assert res["status"] == "ok", res
    assert _out(res).strip() == "[] 65534"
    assert not (REPO / "pwned.txt").exists() and not os.path.exists(sys.prefix + "/pwned.txt")
    assert (session.workdir / "mine.txt").read_text() == "ok"


def test_nothing_survives_a_submission():
    s = KernelSession(None, RunLimits(sandbox=True, memory_mb=2048))
    s.start()
    try:
        res = s.run("import subprocess, os\nopen('/tmp/left_behind', 'w').write('x')\n"
                    "subprocess.Popen(['sleep', '1000'], start_new_session=True, stdin=subprocess.DEVNULL,"
                    " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(os.getpid())", 30)
        assert res["status"] == "ok", res
        first_workdir = s.workdir
        s.stop()
        assert not first_workdir.exists()
        s.start()
        res = s.run("import os\nnames = []\nfor p in os.listdir('/proc'):\n    try:\n"
                    "        names.append(open(f'/proc/{p}/comm').read().strip())\n    except OSError:\n        pass\n"
                    "print(os.path.exists('/tmp/left_behind'), sorted(names))", 30)
        exists, procs = _out(res).split(" ", 1)
        assert exists == "False" and "sleep" not in procs, res
    finally:
        s.stop()


def test_a_regular_install_is_hidden_but_its_site_packages_stay(tmp_path):
    """The instructor package inside a site-packages folder that also holds everything else: only its folder is
    covered, so torch and the student library still import (the fault that graded a regular install 0)."""
    site = tmp_path / "site-packages"
    (site / "autograder").mkdir(parents=True)
    (site / "autograder" / "__init__.py").write_text("SECRET = 'reference solution'\n")
    (site / "other_pkg").mkdir()
    (site / "other_pkg" / "__init__.py").write_text("VALUE = 42\n")
    assert hidden_package_dirs([str(site)]) == [str(site / "autograder")]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cmd = bwrap_command(str(scratch), readonly=[str(site)])
    assert cmd[-1] == "--"
    cmd[-1:] = ["--tmpfs", str(site / "autograder"), "--"]  # what bwrap_command does for an installed package
    code = (f"import sys; sys.path.insert(0, {str(site)!r}); import other_pkg, torch; "
            f"from course_utils.grading.kernel import hide_instructor_packages; hide_instructor_packages(); "
            f"print({str(site)!r} in sys.path, other_pkg.VALUE, bool(torch.__version__)); import autograder")
    res = subprocess.run(cmd + [sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "True 42 True", res.stderr[-2000:]
    assert "ModuleNotFoundError" in res.stderr and "SECRET" not in res.stderr


def test_a_source_checkout_on_the_path_is_dropped_in_the_kernel():
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
            f"from course_utils.grading.kernel import hide_instructor_packages; hide_instructor_packages(); "
            f"print(json.dumps({str(REPO)!r} in sys.path))")
    res = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, timeout=120,
                         cwd="/")
    assert json.loads(res.stdout) is False, res.stderr[-2000:]


def test_the_kernel_imports_the_graders_own_student_library_without_any_install(tmp_path):
    """Inside the sandbox the student library comes from the grader's own copy, first on the path: with the
    site-packages switched off (``-S``: no installation, no editable finder) it still imports, and from there.
    (A clean checkout whose editable install pointed elsewhere failed every sandbox this way.)"""
    cmd = bwrap_command(str(tmp_path)) + [sys.executable, "-S", "-c",
                                          "import course_utils; print(course_utils.__file__)"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/")
    assert res.stdout.strip() == "/opt/course-kit/lib/course_utils/__init__.py", res.stderr[-2000:]


def test_the_user_wall_where_namespaces_are_forbidden(tmp_path, monkeypatch):
    """As root where bwrap cannot start (Gradescope's containers): the kernel runs as a user of its own
    that cannot read the instructor package, the course checkout or the submissions, writes only its scratch
    folder, and leaves nothing behind."""
    if os.geteuid() != 0:
        pytest.skip("the user wall needs a grader running as root")
    from course_utils.grading import sandbox

    monkeypatch.setenv(sandbox.ENV_MODE, "user")
    assert sandbox.sandbox_mode() == "user", sandbox.sandbox_problem()
    submissions = tmp_path / "submitted"
    submissions.mkdir()
    (submissions / "other_student.ipynb").write_text("{}")
    sandbox.protect([str(submissions)])
    s = KernelSession(None, RunLimits(sandbox=True, memory_mb=2048))
    assert s.wall == "user" and not s.zygote
    s.start()
    try:
        secret = REPO / "autograder" / "autoencoder_probing.py"
        code = f"""
import os, subprocess, sys
found = []
for target in ({str(secret)!r}, {str(REPO / 'solutions')!r}, {str(submissions / 'other_student.ipynb')!r}):
    try:
        open(target).read() if os.path.isfile(target) or not os.path.exists(target) else os.listdir(target)
        found.append('read ' + target)
    except OSError:
        pass
try:
    open({str(REPO / 'pwned.txt')!r}, 'w').write('x'); found.append('wrote repo')
except OSError:
    pass
open('mine.txt', 'w').write('ok')
subprocess.Popen(['sleep', '600'], start_new_session=True)
import course_utils, torch
print(found, os.getuid())
"""
        res = s.run(code, 60)
        assert res["status"] == "ok", res
        assert _out(res).strip() == f"[] {sandbox.USER_UID}"
        assert (s.workdir / "mine.txt").read_text() == "ok" and not (REPO / "pwned.txt").exists()
        assert sandbox.user_pids(), "the kernel and its sleep run as the kernel's user"
    finally:
        s.stop()
    assert sandbox.user_pids() == []

"""``course-kit``: the instructor's commands (also ``python -m autograder.cli``).

Commands that work on the course repository use the one in the current folder (or above it), or
``--repo DIR``, and say which. Every command is listed once in :data:`COMMANDS` with the two functions of
its module that define its arguments and run it (``run(args) -> int``).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name: (module, its function that adds the command's arguments, its function that runs it, one-line help).
# Modules load only when their command runs, so `course-kit --help` is instant.
COMMANDS = {
    "demo": ("autograder.demo", "add_arguments_demo", "run_demo",
             "the main job: release, run the solutions in quick mode, grade sample submissions"),
    "release": ("autograder.demo", "add_arguments_release", "run_release",
                "build assignments/ and solutions/ from source/ with nbgrader"),
    "check-release": ("autograder.demo", "add_arguments_check_release", "run_check_release",
                      "fail when assignments/ or solutions/ drift from source/"),
    "configure": ("autograder.configure", "add_arguments", "run",
                  "write course_config.toml into the notebooks' setup cells, badges, README"),
    "grade": ("autograder.batch", "add_arguments", "run",
              "grade a class's submissions in parallel (resumable), export CSV + feedback"),
    "gradescope-bundle": ("autograder.gradescope", "add_arguments_gradescope_bundle", "run_gradescope_bundle",
                          "build the Gradescope autograder upload zip"),
    "gradescope-run": ("autograder.gradescope", "add_arguments_gradescope_run", "run_gradescope_run",
                       "grade one submission the Gradescope way and write results.json"),
    "student-bundle": ("autograder.bundle", "add_arguments_student_bundle", "run_student_bundle",
                       "build what students receive: released notebooks + course_utils wheel"),
    "selfcheck": ("course_utils.selfcheck", "add_arguments", "run",
                  "run the visible checks on a saved notebook in a fresh process"),
}


# Commands that read or write the course repository (the current folder's, or --repo DIR).
REPO_COMMANDS = ("demo", "release", "check-release", "configure", "student-bundle", "gradescope-bundle")
# Commands that use the course repository when there is one (grade: nbgrader's course id and source notebooks for
# --gradebook) and work without one (grading on a server that holds only the installed kit).
OPTIONAL_REPO_COMMANDS = ("grade",)
REPO_HELP = ("course repository to work on (default: the current folder or one above it, or $COURSE_KIT_REPO); "
             "the command prints which one it uses")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="course-kit", description=__doc__.splitlines()[0],
                                     epilog=f"--repo DIR (any command): {REPO_HELP}.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, _add, _run, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"course-kit: unknown command {argv[0]!r}; known: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    name = argv[0]
    repo = None
    if "--repo" in argv[1:]:
        i = argv.index("--repo", 1)
        if i + 1 >= len(argv):
            print("course-kit: --repo needs a folder", file=sys.stderr)
            return 2
        repo = argv[i + 1]
        del argv[i:i + 2]
    from . import problem_sets

    before = problem_sets.REPO_ROOT
    try:
        return _run_command(name, argv, repo, problem_sets)
    finally:  # in-process callers (tests, notebooks) keep the repository they had
        problem_sets.REPO_ROOT = before


def _run_command(name: str, argv: list, repo, problem_sets) -> int:
    if name in REPO_COMMANDS + OPTIONAL_REPO_COMMANDS or repo:
        try:
            problem_sets.REPO_ROOT = problem_sets.find_repo(repo)  # before the command's module reads it
        except problem_sets.RepoNotFound as exc:
            if name in REPO_COMMANDS or repo:  # an explicit --repo that is not a course repository is an error
                print(f"course-kit {name}: {exc}", file=sys.stderr)
                return 2
        else:
            print(f"course-kit: course repository {problem_sets.REPO_ROOT}", file=sys.stderr)
    module_name, add_name, run_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    cmd_parser = argparse.ArgumentParser(prog=f"course-kit {name}", description=help_text)
    add, run = getattr(module, add_name), getattr(module, run_name)
    add(cmd_parser)
    if name in REPO_COMMANDS + OPTIONAL_REPO_COMMANDS:  # taken out of argv above; listed here for --help
        cmd_parser.add_argument("--repo", metavar="DIR", help=REPO_HELP)
    args = cmd_parser.parse_args(argv[1:])
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

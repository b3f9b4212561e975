"""Run configuration of "autoencoder_probing": everything a run mode changes (see course_utils.configs)."""

MODES = {
    "full": dict(
        dataset="stl10",  # 100,000 unlabeled, 5,000 train, 8,000 test photos, 96 -> 64 pixels
        shapes_splits=(10_000, 5_000, 8_000),  # STL-10's sizes, when the shapes are asked for explicitly
        ae_epochs=100, probe_epochs=100, batch_size=128,
    ),
    "quick": dict(
        dataset="shapes",
        shapes_splits=(5_000, 3_000, 2_000),  # (unlabeled, train, test): minutes on 2 CPU cores
        ae_epochs=4, probe_epochs=10, batch_size=128,
    ),
    "grading": dict(
        dataset="shapes",
        shapes_splits=(64, 64, 64),
        ae_epochs=1, probe_epochs=1, batch_size=128,
    ),
}

# What quick mode shows (test accuracies and recalls in percent), measured on 2 CPU cores with the solution
# notebook (tests/test_student_runtime.py runs it and fails when a figure leaves its range; the notebook's text and
# the README quote these ranges), and the minutes the whole quick-mode notebook may take there.
QUICK_FIGURES = {"method I": (24, 36), "method II": (85, 97), "method III": (8, 12)}
QUICK_MINUTES = 3

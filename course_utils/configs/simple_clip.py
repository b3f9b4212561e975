"""Run configuration of "simple_clip": everything a run mode changes (see course_utils.configs)."""

MODES = {
    "full": dict(
        caption_dataset="flickr8k", caption_images=None,  # all 8,091 images
        image_encoder="resnet50", pretrained=True,  # ImageNet weights
        text_encoder="distilbert-base-uncased",
        epochs=4, image_lr=1e-4, batch_size=32,
        probe_shapes=None, probe_epochs=100,  # the probe runs on STL-10
    ),
    "quick": dict(
        caption_dataset="shapes", caption_images=2000,
        image_encoder="resnet_tiny", pretrained=False,  # the tiny ResNet has no pretrained weights
        text_encoder="all-MiniLM-L6-v2",  # a real small BERT that works offline
        epochs=10, image_lr=1e-3, batch_size=32,  # a randomly initialised encoder learns faster
        probe_shapes=(64, 2000, 1000), probe_epochs=50,  # (unlabeled, train, test) shapes for the probe
    ),
    "grading": dict(
        caption_dataset="shapes", caption_images=64,
        image_encoder="resnet_tiny", pretrained=False,
        text_encoder="distilbert-tiny",
        epochs=1, image_lr=1e-3, batch_size=32,
        probe_shapes=None, probe_epochs=1,
    ),
}

# What quick mode shows (test accuracies and recalls in percent), measured on 2 CPU cores with the solution
# notebook (tests/test_student_runtime.py runs it and fails when a figure leaves its range; the notebook's text and
# the README quote these ranges), and the minutes the whole quick-mode notebook may take there.
QUICK_FIGURES = {"probe clip": (33, 46), "probe control": (24, 30), "recall@1": (4, 8), "recall@5": (20, 26),
                 "recall@10": (35, 43)}
QUICK_MINUTES = 5

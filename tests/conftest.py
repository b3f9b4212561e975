"""Test set-up: offline, CPU, seeded, and a private data cache per session."""
import os
import random

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# Tests run two to a 2-core machine (pytest -n 2): one thread each, also in the kernels they start.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_restore_rng():
    """Seed every RNG and restore the state afterwards so tests do not leak randomness."""
    import numpy as np
    import torch

    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
    random.setstate(py_state)
    np.random.set_state(np_state)
    torch.set_rng_state(torch_state)


@pytest.fixture(scope="session", autouse=True)
def _data_cache(tmp_path_factory):
    """A fresh data cache per test session, so tests never depend on files left by earlier runs."""
    path = tmp_path_factory.mktemp("course_cache")
    os.environ["COURSE_DATA_DIR"] = str(path)
    yield path

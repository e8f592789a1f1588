import os
from pathlib import Path

import pytest

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("LOTTERYLIB_DATA", DEFAULT_DATA))
    if not (root / "MNIST" / "raw").exists():
        pytest.fail(f"MNIST not found under {root}: set LOTTERYLIB_DATA")
    return root


@pytest.fixture(scope="session")
def mnist(data_root):
    from lotterylib import data
    return data.load("mnist", data_root)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """MNIST cut to 2,000 train / 500 val / 500 test images, for fast engine tests."""
    from lotterylib.data import Dataset, Split
    cut = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
    return Dataset("mnist", cut(mnist.train, 2000), cut(mnist.val, 500), cut(mnist.test, 500), 10, (784,))


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (the solver tests' timings and results do not depend on the load)."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# The files that take longest, longest first (wall time in `make test` on this 2-core machine,
# 2026-12-02: test_cli.py ~200 s, most of it one test that runs the LT quick profile for another seed;
# test_ray.py ~130 s; test_browser.py and test_lab.py ~50 s each; test_faults.py ~40 s; `make test` runs
# test_browser.py in a process of its own, beside the others, once the HTML is built). `make test`
# gives each of its two workers whole files in this order (pytest-xdist --dist loadfile with
# --no-loadscope-reorder): started first, the long files run side by side while the many short ones
# fill in around them, instead of one long file starting last and running alone at the end.
LONGEST_FIRST = ("test_cli.py", "test_ray.py", "test_browser.py", "test_lab.py", "test_faults.py", "test_train.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order

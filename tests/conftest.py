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

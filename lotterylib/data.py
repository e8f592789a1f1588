"""Datasets as whole tensors: MNIST, Fashion-MNIST and CIFAR-10 (full or the verified subset).

One setting finds the data: the ``data_root`` argument, else ``$LOTTERYLIB_DATA``. The layout is
torchvision's (``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``, ``cifar-10-batches-py/``), plus
``cifar-10-subset/cifar10_subset.npz`` for the 4,000/1,000-image CIFAR-10 subset. Every file is
checked against its official checksum before use; the root is only read, never written, unless a
missing file has to be downloaded into it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "LOTTERYLIB_DATA"

# (file, md5 of the archive as published)
_IDX_FILES = {
    "mnist": ("MNIST", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }, ["https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/"]),
    "fashion_mnist": ("FashionMNIST", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }, ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]),
}
_CIFAR_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_SUBSET_SHA256 = "eac20ed58bb658077b53366c4bef55b4a0f5365d8c47b07c7fb655e0e904d86d"

DATASETS = ("mnist", "fashion_mnist", "cifar10")
VALIDATION_SIZE = 5000  # the LT paper's split: 5,000 training images held out for validation


class DataError(RuntimeError):
    """Missing, corrupt or unreadable dataset files. The message says what to put where."""


@dataclass
class Split:
    """One split as device tensors: ``x`` (n, ...) float32, ``y`` (n,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    """Train / validation / test splits of one dataset, whole, on one device."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    note: str = ""

    def to(self, device: torch.device | str) -> "Dataset":
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                       self.num_classes, self.input_shape, self.note)


def data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else ``$LOTTERYLIB_DATA``; a clear error when neither is set."""
    if data_root is None:
        data_root = os.environ.get(DATA_ENV)
    if not data_root:
        raise DataError(
            f"No data folder given. Set {DATA_ENV} to a folder laid out like torchvision's "
            f"(MNIST/raw/*.gz, FashionMNIST/raw/*.gz, cifar-10-batches-py/), or pass data_root= "
            f"(--data-root on the command line). "
            f"In this project the tests use ../shared/data.")
    return Path(data_root).expanduser()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _try_download(url: str, dest: Path, md5: str, root: Path) -> bool:
    """Download ``url`` into ``dest`` if the data root exists, is writable and a network answers."""
    if not root.is_dir() or not os.access(root, os.W_OK):
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        with urllib.request.urlopen(url, timeout=20) as response, open(tmp, "wb") as fh:
            fh.write(response.read())
        if _md5(tmp) != md5:
            tmp.unlink(missing_ok=True)
            return False
        os.replace(tmp, dest)
        return True
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _verified(path: Path, md5: str, urls: list[str], folder_hint: str, download: bool, root: Path) -> Path:
    if not path.exists() and download:
        for base in urls:
            if _try_download(base + path.name, path, md5, root):
                break
    if not path.exists():
        raise DataError(
            f"Dataset file {path} is missing and could not be downloaded (no network, or the folder "
            f"is read-only). Put the official file {path.name} (md5 {md5}) into {path.parent}/ — "
            f"{folder_hint} — or point {DATA_ENV} at a folder that has it.")
    digest = _md5(path)
    if digest != md5:
        raise DataError(
            f"Dataset file {path} is corrupt: md5 {digest}, expected the official {md5}. "
            f"Replace it with the official {path.name} (it may be truncated or re-compressed).")
    return path


#: Decoded IDX files of this process, by (path, size, mtime): a chapter or the scoreboard loads MNIST
#: several times, and each gzip decompression costs ~0.3 s. The arrays are read-only; load() copies them.
_DECODED: dict[tuple[str, int, int], np.ndarray] = {}


def _read_idx(path: Path) -> np.ndarray:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DECODED:
        _DECODED[key] = _decode_idx(path)
    return _DECODED[key]


def _decode_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} has {data.size} values but its header says {dims}")
    return data.reshape(dims)


def _split_train(x: torch.Tensor, y: torch.Tensor, validation_size: int) -> tuple[Split, Split]:
    # The last `validation_size` training images form the validation set: fixed, so every run and
    # every seed sees the same split (the LT paper holds out 5,000 images).
    if not 0 <= validation_size < len(y):
        raise ValueError(f"validation_size must be in [0, {len(y)}), got {validation_size}")
    n = len(y) - validation_size
    return Split(x[:n], y[:n]), Split(x[n:], y[n:])


def load(name: str, data_root: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
         validation_size: int | None = None, download: bool = True) -> Dataset:
    """Load a dataset whole as tensors on ``device``.

    Images are float32 in [0, 1]: MNIST-like as (n, 784), CIFAR-10 as (n, 3, 32, 32). Labels int64.
    ``name`` is one of ``mnist``, ``fashion_mnist``, ``cifar10``. ``validation_size`` defaults to the
    paper's 5,000 held-out training images, or a tenth of a training set smaller than 50,000 (the
    CIFAR-10 subset).
    """
    key = name.lower().replace("-", "_")
    root = _existing_root(data_root)
    if key in _IDX_FILES:
        arrays = {f: _read_idx(path) for f, path in _idx_files(key, root, download).items()}
        x_train = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32) / 255)
        y_train = torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"].astype(np.int64))
        x_test = torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32) / 255)
        y_test = torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64))
        shape: tuple[int, ...] = (784,)
        note = ""
    elif key == "cifar10":
        x_train, y_train, x_test, y_test, note = _load_cifar10(root, download)
        shape = (3, 32, 32)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if validation_size is None:
        validation_size = VALIDATION_SIZE if len(y_train) >= 50_000 else len(y_train) // 10
    train, val = _split_train(x_train, y_train, validation_size)
    return Dataset(key, train, val, Split(x_test, y_test), 10, shape, note).to(device)


def verify(name: str, data_root: str | os.PathLike | None = None, *, download: bool = True) -> None:
    """Check that dataset ``name``'s files are there and match their official checksums, without
    loading them (milliseconds, where :func:`load` takes seconds): what a command checks before it
    starts work. Missing files are downloaded as :func:`load` would. Raises :class:`DataError`.
    """
    key = name.lower().replace("-", "_")
    root = _existing_root(data_root)
    if key in _IDX_FILES:
        _idx_files(key, root, download)
    elif key == "cifar10":
        _cifar10_source(root, download)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _existing_root(path: str | os.PathLike | None) -> Path:
    root = data_root(path)
    if not root.is_dir():
        raise DataError(
            f"Data folder {root} is missing (or is not a folder). Point {DATA_ENV} (or data_root=; "
            f"--data-root on the command line) at a folder laid out like torchvision's (MNIST/raw/*.gz, "
            f"FashionMNIST/raw/*.gz, cifar-10-batches-py/).")
    return root


def _idx_files(key: str, root: Path, download: bool) -> dict[str, Path]:
    """The verified files of an MNIST-like dataset, by name."""
    folder, files, urls = _IDX_FILES[key]
    hint = f"torchvision's layout <root>/{folder}/raw/"
    return {f: _verified(root / folder / "raw" / f, md5, urls, hint, download, root) for f, md5 in files.items()}


def _cifar10_source(root: Path, download: bool) -> Path:
    """The verified CIFAR-10 under ``root``: the full python version's folder, else the subset's file."""
    full = root / "cifar-10-batches-py"
    subset = root / "cifar-10-subset" / "cifar10_subset.npz"
    if not full.exists() and not subset.exists() and download:
        _download_cifar10(root)
    if full.exists():
        for fname, md5 in _CIFAR_MD5.items():
            _verified(full / fname, md5, [], "the python version of CIFAR-10, unpacked", False, root)
        return full
    if subset.exists():
        digest = _sha256(subset)
        if digest != _CIFAR_SUBSET_SHA256:
            raise DataError(f"{subset} is corrupt: sha256 {digest}, expected {_CIFAR_SUBSET_SHA256}")
        return subset
    raise DataError(
        f"CIFAR-10 not found under {root}. Put the official python version, unpacked, at "
        f"{full}/ (data_batch_1..5, test_batch, batches.meta; from {_CIFAR_URL}), or the verified "
        f"subset at {subset}, or point {DATA_ENV} at a folder that has one of them.")


def _load_cifar10(root: Path, download: bool):
    source = _cifar10_source(root, download)
    if source.is_dir():
        blobs = {}
        for fname in _CIFAR_MD5:
            if fname != "batches.meta":
                with open(source / fname, "rb") as fh:
                    blobs[fname] = pickle.load(fh, encoding="latin1")
        train = [blobs[f"data_batch_{i}"] for i in range(1, 6)]
        x_train = np.concatenate([b["data"] for b in train])
        y_train = np.concatenate([b["labels"] for b in train])
        x_test, y_test = blobs["test_batch"]["data"], np.asarray(blobs["test_batch"]["labels"])
        note = ""
    else:
        arrays = np.load(source)
        x_train, y_train = arrays["train_data"], arrays["train_labels"]
        x_test, y_test = arrays["test_data"], arrays["test_labels"]
        note = (f"CIFAR-10 verified subset: {len(y_train)} training and {len(y_test)} test images "
                f"(the full dataset is not available here)")

    def to_tensor(x):
        return torch.from_numpy(np.asarray(x, dtype=np.uint8).reshape(-1, 3, 32, 32).astype(np.float32) / 255)

    return (to_tensor(x_train), torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
            to_tensor(x_test), torch.from_numpy(np.asarray(y_test, dtype=np.int64)), note)


def _download_cifar10(root: Path) -> None:
    import tarfile
    archive = root / "cifar-10-python.tar.gz"
    if _try_download(_CIFAR_URL, archive, _CIFAR_TAR_MD5, root):
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        archive.unlink(missing_ok=True)

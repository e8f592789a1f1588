import gzip
import os
import shutil

import pytest
import torch

from lotterylib import data


def test_mnist_split_and_tensors(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (55_000, 5_000, 10_000)
    assert mnist.train.x.dtype == torch.float32 and mnist.train.x.shape[1] == 784
    assert 0.0 <= float(mnist.train.x.min()) and float(mnist.train.x.max()) <= 1.0
    assert mnist.test.y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_cifar_subset_is_supported(data_root):
    cifar = data.load("cifar10", data_root)
    assert cifar.train.x.shape[1:] == (3, 32, 32)
    assert len(cifar.train) + len(cifar.val) == 4000 and len(cifar.test) == 1000
    assert "subset" in cifar.note


def test_data_root_from_environment(monkeypatch, data_root):
    monkeypatch.setenv("LOTTERYLIB_DATA", str(data_root))
    assert data.data_root() == data_root
    monkeypatch.delenv("LOTTERYLIB_DATA")
    with pytest.raises(data.DataError, match="LOTTERYLIB_DATA"):
        data.data_root()


def test_missing_file_says_what_to_put_where(tmp_path):
    os.chmod(tmp_path, 0o555)  # read-only root: no download is attempted
    try:
        with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte.gz \(md5 f68b3c2d"):
            data.load("mnist", tmp_path)
    finally:
        os.chmod(tmp_path, 0o755)


def test_truncated_or_wrong_file_is_refused(tmp_path, data_root):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    target = raw / "t10k-labels-idx1-ubyte.gz"
    os.chmod(target, 0o644)
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(data.DataError, match="corrupt"):
        data.load("mnist", tmp_path, download=False)
    target.write_bytes(gzip.compress(b"\0" * 100))
    with pytest.raises(data.DataError, match="expected the official"):
        data.load("mnist", tmp_path, download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        data.load("svhn", "/tmp")


def test_verify_checks_checksums_without_loading(tmp_path, data_root):
    data.verify("mnist", data_root)
    data.verify("cifar10", data_root)  # the subset here
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    target = raw / "train-images-idx3-ubyte.gz"
    os.chmod(target, 0o644)
    body = bytearray(target.read_bytes())
    body[5000] ^= 0xFF  # same length, one byte changed
    target.write_bytes(bytes(body))
    with pytest.raises(data.DataError, match="corrupt.*Replace it"):
        data.verify("mnist", tmp_path, download=False)
    with pytest.raises(data.DataError, match="Data folder .*nowhere is missing.*Point LOTTERYLIB_DATA"):
        data.verify("mnist", tmp_path / "nowhere")


def test_a_process_decodes_each_file_once_and_again_when_it_changes(tmp_path, data_root, monkeypatch):
    shutil.copytree(data_root / "MNIST", tmp_path / "MNIST")
    decoded = []
    real = data._decode_idx
    monkeypatch.setattr(data, "_decode_idx", lambda path: decoded.append(path.name) or real(path))
    first = data.load("mnist", tmp_path)
    second = data.load("mnist", tmp_path)
    assert len(decoded) == 4  # two image and two label files, each decompressed once
    assert torch.equal(first.train.x, second.train.x) and first.train.x.data_ptr() != second.train.x.data_ptr()
    second.train.x.zero_()  # a caller's tensors are its own
    assert data.load("mnist", tmp_path).train.x.sum() > 0
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
    data.load("mnist", tmp_path)
    assert decoded[4:] == ["t10k-labels-idx1-ubyte.gz"]  # a file that changed on disk is read again

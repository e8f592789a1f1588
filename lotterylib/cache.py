"""Result cache keyed by frozen, hashable experiment configs.

A config is a frozen dataclass. Its identity is the SHA-256 of a canonical JSON of the fields that
differ from their defaults (as OpenLTH does), so adding a knob with a default never renames the runs
made before it. An entry is a folder ``<name>-<hash>/`` holding ``config.json``, the payload files
and ``MANIFEST.json`` (the SHA-256 of every payload file). Writes are atomic (temp folder, then
``os.replace``); an entry whose manifest does not match its files is reported and recomputed, never
used.

Each :class:`ResultCache` also keeps a ledger, ``used``: the provenance (device, commit, date, wall
time) of every entry it read or wrote, so that a result assembled from parts computed in several
sessions can say how it was made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

CACHE_ENV = "LOTTERYLIB_CACHE"


class CorruptEntryError(RuntimeError):
    """A cache entry whose files do not match its manifest."""


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **non_default_fields(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, float):
        return repr(value)  # repr round-trips exactly; 0.1 stays "0.1"
    return value


def non_default_fields(config: Any) -> dict[str, Any]:
    """Fields of a dataclass instance that differ from their declared defaults, canonicalised."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():  # type: ignore[misc]
            continue
        out[f.name] = _canonical(value)
    return out


def config_hash(config: Any) -> str:
    """Stable 16-hex-digit identity of a frozen dataclass config (defaults omitted)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"config_hash needs a dataclass instance, got {type(config).__name__}")
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_name(config: Any) -> str:
    """Folder name of a config's entry: ``<class name in snake case>-<hash>``."""
    cls = type(config).__name__
    snake = "".join("_" + c.lower() if c.isupper() else c for c in cls).lstrip("_")
    return f"{snake}-{config_hash(config)}"


def to_jsonable(config: Any) -> Any:
    """Full (defaults included) JSON form of a config, for provenance."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {"__type__": type(config).__name__,
                **{f.name: to_jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}}
    if isinstance(config, (list, tuple)):
        return [to_jsonable(v) for v in config]
    return config


def default_cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lotterylib"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Entry:
    """A finished cache entry: read its JSON and tensor payloads."""

    def __init__(self, path: Path):
        self.path = path

    def json(self, name: str = "result") -> Any:
        return json.loads((self.path / f"{name}.json").read_text())

    def tensors(self, name: str = "state") -> Any:
        return torch.load(self.path / f"{name}.pt", map_location="cpu", weights_only=True)


class EntryWriter:
    """Collects payload files in a temporary folder; ``ResultCache.put`` publishes them atomically."""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def json(self, obj: Any, name: str = "result") -> None:
        (self.tmp / f"{name}.json").write_text(json.dumps(obj, indent=1, sort_keys=True))

    def tensors(self, obj: Any, name: str = "state") -> None:
        torch.save(obj, self.tmp / f"{name}.pt")


class ResultCache:
    """Folder of entries, one per config. ``root`` defaults to ``$LOTTERYLIB_CACHE`` or the user cache."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_root()
        self.used: dict[str, dict] = {}  # entry folder → its provenance, for every entry read or written

    def __repr__(self) -> str:
        return f"ResultCache({str(self.root)!r})"

    def path(self, config: Any, *parts: str) -> Path:
        return self.root.joinpath(*parts, config_name(config))

    def partial(self, config: Any, *parts: str) -> Path:
        """Where a computation of ``config`` keeps its mid-run checkpoint (next to the entry it will make)."""
        path = self.path(config, *parts)
        return path.with_name(path.name + ".partial.pt")

    def get(self, config: Any, *parts: str) -> Entry | None:
        """The verified entry for ``config``, or None when absent or corrupt (corrupt ones are removed)."""
        path = self.path(config, *parts)
        if not path.exists():
            return None
        try:
            self.verify(path)
        except CorruptEntryError as err:
            warnings.warn(f"{err}; recomputing it", RuntimeWarning, stacklevel=2)
            shutil.rmtree(path, ignore_errors=True)
            return None
        self.used[str(path)] = json.loads((path / "config.json").read_text()).get("provenance", {})
        return Entry(path)

    @staticmethod
    def verify(path: Path) -> None:
        manifest_path = path / "MANIFEST.json"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as err:
            raise CorruptEntryError(f"cache entry {path} has no readable manifest ({err})") from None
        for name, digest in manifest.get("files", {}).items():
            file = path / name
            if not file.exists() or _sha256(file) != digest:
                raise CorruptEntryError(f"cache entry {path}: {name} does not match its checksum")

    def put(self, config: Any, write: Callable[[EntryWriter], None], *parts: str,
            provenance: Mapping[str, Any] | None = None) -> Entry:
        """Write an entry atomically: ``write`` fills a temp folder that then replaces the entry."""
        path = self.path(config, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
        try:
            writer = EntryWriter(tmp)
            (tmp / "config.json").write_text(json.dumps(
                {"config": to_jsonable(config), "hash": config_hash(config),
                 "provenance": dict(provenance or {})}, indent=1, sort_keys=True, default=str))
            write(writer)
            files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=1))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.used[str(path)] = dict(provenance or {})
        return Entry(path)

    def memoize_json(self, config: Any, compute: Callable[[], Any], *parts: str,
                     provenance: Mapping[str, Any] | Callable[[float], Mapping[str, Any]] | None = None) -> Any:
        """Return the cached JSON result of ``config``, computing and storing it when absent.

        ``provenance``: a mapping, or a function of ``compute``'s wall time in seconds that returns one
        (e.g. ``functools.partial(lottery.provenance, device)``).
        """
        entry = self.get(config, *parts)
        if entry is not None:
            return entry.json()
        start = time.time()
        result = compute()
        made = provenance(time.time() - start) if callable(provenance) else provenance
        self.put(config, lambda w: w.json(result), *parts, provenance=made)
        return result

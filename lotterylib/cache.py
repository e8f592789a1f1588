"""Result cache keyed by frozen, hashable experiment configs.

A config is a frozen dataclass. Its identity is the SHA-256 of a canonical JSON of the fields that
differ from their defaults (as OpenLTH does), so adding a knob with a default never renames the runs
made before it. An entry is a folder ``<name>-<hash>/`` holding ``config.json`` (the config in full,
defaults included), the payload files and ``MANIFEST.json`` (the SHA-256 of every payload file).

Safe under faults and concurrent writers (two chapters of ``make book`` compute the same IMP round):

* **atomic, first writer wins**: a write fills a temporary folder and publishes it with one rename,
  under a per-key lock (``fcntl.flock`` on ``<entry>.lock``); a writer that finds the entry already
  made keeps that one. :meth:`ResultCache.lock` also serialises a whole get-compute-put, so the second
  process waits for the first one's result instead of computing it again;
* **readers never delete what another process is writing**: they only ever see published folders;
  an entry found corrupt (manifest mismatch) or stale is set aside under the lock, after looking again;
* **no silent config drift**: a changed *default* leaves the hash alone, so each entry keeps its full
  config and a read compares it with the config asked for; a field that differs makes the entry
  stale (recomputed, with a warning naming the field), never returned;
* a ``kill -9`` leaves at most a ``.tmp-<pid>-…`` folder, which a later write removes once its
  process is gone.

``$LOTTERYLIB_CACHE_SALT`` (or ``salt=``) puts the entries under ``<root>/code-<salt>/``: the book
builds stamp their cache with a hash of the library's source, so a code change never reuses results
computed by older code.

Each :class:`ResultCache` also keeps a ledger, ``used``: the provenance (device, commit, date, wall
time) of every entry it read or wrote, so that a result assembled from parts computed in several
sessions can say how it was made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

CACHE_ENV = "LOTTERYLIB_CACHE"
SALT_ENV = "LOTTERYLIB_CACHE_SALT"


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


def _plain(value: Any) -> Any:
    """A JSON value as it reads back (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))


def config_drift(stored: Any, current: Any, where: str = "") -> list[str]:
    """Where a stored full config (``to_jsonable`` form, read back from JSON) differs from ``current``.

    A field missing on either side is not a difference (a knob added or removed at its default);
    a value that differs is, e.g. ``"train.lr: 0.0012 stored, 0.001 now"``.
    """
    stored, current = _plain(stored), _plain(current)
    if isinstance(stored, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(stored) & set(current)):
            out += config_drift(stored[key], current[key], f"{where}.{key}" if where else str(key))
        return out
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        return [d for i, (a, b) in enumerate(zip(stored, current)) for d in config_drift(a, b, f"{where}[{i}]")]
    return [] if stored == current else [f"{where or 'config'}: {stored!r} stored, {current!r} now"]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


_HELD: dict[str, list] = {}  # lock file → [open file, depth]: this process's locks, so that they nest

#: A wait for a lock longer than this is reported (then every ten times as long) on the process's
#: standard error, with the holder's pid and command line: two chapters of ``make book`` wait for
#: each other's runs, and a wait that never ends must say on what, not look like a slow cell.
LOCK_REPORT_AFTER_S = 60.0


def _holder(fh) -> str:
    """'pid N (command line)' of the process that wrote itself into the lock file, as far as known."""
    try:
        fh.seek(0)
        pid = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if not pid:
        return "an unknown process"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}" + (f" ({cmd[:120]})" if cmd else "")


def _acquire(fh, key: str) -> None:
    """Take the exclusive lock, waiting as long as it takes; long waits are reported. The holder's pid
    goes into the file (for the report only: the kernel's flock decides, not the file's content)."""
    start = time.monotonic()
    report_at = LOCK_REPORT_AFTER_S
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            waited = time.monotonic() - start
            if waited >= report_at:
                print(f"lotterylib: waited {waited:.0f} s for {key}, held by {_holder(fh)}",
                      file=sys.__stderr__ or sys.stderr, flush=True)
                report_at *= 10
            time.sleep(0.1 if waited < 5 else 0.5)
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed), re-entrant within this process.

    The kernel drops the lock when its process dies, ``kill -9`` included, so a lock never outlives
    its holder.
    """
    key = os.path.abspath(path)
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    Path(key).parent.mkdir(parents=True, exist_ok=True)
    fh = open(key, "a+")
    try:
        _acquire(fh, key)
        _HELD[key] = [fh, 1]
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


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
    """Folder of entries, one per config. ``root`` defaults to ``$LOTTERYLIB_CACHE`` or the user cache;
    ``salt`` (default ``$LOTTERYLIB_CACHE_SALT``) puts the entries under ``root/code-<salt>/``."""

    def __init__(self, root: str | os.PathLike | None = None, salt: str | None = None):
        root = Path(root) if root is not None else default_cache_root()
        salt = os.environ.get(SALT_ENV, "") if salt is None else salt
        self.root = root / f"code-{salt}" if salt else root
        self.used: dict[str, dict] = {}  # entry folder → its provenance, for every entry read or written

    def __repr__(self) -> str:
        return f"ResultCache({str(self.root)!r})"

    def path(self, config: Any, *parts: str) -> Path:
        return self.root.joinpath(*parts, config_name(config))

    def partial(self, config: Any, *parts: str) -> Path:
        """Where a computation of ``config`` keeps its mid-run checkpoint (next to the entry it will make)."""
        path = self.path(config, *parts)
        return path.with_name(path.name + ".partial.pt")

    def lock(self, config: Any, *parts: str):
        """Context manager: hold ``config``'s entry lock (re-entrant in this process).

        Wrap a whole get → compute → put in it, and a second process asking for the same entry waits,
        then finds it made, instead of computing it twice.
        """
        path = self.path(config, *parts)
        return file_lock(path.with_name(path.name + ".lock"))

    def _problem(self, path: Path, config: Any) -> str | None:
        """Why the entry at ``path`` cannot be used for ``config`` (corrupt or stale), or None."""
        try:
            self.verify(path)
        except CorruptEntryError as err:
            return str(err)
        try:
            stored = json.loads((path / "config.json").read_text())["config"]
        except (OSError, ValueError, KeyError) as err:
            return f"cache entry {path} has no readable config ({err})"
        drift = config_drift(stored, to_jsonable(config))
        if drift:
            return (f"cache entry {path} was made with other settings than its hash says (a default changed): "
                    + "; ".join(drift))
        return None

    def _set_aside(self, path: Path) -> None:
        """Remove an unusable entry: one rename takes it out of every reader's way, then it is deleted."""
        aside = path.with_name(f".unusable-{os.getpid()}-{path.name}")
        try:
            os.replace(path, aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)

    def _use(self, path: Path) -> Entry:
        try:
            self.used[str(path)] = json.loads((path / "config.json").read_text()).get("provenance", {})
        except (OSError, ValueError):
            self.used[str(path)] = {}
        return Entry(path)

    def get(self, config: Any, *parts: str) -> Entry | None:
        """The verified, current entry for ``config``, or None when absent, corrupt or stale.

        A corrupt or stale entry is looked at again under its lock (a writer may be replacing it at
        this moment) and only then set aside, with a warning, so that it is recomputed.
        """
        path = self.path(config, *parts)
        if not path.exists():
            return None
        if self._problem(path, config) is None:
            return self._use(path)
        with self.lock(config, *parts):
            if not path.exists():
                return None
            problem = self._problem(path, config)
            if problem is None:
                return self._use(path)
            warnings.warn(f"{problem}; recomputing it", RuntimeWarning, stacklevel=2)
            self._set_aside(path)
            return None

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

    def _sweep(self, folder: Path) -> None:
        """Remove temporary folders left by writers that died (``kill -9``) before publishing."""
        for tmp in folder.glob(".tmp-*"):
            try:
                pid = int(tmp.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _process_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)

    def put(self, config: Any, write: Callable[[EntryWriter], None], *parts: str,
            provenance: Mapping[str, Any] | None = None) -> Entry:
        """Write an entry atomically: ``write`` fills a temp folder that is then published by one rename.

        Under the entry's lock; the first writer wins: if a usable entry is already there (another
        process made it meanwhile), it is kept and returned, and ``write`` is not called.
        """
        path = self.path(config, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(config, *parts):
            if path.exists():
                if self._problem(path, config) is None:
                    return self._use(path)
                self._set_aside(path)
            self._sweep(path.parent)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=path.parent))
            try:
                writer = EntryWriter(tmp)
                (tmp / "config.json").write_text(json.dumps(
                    {"config": to_jsonable(config), "hash": config_hash(config),
                     "provenance": dict(provenance or {})}, indent=1, sort_keys=True, default=str))
                write(writer)
                files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
                (tmp / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=1))
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
        (e.g. ``functools.partial(provenance.provenance, device)``). Concurrent callers compute it once.
        """
        entry = self.get(config, *parts)
        if entry is not None:
            return entry.json()
        with self.lock(config, *parts):
            entry = self.get(config, *parts)  # made by another process while this one waited
            if entry is not None:
                return entry.json()
            start = time.time()
            result = compute()
            made = provenance(time.time() - start) if callable(provenance) else provenance
            self.put(config, lambda w: w.json(result), *parts, provenance=made)
        return result

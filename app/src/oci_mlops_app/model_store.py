"""In-memory cache of loaded model versions and of alias -> version resolutions.

* Each ``(model, version)`` is downloaded and loaded once and then kept in memory while something
  refers to it; concurrent first requests for the same version wait on one per-key lock, so it is
  loaded only once.
* A load failure is remembered for one refresh interval, so a broken version is not downloaded
  again on every request.
* Aliases (and legacy stage names, mapped to aliases) are resolved once and then refreshed by a
  background task every ``refresh_seconds``. When an alias has moved, the new version is loaded
  first and the alias switched afterwards, so requests never wait for that load; if the new
  version cannot be loaded, the previous one keeps serving and the error is logged and counted.
* Only a definite answer drops a cached alias: the alias is missing from its model, or the model
  does not exist. MLflow unreachable or failing, or a 403 (a revoked grant looks the same as a
  deleted model to a user without default permissions), keeps the cached version serving; the
  problem is reported by ``refresh_problems()`` (``/ready`` says "degraded") and counted.
* The cache is bounded: a loaded version stays only while an alias points to it, a preload
  reference names it by number, or it is among the ``max_pinned_versions`` versions most recently
  requested by number. Any other version is evicted when an alias moves away from it or it falls
  out of that LRU, and its download directory is deleted as soon as no request still uses it.
* The downloads go under the process's own directory (``downloads.DownloadDir``, locked while
  the process lives) in ``download_root``; at start, the directories there of processes that are
  gone (a killed worker) are deleted (``downloads.sweep``; a timer does the same while it runs).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
from mlflow.pyfunc import PyFuncModel
from mlflow.types import Schema

from .config import ModelRef
from .downloads import DownloadDir, sweep
from .fastpath import FastScorer, compile_scorer
from .metrics import (
    ALIAS_REFRESH_ERRORS,
    CACHED_MODEL_VERSIONS,
    MODEL_EVICTIONS,
    MODEL_LOAD_FAILURES,
    MODEL_LOAD_SECONDS,
)
from .registry import (
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    RegistryUnavailableError,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]

# How many versions requested by number (/predict/<name>/<number>) stay loaded, across all models,
# besides those an alias or a preload reference keeps: the most recently requested ones.
DEFAULT_MAX_PINNED_VERSIONS = 4


class ModelLoadError(Exception):
    """A registered model version exists but could not be downloaded or loaded."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: PyFuncModel
    input_schema: Schema | None
    load_seconds: float
    # the download directory: deleted once the version is evicted and no request still holds it
    path: Path | None = field(default=None, repr=False, compare=False)
    # how to score it without pyfunc's per-request work (fastpath.py); None: the general path
    fast: FastScorer | None = field(default=None, compare=False)


def load_pyfunc(
    tracking_uri: str, model_uri: str, destination: Path
) -> tuple[PyFuncModel, FastScorer | None]:
    """Download ``model_uri`` into ``destination``, load it as a pyfunc model, and compile its
    fast prediction path (None: the general path serves it)."""
    local_path = mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri,
        dst_path=str(destination),
        tracking_uri=tracking_uri,
        registry_uri=tracking_uri,
    )
    model = mlflow.pyfunc.load_model(local_path)
    return model, compile_scorer(model, model.metadata.get_input_schema(), Path(local_path))


class ModelStore:
    def __init__(
        self,
        registry: Registry,
        *,
        stage_aliases: Mapping[str, str],
        refresh_seconds: float,
        max_pinned_versions: int = DEFAULT_MAX_PINNED_VERSIONS,
        download_root: str | None = None,
    ) -> None:
        self._registry = registry
        self._stage_aliases = stage_aliases
        self._refresh_seconds = refresh_seconds
        self._max_pinned = max_pinned_versions
        self._models: dict[Key, LoadedModel] = {}
        self._load_locks: dict[Key, asyncio.Lock] = {}
        self._failures: dict[Key, tuple[float, str]] = {}
        # (model, alias) -> version; every version here is loaded (recorded only after its load)
        self._aliases: dict[Key, str] = {}
        # versions requested by number, least recently requested first
        self._pinned: OrderedDict[Key, None] = OrderedDict()
        # model -> why its aliases could not be re-read at the last refresh (cached ones serve)
        self._refresh_problems: dict[str, str] = {}
        self._preload: tuple[ModelRef, ...] = ()
        self._preload_versions: frozenset[Key] = frozenset()
        self._preload_errors: dict[ModelRef, str] = {}
        self._download_root = download_root
        self._download_dir: DownloadDir | None = None
        self._cache_dir: Path | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, preload: Sequence[ModelRef]) -> None:
        """Create the download directory and start preloading + periodic alias refresh."""
        root = self._download_root or tempfile.gettempdir()
        for gone in await asyncio.to_thread(sweep, root):
            logger.info("deleted the download directory of a process that is gone: %s", gone)
        self._download_dir = DownloadDir(root)
        self._cache_dir = self._download_dir.path
        self._preload = tuple(preload)
        self._preload_versions = frozenset(
            (ref.name, version)
            for ref in self._preload
            if (version := _version_number(ref.ref)) is not None
        )
        self._preload_errors = {ref: "not loaded yet" for ref in self._preload}
        self._task = asyncio.create_task(self._refresh_loop(), name="model-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._download_dir is not None:
            self._download_dir.close()

    # -- lookups -----------------------------------------------------------------------------

    async def get(self, name: str, ref: str) -> LoadedModel:
        """The loaded model for ``ref``: an alias, a version number or a mapped stage name.

        Served from the cache without calling MLflow when the alias is cached, or the version
        loaded; so cached models keep serving while MLflow is down.
        """
        loaded = await self.load(name, await self.resolve(name, ref))
        # No await from here on: what refers to the version is recorded before any eviction runs.
        key = (name, loaded.version)
        if _version_number(ref) is not None:
            if key not in self._preload_versions:  # those stay loaded anyway
                self._pin(key)
        else:
            # the first resolution is kept: a concurrent one (or the refresh) may have recorded
            # it already; a version nothing refers to is evicted at the next refresh
            self._aliases.setdefault((name, self._alias(ref)), loaded.version)
        return loaded

    async def resolve(self, name: str, ref: str) -> str:
        """The version ``ref`` stands for: from the cache, else from the registry."""
        version = _version_number(ref)
        if version is not None:
            if (name, version) not in self._models:
                await asyncio.to_thread(self._registry.get_version, name, version)
            return version
        alias = self._alias(ref)
        cached = self._aliases.get((name, alias))
        if cached is not None:
            return cached
        info = await asyncio.to_thread(self._registry.get_version_by_alias, name, alias)
        return info.version

    async def load(self, name: str, version: str) -> LoadedModel:
        key = (name, version)
        loaded = self._models.get(key)
        if loaded is not None:
            return loaded
        lock = self._load_locks.setdefault(key, asyncio.Lock())
        async with lock:
            loaded = self._models.get(key)
            if loaded is not None:
                return loaded
            failure = self._failures.get(key)
            if failure is not None and time.monotonic() - failure[0] < self._refresh_seconds:
                raise ModelLoadError(failure[1])
            loaded = await self._load_uncached(name, version)
            self._models[key] = loaded
            CACHED_MODEL_VERSIONS.set(len(self._models))
            self._failures.pop(key, None)
            return loaded

    def preload_errors(self) -> dict[str, str]:
        """Preload references that are not loaded, with the reason."""
        return {str(ref): reason for ref, reason in self._preload_errors.items()}

    def refresh_problems(self) -> dict[str, str]:
        """Models whose aliases could not be re-read at the last refresh, with the reason (their
        cached versions keep serving)."""
        return dict(self._refresh_problems)

    def cached_versions(self) -> list[Key]:
        """The loaded ``(model, version)`` pairs."""
        return list(self._models)

    def resolved_preloads(self) -> dict[str, str]:
        """Preload references that are loaded, with the version they resolve to now."""
        resolved = {}
        for ref in self._preload:
            if ref in self._preload_errors:
                continue
            version = self._cached_version(ref)
            if version is not None:
                resolved[str(ref)] = version
        return resolved

    # -- internals ---------------------------------------------------------------------------

    async def _load_uncached(self, name: str, version: str) -> LoadedModel:
        assert self._cache_dir is not None, "ModelStore.start() was not awaited"
        destination = Path(tempfile.mkdtemp(prefix=_dir_prefix(version), dir=self._cache_dir))
        started = time.perf_counter()
        try:
            model, fast = await asyncio.to_thread(
                load_pyfunc, self._registry.tracking_uri, f"models:/{name}/{version}", destination
            )
            schema = model.metadata.get_input_schema()
        except Exception as exc:  # any flavor can fail in its own way; it is reported as a 503
            shutil.rmtree(destination, ignore_errors=True)
            message = f"model {name!r} version {version} could not be loaded: {_summary(exc)}"
            self._failures[(name, version)] = (time.monotonic(), message)
            MODEL_LOAD_FAILURES.labels(model=name, version=version).inc()
            logger.error(message, exc_info=exc, extra={"model": name, "version": version})
            raise ModelLoadError(message) from exc
        seconds = time.perf_counter() - started
        MODEL_LOAD_SECONDS.labels(model=name, version=version).observe(seconds)
        logger.info(
            "model loaded",
            extra={"model": name, "version": version, "load_seconds": round(seconds, 3)},
        )
        loaded = LoadedModel(name, version, model, schema, seconds, destination, fast)
        # The files go when the version has been evicted AND the last request using it is done
        # (a flavor may read its files while predicting); CPython frees it at once by refcount.
        weakref.finalize(loaded, shutil.rmtree, destination, True)
        return loaded

    def _alias(self, ref: str) -> str:
        return self._stage_aliases.get(ref.lower(), ref)

    def _cached_version(self, ref: ModelRef) -> str | None:
        version = _version_number(ref.ref)
        if version is not None:
            return version if (ref.name, version) in self._models else None
        return self._aliases.get((ref.name, self._alias(ref.ref)))

    # -- eviction ----------------------------------------------------------------------------

    def _pin(self, key: Key) -> None:
        """Mark ``key`` as the most recently requested-by-number version; evict the oldest."""
        self._pinned[key] = None
        self._pinned.move_to_end(key)
        while len(self._pinned) > self._max_pinned:
            oldest, _ = self._pinned.popitem(last=False)
            if oldest not in self._referenced():
                self._evict(oldest, "no longer among the recently requested versions")

    def _referenced(self) -> set[Key]:
        keep = {(name, version) for (name, _), version in self._aliases.items()}
        keep.update(self._pinned)
        keep.update(self._preload_versions)
        return keep

    def evict_unreferenced(self) -> None:
        """Evict every loaded version that no alias, preload or recent request refers to."""
        keep = self._referenced()
        for key in [key for key in self._models if key not in keep]:
            self._evict(key, "no alias points to it")
        now = time.monotonic()
        for key, (when, _) in list(self._failures.items()):
            if now - when >= self._refresh_seconds:
                del self._failures[key]

    def _evict(self, key: Key, why: str) -> None:
        loaded = self._models.pop(key, None)
        if loaded is None:
            return
        lock = self._load_locks.get(key)
        if lock is not None and not lock.locked():
            del self._load_locks[key]
        CACHED_MODEL_VERSIONS.set(len(self._models))
        MODEL_EVICTIONS.labels(model=key[0]).inc()
        logger.info(
            "model version evicted", extra={"model": key[0], "version": key[1], "reason": why}
        )

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self._ensure_preloaded()
                await asyncio.sleep(self._refresh_seconds)
                await self.refresh_aliases()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive anything; the cause is logged
                logger.exception("model refresh iteration failed")
                await asyncio.sleep(self._refresh_seconds)

    async def _ensure_preloaded(self) -> None:
        for ref in self._preload:
            try:
                await self.get(ref.name, ref.ref)
            except (RegistryError, ModelLoadError) as exc:
                self._preload_errors[ref] = str(exc)
                logger.warning("preload failed", extra={"model_ref": str(ref), "reason": str(exc)})
            else:
                self._preload_errors.pop(ref, None)

    async def refresh_aliases(self) -> None:
        """Re-resolve every cached alias; switch only to versions that load; evict the versions
        nothing refers to any more."""
        aliases_by_model: dict[str, list[str]] = defaultdict(list)
        for name, alias in list(self._aliases):
            aliases_by_model[name].append(alias)
        for name in set(self._refresh_problems) - set(aliases_by_model):
            del self._refresh_problems[name]
        for name, aliases in aliases_by_model.items():
            try:
                current = await asyncio.to_thread(self._registry.get_aliases, name)
            except (RegistryUnavailableError, PermissionDeniedError) as exc:
                # not a definite answer: keep serving what is cached, say so in /ready
                for alias in aliases:
                    ALIAS_REFRESH_ERRORS.labels(model=name, alias=alias).inc()
                self._refresh_problems[name] = str(exc)
                logger.warning(
                    "alias refresh failed, keeping cached versions",
                    extra={"model": name, "reason": str(exc)},
                )
                continue
            except NotFoundError:  # the registered model does not exist: its aliases are gone
                current = {}
            self._refresh_problems.pop(name, None)
            for alias in aliases:
                await self._apply_alias(name, alias, current.get(alias))
        self.evict_unreferenced()

    async def _apply_alias(self, name: str, alias: str, version: str | None) -> None:
        key = (name, alias)
        previous = self._aliases.get(key)
        if version is None:
            self._aliases.pop(key, None)
            logger.info("alias removed", extra={"model": name, "alias": alias})
            return
        version = str(version)
        if version == previous:
            return
        try:
            await self.load(name, version)
        except ModelLoadError as exc:
            ALIAS_REFRESH_ERRORS.labels(model=name, alias=alias).inc()
            logger.error(
                "alias moved to a version that cannot be loaded; still serving the previous one",
                extra={"model": name, "alias": alias, "version": version, "reason": str(exc)},
            )
            return
        self._aliases[key] = version
        logger.info(
            "alias moved",
            extra={"model": name, "alias": alias, "from_version": previous, "version": version},
        )


def _version_number(ref: str) -> str | None:
    """The canonical version number if ``ref`` is one (``"007"`` -> ``"7"``), else None."""
    return str(int(ref)) if ref.isascii() and ref.isdigit() else None


def _dir_prefix(version: str) -> str:
    return f"v{version}-"


def _summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

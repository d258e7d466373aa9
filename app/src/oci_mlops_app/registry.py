"""Read-only access to the MLflow model registry, with MLflow errors mapped to two kinds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# MLflow answers an unknown alias with INVALID_PARAMETER_VALUE (not RESOURCE_DOES_NOT_EXIST), and
# with basic auth and default_permission NO_PERMISSIONS an unknown model is a 403 (the permission
# check runs before the lookup), so all three mean "not found" to a caller of this API. Only the
# first two are definite, though: a 403 is also what a revoked grant, or a model deleted with its
# grants, answers, so the model cache does not take it as proof that a cached alias is gone
# (PermissionDeniedError, a NotFoundError for the API's callers).
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
_PERMISSION_DENIED = "PERMISSION_DENIED"


class RegistryError(Exception):
    """Base class of registry errors."""


class NotFoundError(RegistryError):
    """The model, version or alias does not exist, or this service's MLflow user cannot read it."""


class PermissionDeniedError(NotFoundError):
    """MLflow answered 403: an unknown model (default_permission NO_PERMISSIONS), a model deleted
    with its grants, or a grant revoked. A 404 for the API's callers, but not a definite "gone".
    """


class RegistryUnavailableError(RegistryError):
    """MLflow could not be reached or failed."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    aliases: tuple[str, ...]
    status: str
    run_id: str | None
    source: str
    description: str
    creation_timestamp: int
    last_updated_timestamp: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "aliases": list(self.aliases),
            "status": self.status,
            "run_id": self.run_id,
            "source": self.source,
            "description": self.description,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "tags": self.tags,
        }


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    aliases: dict[str, str]
    tags: dict[str, str]
    creation_timestamp: int
    last_updated_timestamp: int
    versions: tuple[VersionInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "aliases": self.aliases,
            "tags": self.tags,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "versions": [v.to_dict() for v in self.versions],
        }


class Registry:
    """Blocking calls to the MLflow registry (run them in a worker thread from async code).

    Credentials come from MLflow's own ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``,
    unless ``client`` is given: an MLflow model-registry store (or client) with credentials of
    its own (the dashboard's signed-in user).
    """

    def __init__(self, tracking_uri: str, client: Any = None) -> None:
        self.tracking_uri = tracking_uri
        self._client = (
            client
            if client is not None
            else MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        )

    def list_models(self) -> list[ModelInfo]:
        models = _all_pages(self._client.search_registered_models)
        versions_by_model: dict[str, list[ModelVersion]] = defaultdict(list)
        for version in _all_pages(self._client.search_model_versions):
            versions_by_model[version.name].append(version)
        return sorted(
            (_model_info(m, versions_by_model[m.name]) for m in models), key=lambda m: m.name
        )

    def get_model(self, name: str) -> ModelInfo:
        model = self._call(
            f"registered model {name!r} not found", self._client.get_registered_model, name
        )
        versions = _all_pages(
            self._client.search_model_versions, filter_string=f"name = {_quote(name)}"
        )
        return _model_info(model, versions)

    def get_version(self, name: str, version: str) -> VersionInfo:
        return _version_info(
            self._call(
                f"registered model {name!r} has no version {version}",
                self._client.get_model_version,
                name,
                version,
            )
        )

    def get_version_by_alias(self, name: str, alias: str) -> VersionInfo:
        return _version_info(
            self._call(
                f"registered model {name!r} has no alias {alias!r}",
                self._client.get_model_version_by_alias,
                name,
                alias,
            )
        )

    def get_aliases(self, name: str) -> dict[str, str]:
        """The alias -> version map of one registered model."""
        model = self._call(
            f"registered model {name!r} not found", self._client.get_registered_model, name
        )
        return dict(model.aliases)

    @staticmethod
    def _call(not_found: str, method: Any, *args: str) -> Any:
        try:
            return method(*args)
        except MlflowException as exc:
            raise translate(exc, not_found) from exc


def translate(exc: MlflowException, not_found: str = "not found") -> RegistryError:
    """Map an MLflow error to NotFoundError (with ``not_found`` as message) or unavailable."""
    if exc.error_code == _PERMISSION_DENIED:
        return PermissionDeniedError(f"{not_found} (MLflow: {exc.error_code})")
    if exc.error_code in _NOT_FOUND_CODES:
        return NotFoundError(f"{not_found} (MLflow: {exc.error_code})")
    return RegistryUnavailableError(f"MLflow registry request failed: {first_line(exc.message)}")


def _all_pages(search: Any, **kwargs: str) -> list[Any]:
    results: list[Any] = []
    token: str | None = None
    while True:
        try:
            page = search(page_token=token, **kwargs)
        except MlflowException as exc:
            raise translate(exc) from exc
        results.extend(page)
        token = page.token
        if not token:
            return results


def _quote(value: str) -> str:
    """Quote a string literal for an MLflow search filter."""
    quote = "'" if "'" not in value else '"'
    if quote in value:
        raise NotFoundError(f"model name {value!r} cannot be searched (contains both quote kinds)")
    return f"{quote}{value}{quote}"


def _model_info(model: RegisteredModel, versions: list[ModelVersion]) -> ModelInfo:
    aliases = dict(model.aliases)
    # search_model_versions leaves ModelVersion.aliases empty; the registered model has them
    aliases_by_version: dict[str, list[str]] = defaultdict(list)
    for alias, version in sorted(aliases.items()):
        aliases_by_version[str(version)].append(alias)
    infos = [_version_info(v, tuple(aliases_by_version.get(str(v.version), ()))) for v in versions]
    return ModelInfo(
        name=model.name,
        description=model.description or "",
        aliases=aliases,
        tags=dict(model.tags),
        creation_timestamp=model.creation_timestamp or 0,
        last_updated_timestamp=model.last_updated_timestamp or 0,
        versions=tuple(sorted(infos, key=lambda v: int(v.version), reverse=True)),
    )


def _version_info(version: ModelVersion, aliases: tuple[str, ...] | None = None) -> VersionInfo:
    return VersionInfo(
        name=version.name,
        version=str(version.version),
        aliases=tuple(version.aliases) if aliases is None else aliases,
        status=str(version.status),
        run_id=version.run_id or None,
        source=version.source or "",
        description=version.description or "",
        creation_timestamp=version.creation_timestamp or 0,
        last_updated_timestamp=version.last_updated_timestamp or 0,
        tags=dict(version.tags),
    )


def first_line(message: str) -> str:
    """The first line of an (MLflow) error message."""
    return message.strip().splitlines()[0] if message.strip() else "MLflow request failed"

"""State and migration of MLflow's databases, run with the server's virtualenv.

    mlflow-schema status            JSON: current and head revision of the tracking
                                    and auth schemas (read-only)
    mlflow-schema upgrade-tracking  `mlflow db upgrade` of the tracking database
    mlflow-schema upgrade-auth      migrate the basic-auth database to head

MLflow has no "check" subcommand: the role compares the databases' alembic
revisions with the installed package's heads and migrates only when they
differ.

The URIs hold the database password, so they never come from a command line
or from the caller: the role runs this helper as a transient systemd unit
with the server's own environment file (`systemd-run --pipe --wait
-p EnvironmentFile=/etc/mlflow/mlflow.env`), which gives the tracking URI
(MLFLOW_BACKEND_STORE_URI) and the auth ini's path (MLFLOW_AUTH_CONFIG_PATH);
the auth database URI is read from that ini (`database_uri`, as MLflow's
basic-auth app reads it). No MLFLOW_AUTH_CONFIG_PATH: auth is off.

upgrade-auth works around two upstream problems of the auth database on MySQL
(mlflow/mlflow#9642, #10964): the first auth migration names two foreign keys
`fk_user_id` (MySQL: ERROR 1826, FK names are per schema), and the server
deadlocks itself migrating an empty auth database at start. On an empty
database it creates the first revision's tables with the second key renamed,
stamps that revision, then runs MLflow's own migrations to head.
"""

import configparser
import importlib.util
import json
import os
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

AUTH_INITIAL_REVISION = "8606fa83a998"
AUTH_VERSION_TABLE = "alembic_version_auth"


def _mlflow_dir() -> Path:
    spec = importlib.util.find_spec("mlflow")  # located, not imported (importing mlflow is slow)
    if spec is None or spec.origin is None:
        sys.exit("mlflow-schema: mlflow is not installed in this interpreter's environment")
    return Path(spec.origin).parent


def tracking_uri(environ=os.environ) -> str:
    """The backend store URI, from the server's environment file (systemd passes it)."""
    uri = environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not uri:
        sys.exit("mlflow-schema: MLFLOW_BACKEND_STORE_URI is not set (run it with the server's environment file)")
    return uri


def auth_uri(environ=os.environ) -> str | None:
    """The auth database URI from the basic-auth ini (MLFLOW_AUTH_CONFIG_PATH), None when auth is off."""
    path = environ.get("MLFLOW_AUTH_CONFIG_PATH", "")
    if not path:
        return None
    ini = configparser.ConfigParser()
    if not ini.read(path):
        sys.exit(f"mlflow-schema: cannot read the auth configuration {path}")
    uri = ini.get("mlflow", "database_uri", fallback="")
    if not uri:
        sys.exit(f"mlflow-schema: {path} has no [mlflow] database_uri")
    return uri


def _config(migrations: Path, uri: str | None = None) -> Config:
    cfg = Config(str(migrations / "alembic.ini"))
    cfg.set_main_option("script_location", str(migrations))
    if uri:
        cfg.set_main_option("sqlalchemy.url", uri.replace("%", "%%"))
    return cfg


# Reading a head means loading every migration script (about 2 s of CPU per
# converge): the heads are cached next to this script, keyed by the migrations
# directory and its state, so they are read again whenever the installed
# release changes.
HEADS_CACHE = Path(__file__).with_name(".schema-heads.json")


def _head(migrations: Path) -> str:
    versions = migrations / "versions"
    key = f"{migrations}:{versions.stat().st_mtime_ns}:{sum(1 for _ in versions.glob('*.py'))}"
    try:
        cache = json.loads(HEADS_CACHE.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    if isinstance(cache.get(key), str):
        return cache[key]
    head = ScriptDirectory.from_config(_config(migrations)).get_current_head()
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{migrations}:")}
    cache[key] = head
    try:
        tmp = HEADS_CACHE.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, sort_keys=True))
        tmp.replace(HEADS_CACHE)
    except OSError:
        pass  # a read-only place only costs the cache
    return head


def _current(uri: str, version_table: str) -> str | None:
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()
    finally:
        engine.dispose()


def _tracking_migrations() -> Path:
    return _mlflow_dir() / "store" / "db_migrations"


def _auth_migrations() -> Path:
    return _mlflow_dir() / "server" / "auth" / "db" / "migrations"


def status() -> dict:
    result = {
        "tracking": {
            "current": _current(tracking_uri(), "alembic_version"),
            "head": _head(_tracking_migrations()),
        }
    }
    auth = auth_uri()
    if auth:
        result["auth"] = {"current": _current(auth, AUTH_VERSION_TABLE), "head": _head(_auth_migrations())}
    return result


def upgrade_tracking() -> dict:
    """`mlflow db upgrade <uri>`, called in-process: the URI never reaches an argv."""
    from mlflow.db import commands

    uri = tracking_uri()
    before = _current(uri, "alembic_version")
    commands.main(["upgrade", uri], prog_name="mlflow db", standalone_mode=False)
    return {"before": before, "after": _current(uri, "alembic_version"), "head": _head(_tracking_migrations())}


def _create_initial_auth_schema(engine) -> None:
    """Revision 8606fa83a998 as upstream writes it, with unique foreign key names."""
    md = sa.MetaData()
    sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer(), nullable=False, primary_key=True),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=True),
        sa.UniqueConstraint("username"),
    )
    sa.Table(
        "experiment_permissions",
        md,
        sa.Column("id", sa.Integer(), nullable=False, primary_key=True),
        sa.Column("experiment_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_id"),
        sa.UniqueConstraint("experiment_id", "user_id", name="unique_experiment_user"),
    )
    sa.Table(
        "registered_model_permissions",
        md,
        sa.Column("id", sa.Integer(), nullable=False, primary_key=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_registered_model_perm_user_id"),
        sa.UniqueConstraint("name", "user_id", name="unique_name_user"),
    )
    md.create_all(engine)


def upgrade_auth() -> dict:
    uri = auth_uri()
    if not uri:
        sys.exit("mlflow-schema: auth is off (no MLFLOW_AUTH_CONFIG_PATH), nothing to migrate")
    cfg = _config(_auth_migrations(), uri)
    before = _current(uri, AUTH_VERSION_TABLE)
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        if before is None and "users" not in tables:
            _create_initial_auth_schema(engine)
            command.stamp(cfg, AUTH_INITIAL_REVISION)
        elif before is None:
            # Auth tables from MLflow < 3.6 (no version table): what MLflow itself does.
            command.stamp(cfg, AUTH_INITIAL_REVISION)
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    return {"before": before, "after": _current(uri, AUTH_VERSION_TABLE), "head": _head(_auth_migrations())}


def main() -> int:
    actions = {"status": status, "upgrade-tracking": upgrade_tracking, "upgrade-auth": upgrade_auth}
    if len(sys.argv) != 2 or sys.argv[1] not in actions:
        print(f"usage: {sys.argv[0]} {{{'|'.join(actions)}}}", file=sys.stderr)
        return 2
    print(json.dumps(actions[sys.argv[1]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

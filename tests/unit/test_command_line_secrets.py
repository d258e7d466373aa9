"""No secret on a process command line or in the environment Ansible gives a command (issue #15, point 1).

A task's `environment:` becomes `KEY=value` words of the `/bin/sh -c` command
Ansible runs on the host, and of the controller's `docker exec` (lab) or
`ssh` argv; an argv word is in `ps` for everyone. `no_log` hides neither. So:

1. Static audit: every task of the roles and playbooks is parsed; the values
   that end up on a command line or in a command's environment (task, block
   and play `environment:`, command/shell/raw/script argv or free form,
   docker exec argv/env, pip extra_args, user's password, a unit's ExecStart=
   and Environment= lines) must not use a variable that carries a secret.
   What carries one is computed, not listed: the secrets declared once in
   platform_defaults (`lookup('oci_mlops_secret', ...)`, `vault_*`), and
   every variable whose definition (defaults, vars, set_fact, task vars, a
   no_log task's register, a template it renders) uses one, to a fixed point.
2. Local play: the role's own secret-bearing task files (MLflow's schema
   helper, Airflow's migration check and migration, admin user, DAG publish)
   run on localhost with fakes for systemd-run, runuser, airflow, the
   helpers' python and rclone that record argv, environment and stdin. No
   secret is in any argv, nor in the environment of any process Ansible
   starts; the commands get them from the service's environment file (the
   fake systemd-run reads EnvironmentFile= as systemd does) or on stdin.
"""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import types
import warnings
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml
from conftest import PLATFORM_DEFAULTS, ROLES, ROOT, load_plugin, run_local_play

PLAYBOOKS = ROOT / "ansible" / "playbooks"
SECRETS_YML = PLATFORM_DEFAULTS / "secrets.yml"
DECLARED = [d["name"] for d in yaml.safe_load(SECRETS_YML.read_text(encoding="utf-8"))["oci_mlops_secrets"]]
SECRET_LOOKUP = re.compile(r"""(lookup|query)\(\s*['"]oci_mlops_secret['"]""")
TEMPLATE_LOOKUP = re.compile(r"""lookup\(\s*['"](?:ansible\.builtin\.)?template['"]\s*,\s*['"]([^'"]+)['"]""")
JINJA = jinja2.Environment()

COMMAND_MODULES = {"command", "shell", "raw", "script", "expect"}
# module -> its arguments that reach a command line (or a process environment)
EXPOSED_ARGS = {
    **{m: {"argv", "cmd", "_raw_params", "command"} for m in COMMAND_MODULES},
    "docker_container_exec": {"argv", "command", "env"},
    "pip": {"extra_args"},
    "user": {"password"},
}
# systemd_service inputs that become a unit's (world-readable) ExecStart=/Environment= lines.
EXPOSED_ROLE_VARS = {"systemd_service_exec_start", "systemd_service_environment", "systemd_service_service_extra"}
NOT_MODULE_KEYS = {
    "name", "when", "loop", "loop_control", "register", "vars", "environment", "no_log", "changed_when",
    "failed_when", "check_mode", "become", "become_user", "delegate_to", "run_once", "tags", "notify", "retries",
    "delay", "until", "ignore_errors", "args", "block", "rescue", "always", "listen", "async", "poll",
    "diff", "throttle", "timeout", "any_errors_fatal", "local_action", "delegate_facts",
}  # fmt: skip


# ---------------------------------------------------------------- the audit


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _template_files(name: str) -> list[Path]:
    return sorted(ROLES.glob(f"*/templates/{name}"))


def names_used(value) -> set[str]:
    """The variables a value's Jinja uses (templates it renders with lookup included)."""
    found: set[str] = set()
    for text in _strings(value):
        if "{{" not in text and "{%" not in text:
            continue
        try:
            with warnings.catch_warnings():  # Ansible's regexes in Jinja strings ('\\s', ...)
                warnings.simplefilter("ignore", DeprecationWarning)
                found |= jinja2.meta.find_undeclared_variables(JINJA.parse(text))
        except jinja2.TemplateSyntaxError:
            found |= set(re.findall(r"\b[a-z_][a-z0-9_]*\b", text))
        for name in TEMPLATE_LOOKUP.findall(text):
            for path in _template_files(name):
                found |= names_used(path.read_text(encoding="utf-8"))
    return found


def _is_seed(value) -> bool:
    return any(SECRET_LOOKUP.search(t) for t in _strings(value)) or any(
        n.startswith("vault_") for n in names_used(value)
    )


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _module(task: dict) -> tuple[str, object] | None:
    for key, args in task.items():
        if key in NOT_MODULE_KEYS or key.startswith("with_"):
            continue
        return key.rsplit(".", 1)[-1], args
    return None


def _walk(tasks, source: str, env: list, out: list) -> None:
    """(source, task, environments of its blocks and play) for every task, blocks flattened."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if "block" in task:
            here = env + ([task["environment"]] if "environment" in task else [])
            for part in ("block", "rescue", "always"):
                _walk(task.get(part), source, here, out)
            continue
        out.append((source, task, env))


def all_tasks() -> list:
    out: list = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml")):
        _walk(_yaml(path), str(path.relative_to(ROOT)), [], out)
    for path in [ROOT / "site.yml", *sorted(PLAYBOOKS.glob("*.yml"))]:
        for play in _yaml(path) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            env = [play["environment"]] if "environment" in play else []
            for part in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                _walk(play.get(part), f"{path.relative_to(ROOT)} ({play.get('name', '')})", env, out)
    return out


def definitions() -> list[tuple[str, object]]:
    """(variable, value) of every definition the plays can see."""
    defs: list[tuple[str, object]] = []
    files = [
        *sorted(PLATFORM_DEFAULTS.glob("*.yml")),
        *sorted(ROLES.glob("*/defaults/main.yml")),
        *sorted(ROLES.glob("*/vars/*.yml")),
        *sorted((ROOT / "inventory" / "lab").rglob("*.yml")),
    ]
    for path in files:
        data = _yaml(path)
        if isinstance(data, dict):
            defs.extend(data.items())
    for path in [ROOT / "site.yml", *sorted(PLAYBOOKS.glob("*.yml"))]:
        for play in _yaml(path) or []:
            if isinstance(play, dict):
                defs.extend((play.get("vars") or {}).items())
    for _source, task, _env in all_tasks():
        defs.extend((task.get("vars") or {}).items())
        module = _module(task)
        if module and module[0] == "set_fact" and isinstance(module[1], dict):
            defs.extend((k, v) for k, v in module[1].items() if k != "cacheable")
    return defs


def secret_variables() -> set[str]:
    """Variables that carry a secret (to a fixed point over every definition)."""
    defs = definitions()
    tainted = {name for name, value in defs if _is_seed(value)}
    # A no_log task's result holds what it hid (e.g. the slurped auth ini).
    tainted |= {t["register"] for _s, t, _e in all_tasks() if t.get("no_log") and "register" in t}
    used = [(name, names_used(value)) for name, value in defs]
    while True:
        more = {name for name, uses in used if name not in tainted and uses & tainted}
        if not more:
            return tainted
        tainted |= more


SECRET_VARS = secret_variables()


def exposed_values(task: dict, env: list) -> list[tuple[str, object]]:
    """(what, value) of a task that reach a command line or a command's environment."""
    own = [task["environment"]] if "environment" in task else []
    values: list[tuple[str, object]] = [("environment", e) for e in env + own]
    module = _module(task)
    if module:
        name, args = module
        if isinstance(args, dict) and isinstance(task.get("args"), dict):
            args = {**task["args"], **args}
        if name in EXPOSED_ARGS:
            if isinstance(args, str):
                values.append((f"{name} (free form)", args))
            elif isinstance(args, dict):
                values.extend((f"{name} {k}", v) for k, v in args.items() if k in EXPOSED_ARGS[name])
        if name in ("include_role", "import_role"):
            values.extend((f"unit {k}", v) for k, v in (task.get("vars") or {}).items() if k in EXPOSED_ROLE_VARS)
    return values


def leaks(task: dict, env: list, secret_vars: set[str]) -> list[str]:
    local = set(secret_vars)
    local |= {k for k, v in (task.get("vars") or {}).items() if names_used(v) & local or _is_seed(v)}
    loop = task.get("loop", next((v for k, v in task.items() if k.startswith("with_")), None))
    if loop is not None and (names_used(loop) & local or _is_seed(loop)):
        local.add((task.get("loop_control") or {}).get("loop_var", "item"))
    found = []
    for what, value in exposed_values(task, env):
        hit = sorted(names_used(value) & local) + (["lookup('oci_mlops_secret')"] if _is_seed(value) else [])
        if hit:
            found.append(f"{what}: {', '.join(hit)}")
    return found


SITES = [(source, task, env) for source, task, env in all_tasks() if exposed_values(task, env)]


def test_the_audit_knows_the_secrets():
    """The taint reaches what the roles derive from the declared secrets (else the audit proves nothing)."""
    expected = {
        "mlflow_backend_store_uri",  # the MySQL URI, with the password
        "mlflow_auth_database_uri",
        "airflow_database_url",
        "airflow_fernet_key",  # derived (SHA-256) from airflow_fernet_secret
        "airflow_credentials",  # the credential files airflow.cfg's _cmd options read
        "airflow_publish_rclone_config",  # the controller's read-write key (publish.yml)
        "airflow_dag_sync_environment",  # the S3 secret key
        "mlflow_admin_password",
        "mlflow_previous_admin_password",  # read from the slurped ini (no_log register)
        "airflow_admin_password",
        "mlflow_users",
        "model_api_keys",
        "mlflow_db_password",
        "airflow_db_password",
        "oci_mlops_api_key",
    }
    assert expected <= SECRET_VARS, sorted(expected - SECRET_VARS)
    assert len(DECLARED) >= 17
    assert "airflow_user" not in SECRET_VARS and "mlflow_venv_dir" not in SECRET_VARS


def test_the_audit_finds_a_leak():
    """The checker fails the patterns of issue #15: environment:, argv, free form, loop item, unit lines."""
    bad: list[tuple[dict, list]] = [
        ({"ansible.builtin.command": {"argv": ["x"]}, "environment": {"U": "{{ airflow_database_url }}"}}, []),
        ({"ansible.builtin.command": {"argv": ["a", "--password", "{{ airflow_admin_password }}"]}}, []),
        ({"ansible.builtin.shell": "mysql -p{{ mlflow_db_password }}"}, []),
        ({"ansible.builtin.command": {"argv": ["a", "{{ item.password }}"]}, "loop": "{{ mlflow_users }}"}, []),
        ({"ansible.builtin.command": {"argv": ["a"]}}, [{"K": "{{ lookup('oci_mlops_secret', 'api_key') }}"}]),
        (
            {
                "ansible.builtin.include_role": {"name": "systemd_service"},
                "vars": {"systemd_service_exec_start": "x {{ oci_mlops_api_key }}"},
            },
            [],
        ),
        ({"ansible.builtin.command": {"argv": ["a", "{{ p }}"]}, "vars": {"p": "{{ mlflow_backend_store_uri }}"}}, []),
    ]
    for task, env in bad:
        assert leaks(task, env, SECRET_VARS), task
    good = {"ansible.builtin.command": {"argv": ["a"], "stdin": "{{ airflow_admin_password }}"}}
    assert not leaks(good, [], SECRET_VARS)


@pytest.mark.parametrize(
    ("source", "task", "env"),
    SITES,
    ids=[f"{s}:{t.get('name', '?')}" for s, t, _e in SITES],
)
def test_no_secret_reaches_a_command_line(source, task, env):
    found = leaks(task, env, SECRET_VARS)
    assert not found, (
        f"{source}: task '{task.get('name')}' puts a secret on a command line or in its environment: {found}"
    )


def test_systemd_run_commands_are_safe_to_expand():
    """systemd expands `$VAR` in a transient unit's command: nothing after `--` may contain a `$`;
    --wait/--pipe give Ansible the exit status and output, EnvironmentFile= the secrets."""
    mlflow = _yaml(ROLES / "mlflow" / "vars" / "main.yml")
    airflow = _yaml(ROLES / "airflow" / "vars" / "main.yml")
    prefixes = [mlflow["mlflow_schema_command"], airflow["airflow_command_prefix"]]
    for prefix in prefixes:
        assert prefix[0] == "systemd-run"
        assert {"--pipe", "--wait", "--collect", "--quiet"} <= set(prefix)
        assert any(w.startswith("--property=EnvironmentFile=") for w in prefix)
    assert "$" not in airflow["airflow_db_state_script"] and "%" not in airflow["airflow_db_state_script"]


# ---------------------------------------------------------------- the helper


def _load_schema_helper():
    """mlflow-schema.py with stand-ins for sqlalchemy/alembic (not installed on the controller)."""
    stubs = {
        "sqlalchemy": types.ModuleType("sqlalchemy"),
        "alembic": types.ModuleType("alembic"),
        "alembic.config": types.ModuleType("alembic.config"),
        "alembic.migration": types.ModuleType("alembic.migration"),
        "alembic.script": types.ModuleType("alembic.script"),
    }
    stubs["alembic"].command = types.ModuleType("alembic.command")  # type: ignore[attr-defined]
    stubs["alembic.config"].Config = object  # type: ignore[attr-defined]
    stubs["alembic.migration"].MigrationContext = object  # type: ignore[attr-defined]
    stubs["alembic.script"].ScriptDirectory = object  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        return load_plugin(ROLES / "mlflow" / "files" / "mlflow-schema.py")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_schema_helper_reads_the_auth_uri_from_the_ini(tmp_path):
    helper = _load_schema_helper()
    ini = tmp_path / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\ndatabase_uri = mysql+pymysql://u:p%%41ss@db/mlflow\n")
    env = {"MLFLOW_BACKEND_STORE_URI": "mysql+pymysql://u:t@db/mlflow", "MLFLOW_AUTH_CONFIG_PATH": str(ini)}
    assert helper.auth_uri(env) == "mysql+pymysql://u:p%41ss@db/mlflow"
    assert helper.tracking_uri(env) == "mysql+pymysql://u:t@db/mlflow"
    assert helper.auth_uri({}) is None  # auth off
    # The URI is never taken from the environment any more.
    assert helper.auth_uri({"MLFLOW_AUTH_DATABASE_URI": "x"}) is None
    with pytest.raises(SystemExit):
        helper.auth_uri({"MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "missing.ini")})
    with pytest.raises(SystemExit):
        helper.tracking_uri({})


# ---------------------------------------------------------------- the local play

FAKE = r'''#!__PYTHON__
"""Stand-in for systemd-run, runuser, airflow, the helpers' python and rclone: records, then acts."""
import importlib.util, json, os, subprocess, sys, types
LOG, STATE, EXPECT = __LOG__, __STATE__, __EXPECT__
name = os.path.basename(sys.argv[0])
kind = "/".join(sys.argv[0].split("/")[-4:])
rec = {"name": name, "kind": kind, "argv": sys.argv, "env": dict(os.environ),
       "service_side": os.environ.get("FAKE_SERVICE_SIDE") == "1"}


def log(**more):
    rec.update(more)
    with open(LOG, "a") as out:
        out.write(json.dumps(rec) + "\n")


def env_file(path):
    """systemd's EnvironmentFile= syntax, as the role's templates write it."""
    env = {}
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            q, value = value[0], value[1:-1]
            if q == '"':
                value = value.replace('\\"', '"').replace("\\\\", "\\")
        env[key.strip()] = value
    return env


if name == "systemd-run":
    args = sys.argv[1:]
    cut = args.index("--")
    opts, cmd = args[:cut], args[cut + 1:]
    env = {"PATH": os.environ["PATH"], "FAKE_SERVICE_SIDE": "1"}
    cwd = unset = None
    for opt in opts:
        prop = opt.split("=", 1)[1] if opt.startswith("--property=") else None
        if prop and prop.startswith("EnvironmentFile="):
            env.update(env_file(prop.split("=", 1)[1]))
        elif prop and prop.startswith("WorkingDirectory="):
            cwd = prop.split("=", 1)[1]
        elif prop and prop.startswith("UnsetEnvironment="):
            unset = prop.split("=", 1)[1]
    for key in unset.split() if unset else []:
        env.pop(key, None)
    missing = {"--pipe", "--wait", "--collect"} - set(opts)
    log(missing_flags=sorted(missing))
    if missing or any("$" in w for w in cmd):
        sys.exit("fake systemd-run: without --pipe/--wait/--collect, or a $ after --")
    if cwd:
        os.chdir(cwd)
    os.execve(cmd[0], cmd, env)

if name == "runuser":
    cmd = sys.argv[sys.argv.index("--") + 1:]
    log()
    os.execv(cmd[0], cmd)


def state():
    try:
        return json.load(open(STATE))
    except (OSError, ValueError):
        return {}


def password(args):
    if "--password" in args:
        return args[args.index("--password") + 1], "argv"
    first, second = sys.stdin.readline().rstrip("\n"), sys.stdin.readline().rstrip("\n")
    if first != second:
        sys.exit("Passwords did not match")
    return first, "stdin"


def airflow_option(section, key):
    """What Airflow reads: the environment variable, else airflow.cfg's option or its `_cmd`."""
    import configparser, shlex
    if f"AIRFLOW__{section.upper()}__{key.upper()}" in os.environ:
        return os.environ[f"AIRFLOW__{section.upper()}__{key.upper()}"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.environ.get("AIRFLOW_CONFIG", "/nonexistent"))
    if cfg.has_option(section, key):
        return cfg.get(section, key)
    if cfg.has_option(section, key + "_cmd"):
        return subprocess.run(shlex.split(cfg.get(section, key + "_cmd")), capture_output=True, text=True).stdout
    return ""


if kind.endswith("airflow/venv/bin/airflow") or name == "airflow":
    args = sys.argv[1:]
    url = airflow_option("database", "sql_alchemy_conn")
    if url.split("?")[0] != EXPECT["airflow_db_url"].split("?")[0]:
        log(error="no database URL")
        sys.exit("fake airflow: [database] sql_alchemy_conn is not the platform's")
    if args[:2] == ["users", "list"]:
        log()
        print("[" + ", ".join(json.dumps({"username": u}) for u in state()) + "]")
    elif args[:2] in (["users", "create"], ["users", "reset-password"]):
        pw, source = password(args)
        user = args[args.index("--username") + 1]
        users = state()
        users[user] = pw
        json.dump(users, open(STATE, "w"))
        log(password_from=source, got_password=pw == EXPECT["airflow_admin_password"])
        print("done")
    else:
        log()
    sys.exit(0)

# the migration check: python -c SCRIPT CACHE URL_FILE runuser ... check-migrations
if name == "python" and "airflow" in kind:
    url = open(sys.argv[4]).read()
    ok = url.split("?")[0] == EXPECT["airflow_db_url"].split("?")[0]
    log(got_db_url=ok)
    if not ok:
        sys.exit(1)
    check = subprocess.run(sys.argv[5:], capture_output=True, text=True)
    print(json.dumps({"pending": True, "cached": False, "detail": ["fake: pending"], "check_rc": check.returncode}))
    sys.exit(0)

if name == "python" and "mlflow" in kind:  # mlflow-schema.py ACTION, its URIs found as the real helper finds them
    for mod in ("sqlalchemy", "alembic", "alembic.config", "alembic.migration", "alembic.script"):
        sys.modules[mod] = types.ModuleType(mod)
    sys.modules["alembic"].command = types.ModuleType("alembic.command")
    sys.modules["alembic.config"].Config = sys.modules["alembic.migration"].MigrationContext = object
    sys.modules["alembic.script"].ScriptDirectory = object
    spec = importlib.util.spec_from_file_location("helper", sys.argv[1])
    helper = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(helper)
    except SystemExit:  # the helper before issue #15 looked for mlflow at import
        helper = None
    if hasattr(helper, "auth_uri"):
        tracking, auth = helper.tracking_uri(), helper.auth_uri()
    else:  # the helper before issue #15 took both from its environment
        tracking, auth = os.environ.get("MLFLOW_BACKEND_STORE_URI"), os.environ.get("MLFLOW_AUTH_DATABASE_URI")
    # (the role appends its verified-TLS arguments to the platform's URI)
    ok = all(str(uri).split("?")[0] == EXPECT["mlflow_uri"].split("?")[0] for uri in (tracking, auth))
    log(got_uris=ok)
    if not ok:
        sys.exit("fake mlflow helper: not the platform's URIs")
    print(json.dumps({"tracking": {"current": "a", "head": "b"}, "auth": {"current": "a", "head": "b"}}
                     if sys.argv[2] == "status" else {"after": "b"}))
    sys.exit(0)

if name == "rclone":  # the publish, on the controller: rclone --config FILE sync SRC publish:BUCKET ...
    import configparser
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else "/nonexistent")
    ok = cfg.get("publish", "secret_access_key", fallback="") == EXPECT["s3_secret"]
    log(got_s3_secret=ok)
    if not ok:
        sys.exit("fake rclone: no S3 secret key in its --config file")
    print("INFO  : x.py: Copied (new)", file=sys.stderr)
    sys.exit(0)

log(error="unexpected")
sys.exit("fake: unexpected " + " ".join(sys.argv))
'''

SECRETS = {
    "mlflow_db_password": "MlflowDbPw0123456789abcdefABCDEF",
    "airflow_db_password": "AirflowDbPw0123456789abcdefABCDE",
    "airflow_fernet_key": "FernetKey0123456789abcdefghijklmnopqrstuvwx=",
    "airflow_api_secret_key": "ApiSecretKey0123456789abcdefghijklmnopqrstuvw",
    "airflow_jwt_secret": "JwtSecret0123456789abcdefghijklmnopqrstuvwxyzAB",
    "airflow_admin_password": "AirflowAdminPw0123456789",
    "mlflow_admin_password": "MlflowAdminPw0123456789abcdefABC",
    "mlflow_flask_secret_key": "FlaskKey0123456789abcdefghijklmnopqrstuvwxyzABCD",
    "s3_access_key": "S3ACCESSKEY012345678",
    "s3_secret_key": "S3SecretKey0123456789abcdefghijklmnopqrst",
}


class _Login(http.server.BaseHTTPRequestHandler):
    """Airflow's POST /auth/token: 201 when the fake airflow CLI set that password."""

    state: Path

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        users = json.loads(self.state.read_text()) if self.state.exists() else {}
        ok = users.get(body.get("username")) == body.get("password")
        self.send_response(201 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"access_token": "t"}' if ok else b"{}")

    def log_message(self, *args):
        pass


def _fake_tree(tmp: Path) -> dict:
    log, state = tmp / "calls.jsonl", tmp / "users.json"
    mlflow_uri = f"mysql+pymysql://mlflow:{SECRETS['mlflow_db_password']}@db:3306/mlflow?charset=utf8mb4"
    airflow_url = f"mysql+mysqldb://airflow:{SECRETS['airflow_db_password']}@db:3306/airflow"
    expect = {
        "airflow_db_url": airflow_url,
        "mlflow_uri": mlflow_uri,
        "airflow_admin_password": SECRETS["airflow_admin_password"],
        "s3_secret": SECRETS["s3_secret_key"],
    }
    script = (
        FAKE.replace("__PYTHON__", sys.executable)
        .replace("__LOG__", repr(str(log)))
        .replace("__STATE__", repr(str(state)))
        .replace("__EXPECT__", repr(expect))
    )
    paths = {
        "bin": tmp / "bin",
        "mlflow_venv": tmp / "opt" / "mlflow" / "venv",
        "airflow_venv": tmp / "opt" / "airflow" / "venv",
        "rclone_venv": tmp / "opt" / "airflow" / "rclone",
    }
    for exe in (
        paths["bin"] / "systemd-run",
        paths["bin"] / "runuser",
        paths["mlflow_venv"] / "bin" / "python",
        paths["airflow_venv"] / "bin" / "python",
        paths["airflow_venv"] / "bin" / "airflow",
        paths["rclone_venv"] / "bin" / "rclone",
    ):
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(script)
        exe.chmod(0o755)
    (tmp / "opt" / "mlflow" / "mlflow-schema.py").write_bytes(
        (ROLES / "mlflow" / "files" / "mlflow-schema.py").read_bytes()
    )
    for d in ("etc/mlflow", "etc/airflow", "airflow-home", "dags-dir", "dags-src"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    (tmp / "dags-src" / "x.py").write_text("from airflow.sdk import dag  # a DAG\n")
    return {"log": log, "state": state, "mlflow_uri": mlflow_uri, "airflow_url": airflow_url, **paths}


def test_the_commands_get_their_secrets_from_files_and_stdin_only(tmp_path, monkeypatch):
    tree = _fake_tree(tmp_path)
    _Login.state = tree["state"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Login)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PATH", f"{tree['bin']}:{__import__('os').environ['PATH']}")
    role_vars = [str(ROLES / r / d / "main.yml") for r in ("mlflow", "airflow") for d in ("defaults", "vars")]
    extra = {
        # MLflow (schema.yml)
        "mlflow_backend_store_uri": tree["mlflow_uri"],
        "mlflow_auth_database_uri": tree["mlflow_uri"],
        "mlflow_admin_password": SECRETS["mlflow_admin_password"],
        "mlflow_flask_secret_key": SECRETS["mlflow_flask_secret_key"],
        "mlflow_artifacts_destination": str(tmp_path / "artifacts"),
        "mlflow_venv_dir": str(tree["mlflow_venv"]),
        "mlflow_config_dir": str(tmp_path / "etc" / "mlflow"),
        "mlflow_db_wait_timeout": 5,
        "mlflow_active": {"stdout": "inactive"},
        "mlflow_auth_trusted_proxies": [],
        "mlflow_host": "127.0.0.1",  # set by the platform
        "airflow_base_url": "",  # set by the platform
        "airflow_forwarded_allow_ips": [],  # set by the platform  # set by the platform (platform_defaults mlflow.yml)
        # Airflow (migrate.yml, admin.yml, publish.yml)
        "airflow_executor": "LocalExecutor",  # set by the platform
        "airflow_database_url": tree["airflow_url"],
        "airflow_fernet_key": SECRETS["airflow_fernet_key"],
        "airflow_api_secret_key": SECRETS["airflow_api_secret_key"],
        "airflow_jwt_secret": SECRETS["airflow_jwt_secret"],
        "airflow_admin_password": SECRETS["airflow_admin_password"],
        "airflow_venv": str(tree["airflow_venv"]),
        "airflow_home": str(tmp_path / "airflow-home"),
        "airflow_config_dir": str(tmp_path / "etc" / "airflow"),
        "airflow_pipelines_enabled": False,
        "airflow_services": [],  # nothing to stop before the migration
        "airflow_db_wait_timeout": 5,
        "airflow_api_host": "127.0.0.1",
        "airflow_api_port": server.server_address[1],
        "airflow_dag_sync_backend": "s3",
        "airflow_dag_sync_bucket": "dags",
        "airflow_dag_sync_s3_endpoint": "http://127.0.0.1:9",
        "airflow_dag_sync_s3_region": "r",
        "airflow_dag_sync_s3_access_key": SECRETS["s3_access_key"],
        "airflow_dag_sync_s3_secret_key": SECRETS["s3_secret_key"],
        "airflow_dag_sync_venv": str(tree["rclone_venv"]),
        "airflow_dag_sync_dir": str(tmp_path / "dags-dir"),
        "airflow_publish_src": str(tmp_path / "dags-src"),
        # publish.yml, on the controller with its read-write key pair
        "airflow_publish_rclone": str(tree["rclone_venv"] / "bin" / "rclone"),
        "airflow_publish_backend": "s3",
        "airflow_publish_s3_endpoint": "http://127.0.0.1:9",
        "airflow_publish_s3_region": "r",
        "airflow_publish_s3_access_key": SECRETS["s3_access_key"],
        "airflow_publish_s3_secret_key": SECRETS["s3_secret_key"],
        "airflow_mlflow_tracking_uri": "",
        "airflow_mlflow_username": "",
        "airflow_mlflow_password": "",
        "airflow_db_ca_certificate": "",
    }
    # The files the roles write before these tasks, from the roles' own templates.
    files = [
        ("mlflow", "mlflow.env.j2", "etc/mlflow/mlflow.env"),
        ("mlflow", "basic_auth.ini.j2", "etc/mlflow/basic_auth.ini"),
        ("airflow", "airflow.env.j2", "etc/airflow/airflow.env"),
        ("airflow", "airflow.cfg.j2", "etc/airflow/airflow.cfg"),
        ("airflow", "dag-sync.env.j2", "etc/airflow/dag-sync.env"),
    ]
    wrong = json.dumps({"admin": "not-the-password"})
    play = {
        "name": "The secret-bearing commands of the roles",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": role_vars,
        "tasks": [
            *[
                {
                    "name": f"Write {dest}",
                    "ansible.builtin.template": {
                        "src": str(ROLES / role / "templates" / src),
                        "dest": str(tmp_path / dest),
                        "mode": "0600",
                    },
                }
                for role, src, dest in files
            ],
            # The credential files airflow.cfg's `_cmd` options read (the role's main.yml writes them).
            {
                "name": "Airflow's credentials directory",
                "ansible.builtin.file": {"path": "{{ airflow_credentials_dir }}", "state": "directory", "mode": "0700"},
            },
            {
                "name": "Airflow's credential files",
                "ansible.builtin.copy": {
                    "content": "{{ item.value }}",
                    "dest": "{{ airflow_credentials_dir }}/{{ item.key }}",
                    "mode": "0600",
                },
                "loop": "{{ airflow_credentials | dict2items }}",
                "no_log": True,
            },
            {"name": "MLflow schema", "ansible.builtin.include_role": {"name": "mlflow", "tasks_from": "schema"}},
            {"name": "Airflow migration", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "migrate"}},
            {
                "name": "Airflow admin (created)",
                "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "admin"},
            },
            {
                "name": "A changed password",
                "ansible.builtin.copy": {"content": wrong, "dest": str(tree["state"]), "mode": "0600"},
            },
            {
                "name": "Airflow admin (reset)",
                "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "admin"},
            },
            {"name": "Publish the DAGs", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "publish"}},
        ],
    }
    try:
        run = run_local_play(tmp_path, [play], extra, timeout=300)
    finally:
        server.shutdown()
    calls = [json.loads(line) for line in tree["log"].read_text().splitlines()] if tree["log"].exists() else []
    problems = []
    for call in calls:
        for name, value in SECRETS.items():
            if any(value in word for word in call["argv"]):
                problems.append(f"{name} in the argv of {call['kind']}: {' '.join(call['argv'][:6])} ...")
            if not call["service_side"] and any(value in v for v in call["env"].values()):
                keys = [k for k, v in call["env"].items() if value in v]
                problems.append(f"{name} in the environment Ansible gave {call['kind']} ({', '.join(keys)})")
    assert not problems, "\n".join(sorted(set(problems)))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # ... and the commands did get them: from the environment file (systemd) or on stdin.
    got = {c["kind"]: c for c in calls if c["service_side"]}
    assert got.get("mlflow/venv/bin/python", {}).get("got_uris"), "the MLflow helper did not find its URIs"
    assert got.get("airflow/venv/bin/python", {}).get("got_db_url"), "the migration check had no database URL"
    publish = [c for c in calls if c["name"] == "rclone"]
    assert publish and all(c.get("got_s3_secret") for c in publish), "the publish had no S3 key in its --config file"
    users = [c for c in calls if c["argv"][1:3] in (["users", "create"], ["users", "reset-password"])]
    assert [c["argv"][2] for c in users] == ["create", "reset-password"], [c["argv"][1:3] for c in users]
    assert all(c["password_from"] == "stdin" and c["got_password"] for c in users), users
    assert any(c["argv"][1:3] == ["db", "migrate"] for c in calls), "no airflow db migrate ran"
    # Ansible starts systemd-run on the hosts, and on the controller the publish's rclone, which
    # reads its remote (the read-write key) from its --config file.
    assert all(
        c["name"] == "systemd-run" or (c["name"] == "rclone" and "--config" in c["argv"])
        for c in calls
        if not c["service_side"] and c["name"] != "runuser"
    ), [c["kind"] for c in calls if not c["service_side"]]
    # The services' environment file holds no secret any more (the tasks inherit it).
    env_file = (tmp_path / "etc" / "airflow" / "airflow.env").read_text()
    assert not [n for n, v in SECRETS.items() if v in env_file], env_file


# ---------------------------------------------------------------- molecule/site's sampler


def test_the_site_sampler_catches_short_commands(tmp_path):
    """molecule/site's sampler (tests/cmdline_sampler.py) sees a 0.2 s process and one that execs late,
    and findings() names the secret without printing it."""
    import shlex
    import subprocess
    import time

    sampler_mod = load_plugin(ROOT / "molecule" / "site" / "tests" / "cmdline_sampler.py")
    marker, late = "Sampler-Marker-0123456789", "Exec-Late-Marker-9876543210"
    nap = "import time; time.sleep(0.2)"
    sampler = sampler_mod.Sampler([], interval=0.02).start()
    try:
        time.sleep(0.3)
        subprocess.run([sys.executable, "-c", nap, marker], check=False)
        # a process whose command line changes after 0.5 s (exec): the marker is built at run time
        late_cmd = f"sleep 0.5; exec {shlex.quote(sys.executable)} -c '{nap}' \"Exec-Late-$(echo Marker)-9876543210\""
        subprocess.run(["sh", "-c", late_cmd], check=False)
        time.sleep(0.3)
    finally:
        result = sampler.stop()
    assert result["passes"] > 10
    (tmp_path / "marker").write_text(marker + "\n")
    (tmp_path / "late").write_text(late + "\n")
    secrets = sampler_mod.secret_values(tmp_path, ["marker", "late", "absent"], lambda s: s)
    found = sampler_mod.findings(result, secrets)
    assert any(f.startswith("controller: marker: ") for f in found), found
    assert any(f.startswith("controller: late: ") and "time.sleep" in f for f in found), found
    assert not any(marker in f or late in f for f in found), found

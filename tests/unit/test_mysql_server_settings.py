"""mysql_server's settings drift (library/mysql_server_settings.py), without a server.

The option-file parsing (on the role's real template), the comparison by type,
the plan (RESET PERSIST, SET GLOBAL, restart) and the module's SQL against a
fake server that behaves as MySQL 9.7 did on the lab's db image: persisted
variables, read-only ones, values the server shows in its own form.
"""

from __future__ import annotations

import re
from decimal import Decimal

import jinja2
import pytest
from conftest import ROLES, load_plugin

settings = load_plugin(ROLES / "mysql_server" / "library" / "mysql_server_settings.py")
TEMPLATE = ROLES / "mysql_server" / "templates" / "oci-mlops.cnf.j2"


def _rendered(**extra) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        ansible_managed="managed",
        mysql_server_bind_address="10.0.0.5",
        mysql_server_port=3306,
        mysql_server_tls_dir="/etc/mysql/tls",
        mysql_server_tls_versions=["TLSv1.2", "TLSv1.3"],
        mysql_server_require_secure_transport=True,
        mysql_server_max_connections=300,
        mysql_server_innodb_buffer_pool_size="256M",
        mysql_server_admin_host="127.0.0.1",
        mysql_server_admin_port=33062,
        mysql_server_extra_settings=extra,
    )


# The [mysqld] settings of the rendered template, by variable name.
MANAGED = {
    "bind_address": "10.0.0.5",
    "port": "3306",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "explicit_defaults_for_timestamp": "1",
    "log_bin_trust_function_creators": "1",
    "ssl_ca": "/etc/mysql/tls/ca.pem",
    "ssl_cert": "/etc/mysql/tls/server-cert.pem",
    "ssl_key": "/etc/mysql/tls/server-key.pem",
    "tls_version": "TLSv1.2,TLSv1.3",
    "require_secure_transport": "ON",
    "max_connections": "300",
    "innodb_buffer_pool_size": "256M",
    "admin_address": "127.0.0.1",
    "admin_port": "33062",
    "create_admin_listener_thread": "ON",
}

# Effective values in the form MySQL 9.7 shows them (booleans ON/OFF, sizes in bytes), the rounding helpers too.
EFFECTIVE = {
    "bind_address": "10.0.0.5",
    "port": "3306",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "explicit_defaults_for_timestamp": "ON",
    "log_bin_trust_function_creators": "ON",
    "ssl_ca": "/etc/mysql/tls/ca.pem",
    "ssl_cert": "/etc/mysql/tls/server-cert.pem",
    "ssl_key": "/etc/mysql/tls/server-key.pem",
    "tls_version": "TLSv1.2,TLSv1.3",
    "require_secure_transport": "ON",
    "max_connections": "300",
    "innodb_buffer_pool_size": "268435456",
    "admin_address": "127.0.0.1",
    "admin_port": "33062",
    "create_admin_listener_thread": "ON",
    "innodb_buffer_pool_chunk_size": "134217728",
    "innodb_buffer_pool_instances": "1",
    "wait_timeout": "28800",
    "long_query_time": "10.000000",
    "sql_mode": "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
    "transaction_isolation": "REPEATABLE-READ",
}
# performance_schema.variables_metadata.DATA_TYPE on MySQL 9.7.
TYPES = {
    "bind_address": "String",
    "port": "Integer",
    "character_set_server": "String",
    "collation_server": "String",
    "explicit_defaults_for_timestamp": "Boolean",
    "log_bin_trust_function_creators": "Boolean",
    "ssl_ca": "String",
    "ssl_cert": "String",
    "ssl_key": "String",
    "tls_version": "String",
    "require_secure_transport": "Boolean",
    "max_connections": "Integer",
    "innodb_buffer_pool_size": "Integer",
    "admin_address": "String",
    "admin_port": "Integer",
    "create_admin_listener_thread": "Boolean",
    "innodb_buffer_pool_chunk_size": "Integer",
    "innodb_buffer_pool_instances": "Integer",
    "wait_timeout": "Integer",
    "long_query_time": "Numeric",
    "sql_mode": "Set",
    "transaction_isolation": "Enumeration",
}
READ_ONLY = {"bind_address", "port", "admin_address", "admin_port", "create_admin_listener_thread"}


# ------------------------------------------------------------- option file


def test_the_templates_mysqld_section_is_read_by_variable_name():
    managed = settings.option_settings(_rendered())
    assert managed == MANAGED
    assert "default_character_set" not in managed  # [client] is not the server's


def test_option_file_syntax():
    text = """
# comment
[client]
port = 1
[mysqld]
; another comment
loose-wait-timeout = 600
skip-name-resolve
sql_mode = "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION"
log_error = /var/log/mysql/error.log   # trailing comment
max_connections = 10
max-connections = 20
!includedir /etc/mysql/conf.d/
[mysqldump]
quick
"""
    assert settings.option_settings(text) == {
        "wait_timeout": "600",
        "skip_name_resolve": "ON",
        "sql_mode": "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
        "log_error": "/var/log/mysql/error.log",
        "max_connections": "20",
    }


# --------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("managed", "effective", "data_type"),
    [
        ("1", "ON", "Boolean"),
        ("true", "ON", "Boolean"),
        ("OFF", "OFF", "Boolean"),
        ("0", "OFF", None),  # a server without variables_metadata
        ("256M", "268435456", "Integer"),
        ("1G", "1073741824", None),
        ("10", "10.000000", "Numeric"),
        ("no_engine_substitution,strict_trans_tables", "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", "Set"),
        ("repeatable-read", "REPEATABLE-READ", "Enumeration"),
        ("TLSv1.2,TLSv1.3", "TLSv1.2,TLSv1.3", "String"),
    ],
)
def test_same_value_in_the_servers_form(managed, effective, data_type):
    assert settings.canonical(effective, data_type) == settings.expected_effective("x", managed, data_type, {})


@pytest.mark.parametrize(
    ("managed", "effective", "data_type"),
    [
        ("1", "OFF", "Boolean"),
        ("300", "123", "Integer"),
        ("256M", "536870912", "Integer"),
        ("TLSv1.2,TLSv1.3", "TLSv1.3", "String"),
        ("/etc/mysql/tls/ca.pem", "/etc/mysql/tls/CA.pem", "String"),  # paths are case-sensitive
        ("STRICT_TRANS_TABLES", "STRICT_TRANS_TABLES,ANSI_QUOTES", "Set"),
    ],
)
def test_different_values(managed, effective, data_type):
    assert settings.canonical(effective, data_type) != settings.expected_effective("x", managed, data_type, {})


def test_the_buffer_pool_is_compared_as_the_server_rounds_it():
    # 300M is shown as 384M: a multiple of chunk size (128M) x instances (1), measured on MySQL 9.7
    assert (
        settings.plan(
            {"innodb_buffer_pool_size": "300M"}, {}, dict(EFFECTIVE, innodb_buffer_pool_size="402653184"), TYPES, {}
        )
        == []
    )
    # with 2 instances the unit is 256M: 300M -> 512M
    effective = dict(EFFECTIVE, innodb_buffer_pool_size="536870912", innodb_buffer_pool_instances="2")
    assert settings.plan({"innodb_buffer_pool_size": "300M"}, {}, effective, TYPES, {}) == []
    (step,) = settings.plan({"innodb_buffer_pool_size": "1G"}, {}, effective, TYPES, {})
    assert step["set"] and settings.typed_value("1G", "Integer") == 1073741824


def test_values_for_set_global_have_the_servers_types():
    assert settings.typed_value("300", "Integer") == 300  # '300' is ERROR 1232 for an integer
    assert settings.typed_value("256M", "Integer") == 268435456
    assert settings.typed_value("1", "Boolean") == "ON"
    assert settings.typed_value("2.5", "Numeric") == Decimal("2.5")
    assert settings.typed_value("TLSv1.2,TLSv1.3", "String") == "TLSv1.2,TLSv1.3"


# --------------------------------------------------------------------- plan


def _plan(persisted=None, effective=None, sources=None, managed=None):
    return settings.plan(
        MANAGED if managed is None else managed,
        persisted or {},
        dict(EFFECTIVE, **(effective or {})),
        TYPES,
        sources or {},
    )


def test_a_converged_server_has_nothing_to_do():
    assert _plan() == []


def test_a_persisted_managed_variable_is_reset_and_set_back():
    (step,) = _plan({"max_connections": "123"}, {"max_connections": "123"}, {"max_connections": ("DYNAMIC", "")})
    assert (step["reset"], step["set"], step["restart"]) == (True, True, False)
    assert (step["managed"], step["effective"], step["persisted"]) == ("300", "123", "123")


def test_a_persisted_managed_variable_with_the_files_value_is_only_reset():
    (step,) = _plan({"max_connections": "300"}, sources={"max_connections": ("PERSISTED", "")})
    assert (step["reset"], step["set"], step["restart"]) == (True, False, False)


def test_a_managed_variable_changed_at_runtime_is_set_back():
    (step,) = _plan(effective={"require_secure_transport": "OFF"})
    assert (step["reset"], step["set"], step["restart"]) == (False, True, False)


def test_an_applied_persisted_variable_the_file_does_not_set_needs_a_restart():
    (step,) = _plan({"wait_timeout": "600"}, {"wait_timeout": "600"}, {"wait_timeout": ("DYNAMIC", "")})
    assert (step["reset"], step["set"], step["restart"]) == (True, False, True)
    (step,) = _plan({"wait_timeout": "600"}, {"wait_timeout": "600"}, {"wait_timeout": ("PERSISTED", "")})
    assert step["restart"]


def test_a_persist_only_value_never_applied_needs_only_the_reset():
    (step,) = _plan({"wait_timeout": "600"}, sources={"wait_timeout": ("COMPILED", "")})
    assert (step["reset"], step["set"], step["restart"]) == (True, False, False)


def test_an_option_that_is_no_variable_is_not_compared():
    managed = dict(MANAGED, plugin_load_add="auth_socket.so")
    assert _plan(managed=managed) == []


def test_the_diff_names_each_variable_and_both_values():
    steps = _plan(
        {"max_connections": "123", "wait_timeout": "600"},
        {"max_connections": "123", "wait_timeout": "600", "tls_version": "TLSv1.3"},
        {
            "max_connections": ("PERSISTED", ""),
            "wait_timeout": ("DYNAMIC", ""),
            "tls_version": ("GLOBAL", "/etc/mysql/conf.d/zz.cnf"),
        },
    )
    diff = settings.diff(steps, "oci-mlops.cnf")
    assert diff["before"].splitlines() == [
        "mysqld-auto.cnf: max_connections = 123 (persisted)",
        "max_connections = 123 (persisted, read from mysqld-auto.cnf at start)",
        "tls_version = TLSv1.3 (from /etc/mysql/conf.d/zz.cnf)",
        "mysqld-auto.cnf: wait_timeout = 600 (persisted)",
        "wait_timeout = 600 (set at runtime)",
    ]
    assert diff["after"].splitlines() == [
        "max_connections = 300 (oci-mlops.cnf)",
        "tls_version = TLSv1.2,TLSv1.3 (oci-mlops.cnf)",
        "wait_timeout: not persisted (mysqld restarts for the option files' or compiled value)",
    ]


# ----------------------------------------------------- the module's SQL


class ServerError(Exception):
    """pymysql's errors: args[0] is MySQL's error number."""


class FakeServer:
    """A DB-API cursor over a MySQL 9.7-like server's variables."""

    def __init__(self, persisted=None, effective=None, metadata=True, rewrites=None):
        self.persisted = dict(persisted or {})
        self.effective = dict(EFFECTIVE, **(effective or {}))
        self.sources = {name: ("GLOBAL", "/etc/mysql/mysql.conf.d/oci-mlops.cnf") for name in MANAGED}
        self.sources.update({name: ("DYNAMIC", "") for name in (effective or {})})
        self.metadata = metadata
        self.rewrites = rewrites or {}  # name -> what the server shows whatever is set
        self.writes: list[str] = []
        self.rows: list = []

    def execute(self, query, args=None):
        names = [str(a) for a in args or []]
        if "FROM performance_schema.persisted_variables" in query:
            self.rows = sorted(self.persisted.items())
        elif "FROM performance_schema.global_variables" in query:
            self.rows = [(n, self.effective[n]) for n in names if n in self.effective]
        elif "FROM performance_schema.variables_info" in query:
            self.rows = [(n, *self.sources.get(n, ("COMPILED", ""))) for n in names if n in self.effective]
        elif "FROM performance_schema.variables_metadata" in query:
            if not self.metadata:
                raise ServerError(1146, "Table 'performance_schema.variables_metadata' doesn't exist")
            self.rows = [(n, TYPES[n]) for n in names if n in TYPES]
        elif query.startswith("RESET PERSIST IF EXISTS "):
            self.writes.append(query)
            self.persisted.pop(query.split()[-1], None)
        elif query.startswith("SET GLOBAL "):
            match = re.match(r"SET GLOBAL (\S+) = %s", query)
            assert match, query
            name = match.group(1)
            (value,) = args
            if name in READ_ONLY:
                raise ServerError(1238, f"Variable '{name}' is a read only variable")
            assert not (TYPES[name] in ("Integer", "Numeric") and isinstance(value, str)), "ERROR 1232"
            self.writes.append(f"SET GLOBAL {name} = {value!r}")
            self.effective[name] = self.rewrites.get(name, str(value))
            self.sources[name] = ("DYNAMIC", "")
        elif query.startswith("ALTER INSTANCE RELOAD TLS"):
            self.writes.append(query)
        else:
            raise AssertionError(f"unexpected query {query}")

    def fetchall(self):
        return self.rows


def test_check_mode_reports_and_changes_nothing():
    server = FakeServer({"max_connections": "123"}, {"max_connections": "123"})
    result = settings.converge(server, _rendered(), check_mode=True)
    assert result["changed"] and not result["restart"] and result["queries"] == []
    assert server.writes == [] and server.persisted == {"max_connections": "123"}
    assert "max_connections = 300 (oci-mlops.cnf)" in result["diff"]["after"]


def test_a_converge_resets_sets_back_and_the_next_one_has_nothing_to_do():
    server = FakeServer(
        {"max_connections": "123", "tls_version": "TLSv1.3"},
        {"max_connections": "123", "tls_version": "TLSv1.3", "require_secure_transport": "OFF"},
    )
    result = settings.converge(server, _rendered(), check_mode=False)
    assert result["changed"] and not result["restart"]
    assert server.writes == [
        "RESET PERSIST IF EXISTS max_connections",
        "RESET PERSIST IF EXISTS tls_version",
        "SET GLOBAL max_connections = 300",
        "SET GLOBAL require_secure_transport = 'ON'",
        "SET GLOBAL tls_version = 'TLSv1.2,TLSv1.3'",
        "ALTER INSTANCE RELOAD TLS",  # a TLS setting takes effect only then
    ]
    assert server.persisted == {}
    again = settings.converge(server, _rendered(), check_mode=False)
    assert not again["changed"] and again["queries"] == [] and "diff" not in again


def test_an_unmanaged_persisted_variable_is_reset_and_asks_for_a_restart():
    server = FakeServer({"wait_timeout": "600"}, {"wait_timeout": "600"})
    result = settings.converge(server, _rendered(), check_mode=False)
    assert result["restart"] and server.writes == ["RESET PERSIST IF EXISTS wait_timeout"]


def test_a_persisted_read_only_variable_applied_at_start_asks_for_a_restart():
    server = FakeServer({"port": "3307"}, {"port": "3307"})
    server.sources["port"] = ("PERSISTED", "")
    assert settings.converge(server, _rendered(), check_mode=True)["changed"]
    result = settings.converge(server, _rendered(), check_mode=False)
    assert result["restart"] and server.writes == ["RESET PERSIST IF EXISTS port"]


def test_a_read_only_variable_overridden_by_another_option_file_fails_naming_it():
    server = FakeServer(effective={"admin_port": "33063"})
    server.sources["admin_port"] = ("GLOBAL", "/etc/mysql/conf.d/zz.cnf")
    with pytest.raises(settings.SettingsError, match=r"admin_port is read-only .*/etc/mysql/conf.d/zz.cnf"):
        settings.converge(server, _rendered(), check_mode=False)


def test_a_value_the_server_rewrites_fails_instead_of_drifting_on_every_run():
    server = FakeServer(effective={"long_query_time": "10.000000"}, rewrites={"long_query_time": "2.000000"})
    with pytest.raises(settings.SettingsError, match="long_query_time = 2.5 the server shows 2.000000"):
        settings.converge(server, _rendered(long_query_time="2.5"), check_mode=False)


def test_extra_settings_are_compared_in_the_servers_form():
    server = FakeServer()
    config = _rendered(long_query_time=10, sql_mode="no_engine_substitution,only_full_group_by,strict_trans_tables")
    assert not settings.converge(server, config, check_mode=False)["changed"]


def test_a_server_without_variables_metadata_still_compares():
    server = FakeServer({"max_connections": "123"}, {"max_connections": "123"}, metadata=False)
    assert not settings.converge(FakeServer(metadata=False), _rendered(), check_mode=True)["changed"]
    settings.converge(server, _rendered(), check_mode=False)
    assert "SET GLOBAL max_connections = 300" in server.writes


def test_a_persisted_name_that_is_no_identifier_is_not_put_into_sql():
    server = FakeServer({"x; DROP DATABASE mysql": "1"})
    with pytest.raises(settings.SettingsError, match="not a variable name"):
        settings.converge(server, _rendered(), check_mode=False)
    assert server.writes == []

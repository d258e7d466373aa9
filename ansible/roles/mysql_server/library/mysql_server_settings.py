#!/usr/bin/python
"""mysql_server_settings: the server's effective settings against the managed option file; SET PERSIST is drift."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.community.mysql.plugins.module_utils.mysql import (
    mysql_common_argument_spec,
    mysql_connect,
    mysql_driver,
    mysql_driver_fail_msg,
)

DOCUMENTATION = r"""
module: mysql_server_settings
short_description: Compare MySQL's effective settings with the managed option file, and repair them
description:
  - Reads the [mysqld] settings of O(config) (the rendered oci-mlops.cnf), the server's effective values
    (C(performance_schema.global_variables)), their types (C(variables_metadata)), where each came from
    (C(variables_info)) and every persisted variable (C(persisted_variables), the datadir's mysqld-auto.cnf).
  - Drift is any persisted variable (C(SET PERSIST) and C(SET PERSIST_ONLY) override the option files at every
    start), and any managed setting whose effective value differs from the file (e.g. C(SET GLOBAL) by hand).
  - Check mode reports it (changed, and a diff naming each variable with both values) and changes nothing.
  - Otherwise each persisted variable is removed (C(RESET PERSIST)) and each differing managed setting is set back
    (C(SET GLOBAL) to the file's value; C(ALTER INSTANCE RELOAD TLS) after a TLS setting), and the values are read
    again. Two cases need a restart of mysqld, which the module returns as RV(restart) for the role to do: a
    persisted variable the file does not manage whose value was applied (only a start returns it to the option
    files or the compiled default; the module cannot know that value), and a read-only managed variable whose
    persisted value was applied at the last start.
  - Values compare by the variable's type: booleans (ON/1/TRUE/YES), integers with K/M/G/T/P/E suffixes, decimals,
    sets (order and case ignored), enumerations (case ignored), strings exactly.
    C(innodb_buffer_pool_size) is compared rounded up as the server rounds it (chunk size times instances).
options:
  config:
    description: Text of the managed option file; its [mysqld] section is compared.
    type: str
    required: true
extends_documentation_fragment:
  - community.mysql.mysql
"""

RETURN = r"""
drift:
  description:
    - One entry per drifted variable - name, managed (the file's value), effective, persisted (mysqld-auto.cnf),
      source and path (variables_info), and what the repair does - reset (RESET PERSIST), set (SET GLOBAL), restart.
  type: list
  returned: always
restart:
  description: Whether mysqld must restart to drop a value only a start reads again.
  type: bool
  returned: always
queries:
  description: The statements run (none in check mode).
  type: list
  returned: always
"""

ON_WORDS = {"ON", "TRUE", "YES", "1"}
OFF_WORDS = {"OFF", "FALSE", "NO", "0"}
SIZE = re.compile(r"^(-?\d+)([KMGTPE])?$", re.IGNORECASE)
SIZE_POWERS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
NAME = re.compile(r"^[a-z0-9_.]+$")
# Effective value rounded up by the server: variable -> the variables whose product is the unit.
ROUNDED = {"innodb_buffer_pool_size": ("innodb_buffer_pool_chunk_size", "innodb_buffer_pool_instances")}
# Where a value set at runtime did not come from the option files or the compiled default.
RUNTIME_SOURCES = {"DYNAMIC", "PERSISTED"}
ER_READ_ONLY = 1238  # ER_INCORRECT_GLOBAL_LOCAL_VAR: "Variable 'x' is a read only variable"
ER_NO_SUCH_TABLE = 1146


class SettingsError(Exception):
    """Drift the module cannot repair (the message says why)."""


def variable_name(option: str) -> str:
    """The system variable an option sets: dashes and underscores are the same, `loose-` only silences errors."""
    name = option.strip().lower().replace("-", "_")
    return name[len("loose_") :] if name.startswith("loose_") else name


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split("#", 1)[0].strip()  # an unquoted value ends at a comment


def option_settings(text: str, section: str = "mysqld") -> dict[str, str]:
    """The settings of one section of an option file's text, by variable name (a later line wins).

    A bare option (`skip-name-resolve`) is ON, as for mysqld.
    """
    settings: dict[str, str] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;!":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip().lower()
            continue
        if current != section:
            continue
        option, sep, value = line.partition("=")
        settings[variable_name(option)] = _unquote(value) if sep else "ON"
    return settings


def _number(value: str) -> Decimal | None:
    match = SIZE.match(value)
    if match:
        return Decimal(int(match.group(1)) * 1024 ** SIZE_POWERS.get((match.group(2) or "").upper(), 0))
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def canonical(value: str, data_type: str | None = None):
    """A comparable form of a value of a variable of this type (variables_metadata.DATA_TYPE; None: unknown)."""
    text = str(value).strip()
    upper = text.upper()
    if data_type in ("Boolean", None) and upper in ON_WORDS | OFF_WORDS:
        return ("num", Decimal(1 if upper in ON_WORDS else 0))
    if data_type in ("Integer", "Numeric", "Boolean", None):
        number = _number(text)
        if number is not None:
            return ("num", number)
    if data_type == "Set":
        return ("set", frozenset(item.strip().upper() for item in text.split(",") if item.strip()))
    if data_type == "Enumeration":
        return ("str", upper)
    return ("str", text)


def _rounded_up(number: Decimal, unit: Decimal) -> Decimal:
    """number rounded up to a multiple of unit (integers; Decimal's // truncates towards zero)."""
    if unit <= 0 or number != number.to_integral_value():
        return number
    whole, step = int(number), int(unit)
    return Decimal(-(-whole // step) * step)


def expected_effective(name: str, managed: str, data_type: str | None, effective: dict[str, str]):
    """The canonical value the server shows for a managed value (after its own rounding)."""
    wanted = canonical(managed, data_type)
    if name in ROUNDED and wanted[0] == "num":
        factors = [canonical(effective.get(f, ""), "Integer") for f in ROUNDED[name]]
        if all(kind == "num" for kind, _ in factors):
            unit = Decimal(1)
            for _, factor in factors:
                unit *= factor
            wanted = ("num", _rounded_up(wanted[1], unit))
    return wanted


def typed_value(managed: str, data_type: str | None):
    """The value for SET GLOBAL: integers and decimals unquoted (MySQL refuses '300' for an integer), else a string."""
    kind, value = canonical(managed, data_type)
    if data_type == "Boolean":
        return "ON" if value else "OFF"
    if kind == "num" and data_type in ("Integer", "Numeric", None):
        return int(value) if value == value.to_integral_value() else value
    return managed


def plan(
    managed: dict[str, str],
    persisted: dict[str, str],
    effective: dict[str, str],
    types: dict[str, str],
    sources: dict[str, tuple[str, str]],
) -> list[dict]:
    """What drifted and how to repair it, one entry per variable, by name.

    managed: the option file's settings; persisted: persisted_variables; effective: global_variables;
    types: variables_metadata.DATA_TYPE; sources: variables_info (VARIABLE_SOURCE, VARIABLE_PATH).
    A managed option that is no system variable (the server shows no value) is not compared.
    """
    steps = []
    for name in sorted(set(managed) | set(persisted)):
        value = effective.get(name)
        wanted = managed.get(name) if value is not None else None
        data_type = types.get(name)
        differs = (
            value is not None
            and wanted is not None
            and canonical(value, data_type) != expected_effective(name, wanted, data_type, effective)
        )
        if name not in persisted and not differs:
            continue
        source, path = sources.get(name, ("", ""))
        steps.append(
            {
                "name": name,
                "managed": wanted,
                "effective": value,
                "persisted": persisted.get(name),
                "source": source,
                "path": path,
                "reset": name in persisted,
                "set": differs,
                # Only a start returns an unmanaged variable to the option files or its default.
                "restart": wanted is None and name in persisted and source in RUNTIME_SOURCES,
            }
        )
    return steps


def _origin(step: dict) -> str:
    if step["source"] == "PERSISTED":
        return "persisted, read from mysqld-auto.cnf at start"
    if step["source"] == "DYNAMIC":
        return "set at runtime"
    if step["path"]:
        return f"from {step['path']}"
    return (step["source"] or "unknown origin").lower()


def diff(steps: list[dict], config_name: str) -> dict:
    """Before/after text naming each variable and both values."""
    before, after = [], []
    for step in steps:
        name = step["name"]
        if step["persisted"] is not None:
            before.append(f"mysqld-auto.cnf: {name} = {step['persisted']} (persisted)")
        if step["effective"] is not None:
            before.append(f"{name} = {step['effective']} ({_origin(step)})")
        if step["managed"] is not None:
            after.append(f"{name} = {step['managed']} ({config_name})")
        else:
            after.append(
                f"{name}: not persisted ("
                + ("mysqld restarts for " if step["restart"] else "")
                + "the option files' or compiled value)"
            )
    return {
        "before_header": "MySQL server (effective, persisted)",
        "after_header": f"{config_name} (nothing persisted)",
        "before": "\n".join(before) + "\n",
        "after": "\n".join(after) + "\n",
    }


def _in_list(names) -> str:
    return ", ".join(["%s"] * len(names))


def read_server(cursor, managed_names) -> tuple[dict, dict, dict, dict]:
    """persisted, effective, types, sources of the managed and persisted variables (and their helpers)."""
    cursor.execute("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM performance_schema.persisted_variables")
    persisted = {str(n).lower(): str(v) for n, v in cursor.fetchall()}
    names = sorted(set(managed_names) | set(persisted) | {h for hs in ROUNDED.values() for h in hs})
    cursor.execute(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM performance_schema.global_variables"
        f" WHERE VARIABLE_NAME IN ({_in_list(names)})",
        names,
    )
    effective = {str(n).lower(): "" if v is None else str(v) for n, v in cursor.fetchall()}
    cursor.execute(
        "SELECT VARIABLE_NAME, VARIABLE_SOURCE, VARIABLE_PATH FROM performance_schema.variables_info"
        f" WHERE VARIABLE_NAME IN ({_in_list(names)})",
        names,
    )
    sources = {str(n).lower(): (str(s or ""), str(p or "")) for n, s, p in cursor.fetchall()}
    try:
        cursor.execute(
            "SELECT VARIABLE_NAME, DATA_TYPE FROM performance_schema.variables_metadata"
            f" WHERE VARIABLE_NAME IN ({_in_list(names)})",
            names,
        )
        types = {str(n).lower(): str(t) for n, t in cursor.fetchall()}
    except Exception as exc:  # absent on older servers (MySQL 8.0): compare without the types
        if not (getattr(exc, "args", None) and exc.args[0] == ER_NO_SUCH_TABLE):
            raise
        types = {}
    return persisted, effective, types, sources


def converge(cursor, config: str, check_mode: bool, config_name: str = "oci-mlops.cnf") -> dict:
    """Compare, and unless check_mode repair. Raises SettingsError for drift it cannot repair."""
    managed = option_settings(config)
    for name in managed:
        if not NAME.match(name):
            raise SettingsError(f"{config_name}: {name!r} is not a variable name")
    persisted, effective, types, sources = read_server(cursor, managed)
    steps = plan(managed, persisted, effective, types, sources)
    queries: list[str] = []
    result = {"changed": bool(steps), "drift": steps, "restart": any(s["restart"] for s in steps), "queries": queries}
    if steps:
        result["diff"] = diff(steps, config_name)
    if check_mode or not steps:
        return result

    def run(query, args=None):
        cursor.execute(query, args)
        queries.append(query if args is None else f"{query} -- {args!r}")

    for step in steps:
        if not NAME.match(step["name"]):
            raise SettingsError(f"persisted variable {step['name']!r}: not a variable name, remove it by hand")
        if step["reset"]:
            run(f"RESET PERSIST IF EXISTS {step['name']}")
    set_names = []
    for step in (s for s in steps if s["set"]):
        try:
            run(f"SET GLOBAL {step['name']} = %s", (typed_value(step["managed"], types.get(step["name"])),))
            set_names.append(step["name"])
        except Exception as exc:  # the driver's error class; its first argument is MySQL's error number
            if not (getattr(exc, "args", None) and exc.args[0] == ER_READ_ONLY):
                raise
            if not step["reset"]:
                raise SettingsError(
                    f"{step['name']} is read-only and is {step['effective']} ({_origin(step)}), while {config_name}"
                    f" says {step['managed']}: another option file or the command line overrides it; remove it there"
                ) from exc
            step["restart"] = True  # its persisted value was applied at the last start
    result["restart"] = any(s["restart"] for s in steps)
    if set_names:
        _, again, _, _ = read_server(cursor, set_names)
        for step in (s for s in steps if s["name"] in set_names):
            name = step["name"]
            if canonical(again.get(name, ""), types.get(name)) != expected_effective(
                name, step["managed"], types.get(name), again
            ):
                raise SettingsError(
                    f"after SET GLOBAL {name} = {step['managed']} the server shows {again.get(name)}: write it in"
                    f" {config_name} as the server reports it (SHOW GLOBAL VARIABLES), or it drifts on every run"
                )
    for prefix, statement in (
        ("admin_", "ALTER INSTANCE RELOAD TLS FOR CHANNEL mysql_admin"),
        ("", "ALTER INSTANCE RELOAD TLS"),
    ):
        if any(n.startswith(prefix + "ssl_") or n.startswith(prefix + "tls_") for n in set_names):
            run(statement)
    return result


def main():
    argument_spec = mysql_common_argument_spec()
    argument_spec.update(config=dict(type="str", required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if mysql_driver is None:
        module.fail_json(msg=mysql_driver_fail_msg)
    p = module.params
    try:
        cursor, connection = mysql_connect(
            module,
            p["login_user"],
            p["login_password"],
            p["config_file"],
            p["client_cert"],
            p["client_key"],
            p["ca_cert"],
            connect_timeout=p["connect_timeout"],
            check_hostname=p["check_hostname"],
            autocommit=True,
        )
    except Exception as exc:
        module.fail_json(msg=f"unable to connect to MySQL: {exc}")
    try:
        result = converge(cursor, p["config"], module.check_mode)
    except SettingsError as exc:
        module.fail_json(msg=str(exc))
    finally:
        connection.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

"""Shared by the molecule tests: run mysql_tls_probe.py on a service host as
the service (its own virtualenv, user and environment file, through a
transient systemd unit: the secrets stay in the file, off any command line),
and read, on the db host, how every connection of some users is made."""

import shlex
from pathlib import Path

PROBE = (Path(__file__).with_name("mysql_tls_probe.py")).read_text(encoding="utf-8")


def probe(host, mode: str, user: str, env_file: str, python: str, workdir: str = "/") -> dict:
    """{('SESSION', engine): ssl_version, ('REFUSED', engine, case): 'yes'|'no'} from the probe's own lines."""
    cmd = (
        "systemd-run --quiet --pipe --wait --collect "
        f"-p User={user} -p EnvironmentFile={env_file} -p WorkingDirectory={workdir} "
        f"{python} - {mode} <<'OCI_MLOPS_PROBE'\n{PROBE}\nOCI_MLOPS_PROBE\n"
    )
    run = host.run(cmd)
    assert run.rc == 0, run.stderr[-3000:]
    found: dict[tuple[str, ...], str] = {}
    for line in run.stdout.splitlines():
        words = line.split()
        if words[:1] == ["SESSION"] and len(words) in (2, 3):
            found[("SESSION", words[1])] = words[2] if len(words) == 3 else ""
        elif words[:1] == ["REFUSED"] and len(words) == 4:
            found[("REFUSED", words[1], words[2])] = words[3]
    return found


def connection_types(db, users) -> list[tuple[str, str]]:
    """(user, CONNECTION_TYPE) of every client connection of USERS now open on the
    db host's MySQL (performance_schema.threads: TCP/IP, SSL/TLS, Socket...)."""
    names = ",".join(f"'{u}'" for u in users)
    query = (
        "SELECT PROCESSLIST_USER, IFNULL(CONNECTION_TYPE, '-') FROM performance_schema.threads "
        f"WHERE TYPE = 'FOREGROUND' AND PROCESSLIST_USER IN ({names})"
    )
    out = db.check_output(f"mysql -NBe {shlex.quote(query)}")
    return [tuple(line.split("\t")) for line in out.splitlines() if line.strip()]

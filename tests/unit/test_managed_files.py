"""platform_defaults/library/managed_files.py: a role's files in one execution, run for real on this machine
through ansible-playbook (content, modes, directories, exclusive patterns, check mode, diff, secrets)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from pathlib import Path

from conftest import ROLES, load_plugin, run_local_play

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def _play(files: list[dict], exclusive: list[str] | None = None, out: Path | None = None) -> list[dict]:
    """A play that runs managed_files once (and, given OUT, writes its result there as JSON)."""
    tasks: list[dict] = [
        {"name": "Converge", "managed_files": {"files": files, "exclusive": exclusive or []}, "register": "r"}
    ]
    if out is not None:
        tasks.append(
            {
                "name": "Dump",
                "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out), "mode": "0600"},
                "check_mode": False,
                "diff": False,
            }
        )
    return [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "platform_defaults"}], "tasks": tasks}]


def _converge(tmp_path: Path, files: list[dict], exclusive: list[str] | None = None, *args: str) -> dict:
    """Run managed_files once; return its registered result."""
    out = tmp_path / "result.json"
    run = run_local_play(tmp_path, _play(files, exclusive, out), args=args)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    result["_stdout"] = run.stdout
    return result


def _entry(path: Path, content: str, mode: str = "0644", **kw) -> dict:
    return {"path": str(path), "content": content, "owner": USER, "group": GROUP, "mode": mode, **kw}


def test_writes_then_reports_nothing_on_the_second_run(tmp_path):
    d = tmp_path / "conf.d"
    files = [
        {"path": str(d), "state": "directory", "owner": USER, "group": GROUP, "mode": "2750"},
        _entry(d / "a.conf", "a = 1\n"),
        _entry(d / "b.env", "B=2\n", "0640"),
    ]
    first = _converge(tmp_path, files)
    assert first["changed"] is True
    assert first["changed_paths"] == [str(d), str(d / "a.conf"), str(d / "b.env")]
    assert stat.S_IMODE(d.stat().st_mode) == 0o2750
    assert (d / "a.conf").read_text() == "a = 1\n"
    assert stat.S_IMODE((d / "b.env").stat().st_mode) == 0o640
    assert sorted(p.name for p in d.iterdir()) == ["a.conf", "b.env"], "a temporary file was left behind"

    second = _converge(tmp_path, files)
    assert second["changed"] is False and second["changed_paths"] == []


def test_check_mode_reports_changes_with_a_diff_and_changes_nothing(tmp_path):
    f = tmp_path / "x.conf"
    f.write_text("old\n")
    f.chmod(0o644)
    missing = tmp_path / "new.conf"
    result = _converge(tmp_path, [_entry(f, "new\n"), _entry(missing, "n\n")], None, "--check", "--diff")
    assert result["changed"] is True
    assert result["changed_paths"] == [str(f), str(missing)]
    assert f.read_text() == "old\n" and not missing.exists()
    assert {"before_header": str(f), "after_header": str(f), "before": "old\n", "after": "new\n"} in result["diff"]
    assert "+new" in result["_stdout"] and "-old" in result["_stdout"]


def test_a_mode_or_owner_drift_is_repaired_without_rewriting(tmp_path):
    f = tmp_path / "x.conf"
    files = [_entry(f, "x\n", "0640")]
    _converge(tmp_path, files)
    f.chmod(0o666)
    inode = f.stat().st_ino
    check = _converge(tmp_path, files, None, "--check", "--diff")
    assert check["changed_paths"] == [str(f)] and stat.S_IMODE(f.stat().st_mode) == 0o666
    assert "mode: 0666" in check["diff"][0]["before"] and "mode: 0640" in check["diff"][0]["after"]
    fixed = _converge(tmp_path, files)
    assert fixed["changed_paths"] == [str(f)]
    assert stat.S_IMODE(f.stat().st_mode) == 0o640 and f.stat().st_ino == inode


def test_exclusive_patterns_remove_what_is_no_longer_listed(tmp_path):
    keep, old = tmp_path / "oci-mlops-keep.crt", tmp_path / "oci-mlops-old.crt"
    other = tmp_path / "someone-else.crt"
    for p in (old, other):
        p.write_text("x\n")
    pattern = str(tmp_path / "oci-mlops-*.crt")
    check = _converge(tmp_path, [_entry(keep, "k\n")], [pattern], "--check")
    assert check["changed_paths"] == [str(keep), str(old)] and old.exists()
    result = _converge(tmp_path, [_entry(keep, "k\n")], [pattern])
    assert result["changed_paths"] == [str(keep), str(old)]
    assert keep.exists() and not old.exists() and other.exists()
    assert _converge(tmp_path, [_entry(keep, "k\n")], [pattern])["changed"] is False


def test_a_secret_never_appears_in_the_result_or_the_output(tmp_path):
    f = tmp_path / "db.url"
    f.write_text("mysql://u:old-s3cret-value@db/x\n")
    secret = "mysql://u:new-s3cret-value@db/x\n"
    result = _converge(tmp_path, [_entry(f, secret, "0440", secret=True)], None, "--diff", "-vvv")
    assert f.read_text() == secret and stat.S_IMODE(f.stat().st_mode) == 0o440
    everything = json.dumps(result)
    assert "new-s3cret-value" not in everything and "old-s3cret-value" not in everything


def test_bad_input_fails_naming_the_path_and_changes_nothing(tmp_path):
    f = tmp_path / "x.conf"
    play = _play([_entry(tmp_path / "ok.conf", "ok\n"), _entry(f, "x\n", mode="rw-r--r--")])
    run = run_local_play(tmp_path, play)
    assert run.returncode != 0
    assert f"{f}: mode must be octal like" in run.stdout
    assert not (tmp_path / "ok.conf").exists(), "an entry before the bad one was written"


def test_the_hosts_journal_gets_the_paths_never_a_content():
    """AnsibleModule logs every argument's value to the host's journal unless the task is no_log;
    this module logs the paths it was given instead."""
    mod = load_plugin(ROLES / "platform_defaults" / "library" / "managed_files.py")
    logged: list[str] = []

    class Fake:
        params = {"files": [{"path": "/etc/x.env", "content": "PASSWORD=s3cret-in-journal"}], "exclusive": []}

        def log(self, msg: str) -> None:
            logged.append(msg)

    mod._Module._log_invocation(Fake())
    assert logged == ["Invoked with paths=['/etc/x.env'] exclusive=[]"]


def test_an_account_a_new_host_does_not_have_yet(tmp_path):
    """Check mode on a new host: the service's group is created by an earlier task of a real run, so the
    entry is a change to report; a real run without the group fails naming it."""
    f = tmp_path / "svc.env"
    entry = {"path": str(f), "content": "A=1\n", "group": "oci-mlops-no-such-group", "mode": "0640"}
    check = _converge(tmp_path, [entry], None, "--check", "--diff")
    assert check["changed_paths"] == [str(f)] and not f.exists()
    play = _play([entry])
    run = run_local_play(tmp_path, play)
    assert run.returncode != 0 and "no group 'oci-mlops-no-such-group' on this host" in run.stdout
    assert not f.exists()


def test_a_relative_exclusive_pattern_fails_before_any_write(tmp_path):
    f = tmp_path / "x.conf"
    run = run_local_play(tmp_path, _play([_entry(f, "x\n")], ["oci-mlops-*.crt"]))
    assert run.returncode != 0
    assert "exclusive pattern 'oci-mlops-*.crt' is not absolute" in run.stdout
    assert not f.exists(), "an entry was written before the bad pattern was refused"

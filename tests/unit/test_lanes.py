"""scripts/lanes: `make test`'s scheduler, run with stand-ins for `make` and `molecule`.

The stand-ins append "start JOB <time>" and "end JOB <time>" to a journal and
sleep a little, so the order, the overlap and the dependency on make:images
are read from what really ran.
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STUB = """#!/usr/bin/env bash
# $0 is make or molecule; the job is make's target or molecule's -s argument.
kind=$(basename "$0")
if [[ $kind == make ]]; then job=make:${!#}; else job=${!#}; fi
echo "start $job $(date +%s.%N)" >>"$LANES_JOURNAL"
# LANES_BURN: JOB=SECONDS of CPU this job spends (a busy loop) before it ends.
for burn in ${LANES_BURN:-}; do
  if [[ ${burn%=*} == "$job" ]]; then timeout "${burn#*=}" bash -c 'while :; do :; done'; fi
done
# LANES_HOOK: JOB=COMMAND this job runs (e.g. changes its containers' cgroup files).
if [[ -n ${LANES_HOOK:-} && ${LANES_HOOK%%=*} == "$job" ]]; then bash -c "${LANES_HOOK#*=}"; fi
sleep "${LANES_SLEEP:-0.3}"
if [[ " ${LANES_FAIL:-} " == *" $job "* ]]; then status=1; else status=0; fi
echo "end $job $(date +%s.%N)" >>"$LANES_JOURNAL"
exit $status
"""

# docker ps as the lanes' CPU sampler calls it: the containers in LANES_DOCKER_PS.
DOCKER_STUB = """#!/usr/bin/env bash
printf '%b' "${LANES_DOCKER_PS:-}"
"""


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    for name in ("lanes", "timed"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("make", "molecule"):
        path = stubs / name
        path.write_text(STUB)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (stubs / "docker").write_text(DOCKER_STUB)
    (stubs / "docker").chmod(0o755)
    return tmp_path


def _run(
    tree: Path, jobs: int, *names: str, fail: str = "", **env_extra: str
) -> tuple[subprocess.CompletedProcess, list]:
    journal = tree / "journal"
    env = dict(os.environ)
    env.update(
        PATH=f"{tree / 'bin'}:{env['PATH']}",
        LANES_JOURNAL=str(journal),
        LANES_FAIL=fail,
        LANES_CGROUP_ROOT=str(tree / "cgroup"),
        **env_extra,
    )
    result = subprocess.run(
        [str(tree / "scripts" / "lanes"), str(jobs), *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    events = [line.split() for line in journal.read_text().splitlines()] if journal.exists() else []
    return result, [(kind, job, float(t)) for kind, job, t in events]


def _times(events: list) -> dict[str, tuple[float, float]]:
    start = {job: t for kind, job, t in events if kind == "start"}
    end = {job: t for kind, job, t in events if kind == "end"}
    return {job: (start[job], end[job]) for job in start}


def _max_overlap(events: list) -> int:
    running = peak = 0
    for kind, _, _ in sorted(events, key=lambda e: (e[2], e[0] == "start")):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


def test_scenarios_wait_for_the_images_while_other_stages_run(tree: Path):
    result, events = _run(tree, 2, "make:lint", "make:unit", "edge", "site", "make:images")
    assert result.returncode == 0, result.stdout + result.stderr
    times = _times(events)
    assert set(times) == {"make:images", "make:lint", "make:unit", "site", "edge"}
    images_end = times["make:images"][1]
    assert times["site"][0] >= images_end and times["edge"][0] >= images_end, times
    # ORDER: images first, then site as soon as they exist; lint overlaps the image build.
    assert times["make:lint"][0] < images_end, times
    assert times["site"][0] < times["edge"][0], times
    assert _max_overlap(events) == 2
    assert "lanes: 5 job(s) passed" in result.stdout
    assert re.search(r"^lanes: \d+ s with 2 lane\(s\) on \d+ CPU\(s\), CPU busy \d+%$", result.stdout, re.M), (
        result.stdout
    )


def test_a_failed_image_build_fails_the_scenarios_without_running_them(tree: Path):
    result, events = _run(tree, 2, "make:images", "make:lint", "site", "edge", fail="make:images")
    assert result.returncode == 1
    ran = {job for kind, job, _ in events if kind == "start"}
    assert ran == {"make:images", "make:lint"}, ran
    assert "lanes: 3 of 4 job(s) failed: make:images site edge" in result.stdout, result.stdout
    assert "scenario site not run" in (tree / "artifacts" / "molecule" / "site.log").read_text()


def test_every_job_runs_after_a_failure_and_the_failures_are_named(tree: Path):
    result, events = _run(tree, 1, "make:lint", "make:unit", "edge", fail="make:lint")
    assert result.returncode == 1
    assert [job for kind, job, _ in events if kind == "start"] == ["make:lint", "make:unit", "edge"]
    assert _max_overlap(events) == 1
    assert "lanes: 1 of 3 job(s) failed: make:lint" in result.stdout
    # A scenario is timed as its stage; a make target times itself (scripts/timed in the Makefile).
    assert (tree / "artifacts" / "timings.txt").read_text().split()[:1] == ["molecule-edge"]


def test_without_the_image_job_scenarios_start_at_once(tree: Path):
    result, events = _run(tree, 2, "edge", "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _max_overlap(events) == 2, events


def test_one_lane_takes_the_jobs_in_order(tree: Path):
    result, events = _run(tree, 1, "edge", "make:unit", "site", "make:lint", "make:images")
    assert result.returncode == 0, result.stdout + result.stderr
    started = [job for kind, job, _ in events if kind == "start"]
    assert started == ["make:images", "site", "make:lint", "make:unit", "edge"], started


def test_a_bad_lane_count_is_refused(tree: Path):
    result, events = _run(tree, 0, "site")
    assert result.returncode == 2 and "JOBS must be a positive integer" in result.stderr
    assert events == []


def test_each_job_reports_its_own_cpu_and_its_containers(tree: Path):
    """The CPU a job's processes used (a 2 s busy loop in unit's stand-in) and
    the CPU of its scenario's containers, read from their cgroups (cgroup v1
    for one, v2 for the other; a container of another scenario is not counted)."""
    ids = {"mol-edge-a": "a" * 64, "mol-edge-b": "b" * 64, "mol-site-db": "c" * 64}
    (tree / "molecule" / "edge").mkdir(parents=True)
    (tree / "molecule" / "edge" / "molecule.yml").write_text(
        "platforms:\n  - name: mol-edge-a\n    image: x\n  - name: mol-edge-b\n    image: x\n"
    )
    v1 = tree / "cgroup" / "cpuacct" / "docker"
    for name in ("mol-edge-a", "mol-site-db"):
        (v1 / ids[name]).mkdir(parents=True)
        (v1 / ids[name] / "cpuacct.usage").write_text("7500000000\n" if name == "mol-edge-a" else "90000000000\n")
    v2 = tree / "cgroup" / "system.slice" / f"docker-{ids['mol-edge-b']}.scope"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 3000000\nuser_usec 2000000\n")
    result, _ = _run(
        tree,
        2,
        "make:unit",
        "edge",
        LANES_BURN="make:unit=2",
        LANES_DOCKER_PS="".join(f"{i} {n}\\n" for n, i in ids.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unit = re.search(r"^---- make:unit: passed, CPU: controller (\d+) s, containers 0 s", result.stdout, re.M)
    assert unit and 1 <= int(unit[1]) <= 3, result.stdout
    assert "---- edge: passed, CPU: controller 0 s, containers 10 s" in result.stdout, result.stdout
    summary = result.stdout.split("lanes: CPU per job")[1].splitlines()[1:3]
    assert summary[0].split()[:2] == ["edge", "10"], summary
    assert summary[1].split()[0] == "make:unit", summary


def test_a_restarted_containers_cpu_before_the_restart_still_counts(tree: Path):
    """`docker restart` starts the container's cgroup counter again at 0: the
    sampler adds what it had seen before (5 s) to what comes after (1.5 s)."""
    container = "d" * 64
    (tree / "molecule" / "edge").mkdir(parents=True)
    (tree / "molecule" / "edge" / "molecule.yml").write_text("platforms:\n  - name: mol-edge-a\n    image: x\n")
    usage = tree / "cgroup" / "cpuacct" / "docker" / container / "cpuacct.usage"
    usage.parent.mkdir(parents=True)
    usage.write_text("5000000000\n")
    result, _ = _run(
        tree,
        1,
        "edge",
        LANES_CPU_INTERVAL="0.1",
        LANES_DOCKER_PS=f"{container} mol-edge-a\\n",
        LANES_HOOK=f"edge=sleep 0.5; echo 1500000000 > {usage}; sleep 0.5",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "---- edge: passed, CPU: controller 0 s, containers 6 s" in result.stdout, result.stdout

"""Sample every process's command line on every host and on the controller (issue #15, point 1).

A secret on a command line is readable by every user of the machine (`ps`,
/proc/<pid>/cmdline); the lab's connection, `docker exec`, also carries the
command Ansible runs and the environment it gives it in its own argv on the
controller. This sampler records every distinct command line it sees:

- on the controller: every process's cmdline (the controller shares the
  Docker host's kernel, so this includes the containers' processes), and the
  environ of its `docker` processes (the `docker exec` Ansible starts);
- on each host: every process's cmdline, from a scanner started in the host
  with `docker exec -i HOST python3 -c <this file> scan`, streaming each new
  command line back as a JSON line (it stops when the stream closes).

A process is read again during its first two seconds (a fork shows its
parent's cmdline until it execs) and every process once a second.

    python3 cmdline_sampler.py run --out FILE --stop-file FILE --hosts h1,h2
        samples until STOP-FILE exists (or --max-seconds), then writes
        {"controller": [...], "hosts": {host: [...]}, "passes": n, "seconds": s}
        to FILE (0600: it holds whatever leaked). molecule/site's converge.yml
        runs it around each converge; tests/test_1c_command_line_secrets.py
        checks the files against the scenario's secrets.

The library side (Sampler, secret_values, findings) is used by that test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

YOUNG_SECONDS = 2.0
FULL_SCAN_SECONDS = 1.0


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _is_docker(cmdline: str) -> bool:
    return os.path.basename(cmdline.split(" ", 1)[0]) == "docker"


def scan(emit, stopped, interval: float, environ_of_docker: bool) -> int:
    """Call emit(kind, text) once per distinct cmdline (and docker environ) until stopped(); return the passes."""
    seen: set[tuple[str, str]] = set()
    first_seen: dict[str, float] = {}
    last_full = 0.0
    passes = 0
    while not stopped():
        now = time.monotonic()
        full = now - last_full >= FULL_SCAN_SECONDS
        if full:
            last_full = now
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        for pid in pids:
            born = first_seen.setdefault(pid, now)
            if not full and now - born > YOUNG_SECONDS:
                continue
            cmdline = _read(f"/proc/{pid}/cmdline")
            if not cmdline:
                continue
            entries = [("cmdline", cmdline)]
            if environ_of_docker and _is_docker(cmdline):
                entries.append(("environ", " ".join(cmdline.split(" ")[:3]) + " | " + _read(f"/proc/{pid}/environ")))
            for entry in entries:
                if entry not in seen:
                    seen.add(entry)
                    emit(*entry)
        if full:
            alive = set(pids)
            for pid in [p for p in first_seen if p not in alive]:
                del first_seen[pid]
        passes += 1
        time.sleep(interval)
    return passes


def _host_scan(interval: float, max_seconds: float) -> None:
    """In a host: stream each new cmdline as a JSON line; stop when the reader is gone."""
    deadline = time.monotonic() + max_seconds
    beat = [time.monotonic()]

    def emit(kind: str, text: str) -> None:
        sys.stdout.write(json.dumps([kind, text]) + "\n")
        sys.stdout.flush()

    def stopped() -> bool:
        now = time.monotonic()
        if now - beat[0] >= 1.0:  # a write fails once the controller closed the stream
            beat[0] = now
            emit("beat", "")
        return now > deadline

    try:
        scan(emit, stopped, interval, environ_of_docker=False)
    except (BrokenPipeError, OSError):
        pass


class Sampler:
    """Controller and hosts, in threads: start(), then stop() returns what was seen."""

    def __init__(self, hosts: list[str], interval: float = 0.05, max_seconds: float = 4 * 3600):
        self.hosts = hosts
        self.interval = interval
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.controller: set[str] = set()
        self.by_host: dict[str, set[str]] = {h: set() for h in hosts}
        self.host_lines: dict[str, int] = dict.fromkeys(hosts, 0)
        self.passes = 0
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, subprocess.Popen] = {}
        self._started = 0.0

    def _controller(self) -> None:
        def emit(kind: str, text: str) -> None:
            with self._lock:
                self.controller.add(f"{kind}: {text}")

        deadline = time.monotonic() + self.max_seconds
        self.passes = scan(
            emit, lambda: self._stop.is_set() or time.monotonic() > deadline, self.interval, environ_of_docker=True
        )

    def _host(self, host: str) -> None:
        source = Path(__file__).read_text(encoding="utf-8")
        while not self._stop.is_set():
            proc = subprocess.Popen(
                ["docker", "exec", "-i", host, "python3", "-u", "-c", source, "scan"]
                + ["--interval", str(self.interval), "--max-seconds", str(self.max_seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._procs[host] = proc
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    kind, text = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self.host_lines[host] += 1
                    if kind != "beat":
                        self.by_host[host].add(f"{kind}: {text}")
            proc.wait()
            self._stop.wait(1.0)  # the host restarted or is not up yet: again

    def start(self) -> Sampler:
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._controller, daemon=True)]
        self._threads += [threading.Thread(target=self._host, args=(h,), daemon=True) for h in self.hosts]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                proc.terminate()
        # One deadline for all threads (not 15 s each: with five hosts that
        # outlasted the converge's wait for the record).
        deadline = time.monotonic() + 15
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        with self._lock:
            return {
                "controller": sorted(self.controller),
                "hosts": {h: sorted(v) for h, v in self.by_host.items()},
                "host_lines": dict(self.host_lines),
                "passes": self.passes,
                "seconds": round(time.monotonic() - self._started, 1),
            }


def secret_values(folder: Path, declared: list[str], fernet) -> dict[str, str]:
    """The scenario's generated secrets (files named as declared) and the values derived from them."""
    values = {}
    for name in declared:
        path = folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8").split()
            if text and len(text[0]) >= 12:
                values[name] = text[0]
    if "airflow_fernet_secret" in values:
        values["airflow_fernet_key (derived)"] = fernet(values["airflow_fernet_secret"])
    return values


def findings(result: dict, secrets: dict[str, str]) -> list[str]:
    """Where a secret was seen: 'where: secret name: the line, the secret replaced by its name'."""
    found = []
    places = [("controller", result["controller"])] + list(result["hosts"].items())
    for where, lines in places:
        for line in lines:
            for name, value in secrets.items():
                if value in line:
                    found.append(f"{where}: {name}: {line.replace(value, '<' + name + '>')[:300]}")
    return found


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["run", "scan"])
    parser.add_argument("--out")
    parser.add_argument("--stop-file")
    parser.add_argument("--hosts", default="")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--max-seconds", type=float, default=4 * 3600)
    args = parser.parse_args()
    if args.mode == "scan":
        _host_scan(args.interval, args.max_seconds)
        return 0
    if not args.out or not args.stop_file:
        parser.error("run needs --out and --stop-file")
    return _run(args)


def _log(message: str) -> None:
    """One timestamped line on stderr (converge.yml keeps it as cmdlines-N.log; test_1c shows it)."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} sampler[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def _run(args: argparse.Namespace) -> int:
    """Sample until STOP-FILE appears, SIGTERM arrives or --max-seconds pass; then write OUT."""
    out, stop_file = Path(args.out), Path(args.stop_file)
    hosts = [h for h in args.hosts.split(",") if h]
    stop_file.unlink(missing_ok=True)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    sampler = Sampler(hosts, args.interval, args.max_seconds).start()
    _log(f"sampling the controller and {len(hosts)} hosts into {out.name}")
    deadline = time.monotonic() + args.max_seconds
    while not stop_file.exists() and not terminated.is_set() and time.monotonic() < deadline:
        time.sleep(0.2)
    why = "stop file" if stop_file.exists() else "SIGTERM" if terminated.is_set() else "--max-seconds"
    _log(f"stopping ({why})")
    result = sampler.stop()
    result["stopped_by"] = why
    tmp = out.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(out)
    stop_file.unlink(missing_ok=True)
    _log(
        f"wrote {out.name}: {result['seconds']} s, {result['passes']} passes, "
        f"host lines {result['host_lines']}, {out.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main())

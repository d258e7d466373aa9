"""Benchmark POST /predict of this API against ``mlflow models serve`` for the same models.

Run from app/ (``make bench`` or ``.venv/bin/python -m bench.predict_bench``). It starts, all on
127.0.0.1 and inside a temporary directory: an MLflow server with basic auth; trains and registers
two models (alias ``champion``): ``iris`` (iris-classifier, a LogisticRegression on the four iris
features) and ``region`` (iris-with-region: iris plus a string column, one-hot encoded in a
Pipeline, see bench/models.py); then, for each number of uvicorn workers, ``oci-mlops-api`` (both
models, log level INFO: its access log on) and one ``mlflow models serve --env-manager local`` per
model, all with that many workers and as the read-only MLflow user.

A scenario is ``<model>/<form>/<rows>@w<workers>``: the body form sent to this API (``data``:
positional rows; ``columns``: ``columns`` + ``data``; ``records``; ``data-bad``: ``data`` with
one invalid row in every 10th request, which must be answered 4xx) and the equivalent one sent to
``mlflow models serve`` (``dataframe_split`` with columns, or ``dataframe_records``). Each
scenario sends a warm-up, then a fixed number of requests at a fixed concurrency (capped in time
too), split into rounds that alternate between the two servers so that background load on a
shared machine hits both alike. The server CPU per request is the user+system time of the
server's process group (read from /proc) divided by the requests; the ratio api / mlflow serve of
that figure is what to compare across machines. The load generator (a minimal HTTP/1.1 client on
asyncio streams, one keep-alive connection per concurrent request, see ``run_load``) runs on the
same machine and competes for the CPUs.

``--guard`` is the regression guard of the test-suite (tests/test_bench_guard.py): the iris model,
``data`` form, 1 and 1000 rows, about a minute in all; it exits 1 when a CPU ratio is above
``--max-ratio-1`` or ``--max-ratio-1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import models
from tests import lab

API = "oci-mlops-api"
MLFLOW_SERVE = "mlflow models serve"
FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
EXPERIMENT = "bench"
ROW_COUNTS = (1, 100, 1000, 10_000)
FORMS = ("data", "columns", "records")
BAD_FORM = "data-bad"
BAD_EVERY = 10  # every 10th request of a data-bad scenario carries an invalid row
BAD_VALUE = "not a number"
# the form's name in the table: (this API, mlflow models serve)
FORM_LABELS = {
    "data": ("data", "dataframe_split"),
    "columns": ("columns+data", "dataframe_split"),
    "records": ("records", "dataframe_records"),
    BAD_FORM: ("data, 10 % invalid", "dataframe_split, 10 % invalid"),
}
# requests per scenario and server by rows per request (all capped by --max-seconds as well)
DEFAULT_REQUESTS = {1: 1500, 100: 800, 1000: 300, 10_000: 40}
GUARD_REQUESTS = {1: 2000, 1000: 300}
LOAD_SAMPLE_SECONDS = 5.0


@dataclass(frozen=True)
class BenchModel:
    key: str  # the model part of a scenario name
    name: str  # registered model name
    columns: tuple[str, ...]

    def rows(self, count: int) -> list[list[Any]]:
        if self.key == "iris":
            from sklearn.datasets import load_iris

            data = load_iris().data.tolist()
        else:
            data = models.iris_with_region()[0].to_numpy().tolist()
        return [list(data[i % len(data)]) for i in range(count)]


MODELS = {
    m.key: m
    for m in (
        BenchModel("iris", "iris-classifier", FEATURES),
        BenchModel("region", "iris-with-region", (*FEATURES, models.CATEGORICAL_COLUMN)),
    )
}


@dataclass(frozen=True)
class Scenario:
    model: str  # a key of MODELS
    form: str  # one of FORMS or BAD_FORM
    rows: int
    workers: int

    @property
    def name(self) -> str:
        return f"{self.model}/{self.form}/{self.rows}@w{self.workers}"


def catalogue(workers: list[int]) -> list[Scenario]:
    """Every scenario the bench knows, at each of ``workers``."""
    bases = [(m, f, r) for m in MODELS for f in FORMS for r in ROW_COUNTS]
    bases += [("iris", BAD_FORM, 1), ("iris", BAD_FORM, 100)]
    return [Scenario(m, f, r, w) for w in workers for m, f, r in bases]


# The default run: everything with 1 worker, and a scaling row with 2.
DEFAULT_PATTERNS = ("*@w1", "iris/data/1@w2", "iris/data/1000@w2")
GUARD_SCENARIOS = (Scenario("iris", "data", 1, 1), Scenario("iris", "data", 1000, 1))


def select(patterns: list[str], workers: list[int]) -> list[Scenario]:
    """The scenarios whose name matches one of ``patterns`` (fnmatch; a pattern without ``@``
    matches at every worker count), in catalogue order."""
    full = [p if "@" in p else f"{p}@*" for p in patterns]
    chosen = [s for s in catalogue(workers) if any(fnmatch.fnmatchcase(s.name, p) for p in full)]
    if not chosen:
        known = ", ".join(s.name for s in catalogue(workers))
        raise SystemExit(f"no scenario matches {patterns}; known: {known}")
    return chosen


@dataclass(frozen=True)
class RequestSet:
    """The bodies one server gets in a scenario, cycled by request index; ``bad[i]``: body ``i``
    is invalid and must be refused with a 4xx."""

    bodies: tuple[bytes, ...]
    bad: tuple[bool, ...]

    def at(self, index: int) -> tuple[bytes, bool]:
        position = index % len(self.bodies)
        return self.bodies[position], self.bad[position]


def records(model: BenchModel, rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(model.columns, row, strict=True)) for row in rows]


def api_body(model: BenchModel, form: str, rows: list[list[Any]]) -> bytes:
    if form == "records":
        return json.dumps({"records": records(model, rows)}).encode()
    if form == "columns":
        return json.dumps({"columns": list(model.columns), "data": rows}).encode()
    return json.dumps({"data": rows}).encode()


def mlflow_body(model: BenchModel, form: str, rows: list[list[Any]]) -> bytes:
    if form == "records":
        return json.dumps({"dataframe_records": records(model, rows)}).encode()
    return json.dumps({"dataframe_split": {"columns": list(model.columns), "data": rows}}).encode()


def request_sets(scenario: Scenario) -> dict[str, RequestSet]:
    """Per server, the bodies of ``scenario``."""
    model = MODELS[scenario.model]
    rows = model.rows(scenario.rows)
    encoders = {API: api_body, MLFLOW_SERVE: mlflow_body}
    if scenario.form != BAD_FORM:
        return {
            server: RequestSet((encode(model, scenario.form, rows),), (False,))
            for server, encode in encoders.items()
        }
    bad_rows = [*rows[:-1], [BAD_VALUE, *rows[-1][1:]]]
    sets = {}
    for server, encode in encoders.items():
        good, bad = encode(model, "data", rows), encode(model, "data", bad_rows)
        sets[server] = RequestSet(
            (good,) * (BAD_EVERY - 1) + (bad,), (False,) * (BAD_EVERY - 1) + (True,)
        )
    return sets


@dataclass(frozen=True)
class Endpoint:
    server: str  # API or MLFLOW_SERVE
    url: str
    process_group: int  # of the server's processes
    headers: dict[str, str]


@dataclass(frozen=True)
class Result:
    server: str
    scenario: Scenario
    requests: int
    errors: int  # a wrong status: not 200 for a valid body, not 4xx for an invalid one
    refused: int  # invalid bodies answered 4xx, as expected
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    server_cpu_seconds: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds * 1000 / self.requests if self.requests else float("nan")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "scenario": self.scenario.name,
            "requests": self.requests,
            "errors": self.errors,
            "refused_4xx": self.refused,
            "req_per_s": round(self.throughput, 2),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "server_cpu_ms_per_request": round(self.cpu_ms_per_request, 4),
        }


def merge(parts: list[Result]) -> Result:
    return Result(
        server=parts[0].server,
        scenario=parts[0].scenario,
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        refused=sum(p.refused for p in parts),
        seconds=sum(p.seconds for p in parts),
        latencies_ms=[latency for p in parts for latency in p.latencies_ms],
        server_cpu_seconds=sum(p.server_cpu_seconds for p in parts),
    )


def group_cpu_seconds(process_group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == process_group:  # fields: state ppid pgrp ... utime(11) stime(12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load generator: POST a body, read the status and
    the whole response (Content-Length or chunked), reconnect when the server closes.

    Not httpx: its pool added its own tail at this API's request rate (measured 2026-12-03, iris,
    1 row, concurrency 8, 15 s each, quiet machine): this API p99 48.6 ms and max 1111 ms with
    httpx, 13.2 and 29 ms with this client (its access log, both clients: p99 3.4 ms in the server);
    ``mlflow models serve``, at a third of the rate, 114.9 / 262.7 ms with httpx, 101.9 / 261.1 ms
    with this client. Both servers get the same client."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the load generator speaks plain HTTP to host:port, not {url!r}")
        self.host, self.port = parts.hostname, parts.port
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.head = "\r\n".join(lines) + "\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        if chunked:
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
        elif length:
            await reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            await writer.wait_closed()


async def run_load(
    endpoint: Endpoint,
    scenario: Scenario,
    requests: RequestSet,
    total: int,
    concurrency: int,
    max_seconds: float,
) -> Result:
    latencies: list[float] = []
    errors = refused = issued = 0
    deadline = time.monotonic() + max_seconds
    connections = [_Connection(endpoint.url, endpoint.headers) for _ in range(concurrency)]

    async def worker(connection: _Connection) -> None:
        nonlocal errors, refused, issued
        while issued < total and time.monotonic() < deadline:
            body, bad = requests.at(issued)
            issued += 1
            started = time.perf_counter()
            status = await asyncio.wait_for(connection.post(body), 120.0)
            latencies.append((time.perf_counter() - started) * 1000)
            if bad and 400 <= status < 500:
                refused += 1
            elif bad or status != 200:
                errors += 1

    cpu_before = group_cpu_seconds(endpoint.process_group)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    seconds = time.perf_counter() - started
    cpu = group_cpu_seconds(endpoint.process_group) - cpu_before
    return Result(
        endpoint.server, scenario, len(latencies), errors, refused, seconds, latencies, cpu
    )


@dataclass(frozen=True)
class Settings:
    requests: dict[int, int]  # rows per request -> requests per server
    concurrency: int
    warmup: int
    rounds: int
    max_seconds: float  # per scenario, both servers and all rounds together


def measure(
    scenario: Scenario, endpoints: dict[str, Endpoint], settings: Settings
) -> dict[str, Result]:
    """Warm-up, then ``settings.rounds`` rounds alternating between the two servers."""
    sets = request_sets(scenario)
    total = settings.requests[scenario.rows]
    order = [API, MLFLOW_SERVE]
    warmup = max(2, min(settings.warmup, total // 10))
    for server in order:
        asyncio.run(
            run_load(endpoints[server], scenario, sets[server], warmup, settings.concurrency, 60)
        )
    per_round = max(1, total // settings.rounds)
    seconds = settings.max_seconds / (2 * settings.rounds)
    parts: dict[str, list[Result]] = {server: [] for server in order}
    for index in range(settings.rounds):
        for server in order if index % 2 == 0 else order[::-1]:
            parts[server].append(
                asyncio.run(
                    run_load(
                        endpoints[server],
                        scenario,
                        sets[server],
                        per_round,
                        settings.concurrency,
                        seconds,
                    )
                )
            )
    return {server: merge(results) for server, results in parts.items()}


def ratio(results: dict[str, Result]) -> float:
    return results[API].cpu_ms_per_request / results[MLFLOW_SERVE].cpu_ms_per_request


def machine_busy_seconds() -> float:
    """CPU time all the machine's CPUs spent busy so far (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class CpuWindow:
    """The machine's busy CPU time over a window, and the part of it the bench's own processes
    used: this process (the load generator) and the process groups of the servers."""

    def __init__(self, process_groups: set[int]) -> None:
        self.process_groups = process_groups
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        own = time.process_time() + sum(group_cpu_seconds(g) for g in self.process_groups)
        return machine_busy_seconds(), own, time.monotonic()

    def close(self, totals: dict[str, float]) -> None:
        """Add the window's figures to ``totals``."""
        end = self._read()
        for key, before, after in zip(
            ("machine_cpu_s", "bench_cpu_s", "window_s"), self._start, end, strict=True
        ):
            totals[key] = totals.get(key, 0.0) + after - before


class LoadSampler:
    """The 1-minute load average, sampled every LOAD_SAMPLE_SECONDS in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(LOAD_SAMPLE_SECONDS):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


class Phases:
    """Wall-clock time of the run's phases (a lap timer), for the report."""

    def __init__(self) -> None:
        self.started = self._last = time.monotonic()
        self.times: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        """The phase ``name`` ends now (it began at the previous lap)."""
        now = time.monotonic()
        self.times.append((name, now - self._last))
        self._last = now

    def report(self) -> str:
        total = time.monotonic() - self.started
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.times)
        return f"wall-clock: {total:.1f} s in all ({parts})"


@dataclass
class Lab:
    """The running MLflow server with the bench's models, and what the servers need."""

    server: lab.MlflowLab
    workdir: Path
    base_env: dict[str, str]
    api_key: str = field(default_factory=lambda: "bench-" + os.urandom(16).hex())

    def reader_env(self) -> dict[str, str]:
        return {**self.base_env, **self.server.env(reader=True)}


def register_models(mlflow_lab: lab.MlflowLab, keys: list[str]) -> None:
    """Train and register the models of ``keys`` (alias champion), readable by the reader."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiments = set()
    for key in keys:
        name = MODELS[key].name
        if key == "iris":
            model = lab.log_iris_model(EXPERIMENT, name, c=1.0)
        else:
            model = models.log_categorical_model(EXPERIMENT, name)
        client.set_registered_model_alias(name, "champion", model.version)
        mlflow_lab.grant_read("registered_model", name)
        experiments.add(model.experiment_id)
    for experiment_id in experiments:  # a second grant of the same permission is a 400
        mlflow_lab.grant_read("experiment", experiment_id)


@contextmanager
def running_servers(
    bench: Lab, workers: int, keys: list[str]
) -> Iterator[dict[str, dict[str, Endpoint]]]:
    """This API (all of ``keys``' models) and one ``mlflow models serve`` per model, each with
    ``workers`` uvicorn workers, started together: model key -> server -> endpoint."""
    names = [MODELS[k].name for k in keys]
    api_port = lab.free_port()
    api_env = {
        **bench.reader_env(),
        "OCI_MLOPS_API_KEYS": bench.api_key,
        "OCI_MLOPS_SERVED_MODELS": ",".join(names),
        "OCI_MLOPS_PRELOAD_MODELS": ",".join(f"{name}@champion" for name in names),
        # the default: the access log is on, as mlflow models serve's (uvicorn's) is
        "OCI_MLOPS_LOG_LEVEL": "INFO",
    }
    api_argv = [lab.venv_bin("oci-mlops-api"), "--port", str(api_port), "--workers", str(workers)]
    # name, argv, env, log, readiness URL
    launches: list[tuple[str, list[str], dict[str, str], Path, str]] = [
        (
            API,
            api_argv,
            api_env,
            bench.workdir / f"api-w{workers}.log",
            f"http://127.0.0.1:{api_port}/ready",
        )
    ]
    ports = {}
    for key in keys:
        ports[key] = port = lab.free_port()
        argv = [
            lab.venv_bin("mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{MODELS[key].name}@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        launches.append(
            (
                f"{MLFLOW_SERVE} {key}",
                argv,
                bench.reader_env(),
                bench.workdir / f"mlflow-serve-{key}-w{workers}.log",
                f"http://127.0.0.1:{port}/ping",
            )
        )
    with ExitStack() as stack:
        processes = {}
        for name, argv, env, log, _ in launches:
            process = lab.start_logged_process(argv, env, log)
            stack.callback(lab.stop_process, process)
            processes[name] = process
        for name, _, _, log, ready_url in launches:
            lab.wait_http_ok(ready_url, 180, processes[name], log)
        api_headers = {"Content-Type": "application/json", "X-API-Key": bench.api_key}
        mlflow_headers = {"Content-Type": "application/json"}
        yield {
            key: {
                API: Endpoint(
                    API,
                    f"http://127.0.0.1:{api_port}/predict/{MODELS[key].name}/champion",
                    processes[API].pid,  # started as a session leader: pgid == pid
                    api_headers,
                ),
                MLFLOW_SERVE: Endpoint(
                    MLFLOW_SERVE,
                    f"http://127.0.0.1:{ports[key]}/invocations",
                    processes[f"{MLFLOW_SERVE} {key}"].pid,
                    mlflow_headers,
                ),
            }
            for key in keys
        }


def check_same_predictions(key: str, endpoints: dict[str, Endpoint]) -> None:
    """Both servers give the same 1000 predictions for the model ``key``."""
    model = MODELS[key]
    rows = model.rows(1000)
    bodies = {API: api_body(model, "data", rows), MLFLOW_SERVE: mlflow_body(model, "data", rows)}
    answers = {}
    for server, endpoint in endpoints.items():
        response = httpx.post(
            endpoint.url, content=bodies[server], headers=endpoint.headers, timeout=60
        )
        response.raise_for_status()
        answers[server] = response.json()["predictions"]
    if answers[API] != answers[MLFLOW_SERVE]:
        raise SystemExit(f"{key}: the two servers disagree on the predictions; not benchmarking")


def markdown(results: list[dict[str, Result]]) -> str:
    lines = [
        "| server | model | form | rows/request | workers | requests | errors | req/s "
        "| p50 ms | p99 ms | server CPU ms/request | CPU ratio (api / mlflow serve) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair in results:
        for server, r in pair.items():
            s = r.scenario
            label = FORM_LABELS[s.form][0 if server == API else 1]
            errors = f"{r.errors} (+{r.refused} 4xx expected)" if s.form == BAD_FORM else r.errors
            shown_ratio = f"**{ratio(pair):.2f}**" if server == API else ""
            lines.append(
                f"| {server} | {MODELS[s.model].name} | {label} | {s.rows} | {s.workers} "
                f"| {r.requests} | {errors} | {r.throughput:.1f} | {r.percentile(50):.2f} "
                f"| {r.percentile(99):.2f} | {r.cpu_ms_per_request:.2f} | {shown_ratio} |"
            )
    return "\n".join(lines)


def run(
    scenarios: list[Scenario], settings: Settings, phases: Phases
) -> tuple[list[dict[str, Result]], dict[str, float]]:
    """Start the lab, measure ``scenarios`` (grouped by worker count); the results, and the
    machine's load: the 1-minute load average before, during (mean, max) and after the
    measurements, and its CPU time while measuring (see CpuWindow)."""
    base_env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # `mlflow models serve` runs `uvicorn` from PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    keys = [k for k in MODELS if any(s.model == k for s in scenarios)]
    results: list[dict[str, Result]] = []
    load: dict[str, float] = {"start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="oci-mlops-bench-") as tmp:
        workdir = Path(tmp)
        phases.lap("setup")
        with lab.running_mlflow(workdir / "mlflow") as mlflow_lab:
            phases.lap("MLflow server start")
            os.environ.update(mlflow_lab.env(reader=False))
            register_models(mlflow_lab, keys)
            phases.lap("training and registering")
            bench = Lab(mlflow_lab, workdir, base_env)
            load["before"] = os.getloadavg()[0]
            with LoadSampler() as sampler:
                for workers in sorted({s.workers for s in scenarios}):
                    group = [s for s in scenarios if s.workers == workers]
                    group_keys = [k for k in keys if any(s.model == k for s in group)]
                    with running_servers(bench, workers, group_keys) as endpoints:
                        for key in group_keys:
                            check_same_predictions(key, endpoints[key])
                        phases.lap(f"servers start and check (w{workers})")
                        own_groups = {mlflow_lab.server.process.pid}
                        own_groups.update(
                            e.process_group for pair in endpoints.values() for e in pair.values()
                        )
                        window = CpuWindow(own_groups)
                        for scenario in group:
                            pair = measure(scenario, endpoints[scenario.model], settings)
                            results.append(pair)
                            print(
                                f"done: {scenario.name}: CPU ratio {ratio(pair):.2f}",
                                file=sys.stderr,
                                flush=True,
                            )
                        window.close(load)
                        phases.lap(f"measuring (w{workers})")
            load["after"] = os.getloadavg()[0]
            load["mean"] = sampler.mean
            load["max"] = max(sampler.samples, default=float("nan"))
        phases.lap("stopping")
    return results, load


def describe(settings: Settings, load: dict[str, float], phases: Phases) -> str:
    available = load["window_s"] * (os.cpu_count() or 1)
    others = max(0.0, load["machine_cpu_s"] - load["bench_cpu_s"])
    return "\n".join(
        [
            f"command: {shlex.join(['python', '-m', 'bench.predict_bench', *sys.argv[1:]])}",
            f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.platform()}; client and servers on 127.0.0.1",
            f"per scenario and server: requests {settings.requests} (by rows/request), "
            f"concurrency {settings.concurrency}, warm-up up to {settings.warmup} requests, "
            f"{settings.rounds} alternating rounds, at most {settings.max_seconds:g} s per "
            "scenario (both servers)",
            f"1-minute load average: {load['start']:.2f} at start, {load['before']:.2f} before "
            f"measuring, {load['after']:.2f} after; during the measurements mean "
            f"{load['mean']:.2f}, max {load['max']:.2f} (sampled every "
            f"{LOAD_SAMPLE_SECONDS:g} s; the bench itself keeps about 2 processes busy)",
            f"CPU while measuring (/proc/stat, {load['window_s']:.0f} s): the machine busy "
            f"{load['machine_cpu_s']:.0f} CPU-s of {available:.0f}, the bench (client, servers, "
            f"MLflow server) {load['bench_cpu_s']:.0f} CPU-s, other processes {others:.0f} "
            f"CPU-s (on average {others / load['window_s']:.2f} CPUs)",
            phases.report(),
        ]
    )


def write_json(
    path: Path | None, results: list[dict[str, Result]], load: dict[str, float], **extra: Any
) -> None:
    if path is None:
        return
    document = {
        "machine": load,
        "scenarios": [
            {
                "scenario": pair[API].scenario.name,
                "cpu_ratio": round(ratio(pair), 4),
                "results": [r.summary() for r in pair.values()],
            }
            for pair in results
        ],
        **extra,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def guard(args: argparse.Namespace) -> int:
    """The short run of the test-suite: 0 when both CPU ratios are within their maximum."""
    phases = Phases()
    settings = Settings(
        requests=GUARD_REQUESTS,
        concurrency=args.concurrency,
        warmup=30,
        rounds=args.rounds,
        max_seconds=args.max_seconds if args.max_seconds is not None else 16.0,
    )
    results, load = run(list(GUARD_SCENARIOS), settings, phases)
    maxima = {1: args.max_ratio_1, 1000: args.max_ratio_1000}
    failures = []
    for pair in results:
        rows = pair[API].scenario.rows
        if not ratio(pair) <= maxima[rows]:  # a NaN fails too
            failures.append(f"{rows} row(s): ratio {ratio(pair):.3f} > maximum {maxima[rows]:g}")
    print(describe(settings, load, phases))
    print()
    print(markdown(results))
    print()
    ratios = {str(pair[API].scenario.rows): round(ratio(pair), 4) for pair in results}
    write_json(args.json, results, load, guard={"ratios": ratios, "maxima": maxima})
    if failures:
        print("guard FAILED (server CPU per request, this API / mlflow models serve): ", end="")
        print("; ".join(failures))
        return 1
    print(f"guard passed: CPU ratios {ratios}, maxima {maxima}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        metavar="PATTERN",
        help="fnmatch patterns on <model>/<form>/<rows>@w<workers> (without @: any worker "
        f"count of --workers); default: {' '.join(DEFAULT_PATTERNS)}",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="uvicorn worker counts the scenarios exist at (default: 1 2)",
    )
    parser.add_argument("--list", action="store_true", help="list the selected scenarios; exit")
    for rows, count in DEFAULT_REQUESTS.items():
        parser.add_argument(
            f"--requests-{rows}",
            type=int,
            default=count,
            help=f"requests per server with {rows} row(s) (default {count})",
        )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50, help="at most, per scenario and server")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per scenario")
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="cap per scenario, both servers (default 24; 16 with --guard)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--guard",
        action="store_true",
        help="the regression guard: iris, data form, 1 and 1000 rows, short; exit 1 when a CPU "
        "ratio is above its maximum",
    )
    parser.add_argument("--max-ratio-1", type=float, default=1.0, help="guard, 1 row")
    parser.add_argument("--max-ratio-1000", type=float, default=1.0, help="guard, 1000 rows")
    args = parser.parse_args()

    if args.guard:
        raise SystemExit(guard(args))
    scenarios = select(args.scenarios or list(DEFAULT_PATTERNS), args.workers)
    if args.list:
        print("\n".join(s.name for s in scenarios))
        return
    settings = Settings(
        requests={rows: getattr(args, f"requests_{rows}") for rows in DEFAULT_REQUESTS},
        concurrency=args.concurrency,
        warmup=args.warmup,
        rounds=args.rounds,
        max_seconds=args.max_seconds if args.max_seconds is not None else 24.0,
    )
    phases = Phases()
    results, load = run(scenarios, settings, phases)
    write_json(args.json, results, load)
    print(describe(settings, load, phases))
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()

"""Benchmark POST /predict of this API against ``mlflow models serve`` for the same model.

Run from app/ (``make bench`` or ``.venv/bin/python -m bench.predict_bench``). It starts, all on
127.0.0.1 and inside a temporary directory: an MLflow server with basic auth, trains and registers
the iris LogisticRegression (alias ``champion``), then ``oci-mlops-api`` and
``mlflow models serve --env-manager local`` with the same number of uvicorn workers, both as the
read-only MLflow user. Each scenario sends a fixed number of requests at a fixed concurrency
(bounded by ``--max-seconds`` too) after a warm-up, split into rounds that alternate between the
two servers so that background load on a shared machine hits both alike; the results are printed
as a Markdown table. The load generator (httpx, asyncio) runs on the same machine and competes for
the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import lab

MODEL = "iris-classifier"
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@dataclass
class Target:
    name: str
    url: str
    bodies: dict[int, bytes]  # rows -> serialized request body
    process_group: int = 0  # of the server's processes, set once started


@dataclass(frozen=True)
class Result:
    target: str
    rows: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds * 1000 / self.requests

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


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


def iris_rows(count: int) -> list[list[float]]:
    from sklearn.datasets import load_iris

    data = load_iris().data.tolist()
    return [data[i % len(data)] for i in range(count)]


async def run_load(
    target: Target,
    rows: int,
    total: int,
    concurrency: int,
    max_seconds: float,
    headers: dict[str, str],
) -> Result:
    body = target.bodies[rows]
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            nonlocal errors, issued
            while issued < total and time.monotonic() < deadline:
                issued += 1
                started = time.perf_counter()
                response = await client.post(target.url, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        cpu_before = group_cpu_seconds(target.process_group)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = group_cpu_seconds(target.process_group) - cpu_before
    return Result(target.name, rows, len(latencies), errors, seconds, latencies, cpu)


def merge(parts: list[Result]) -> Result:
    return Result(
        target=parts[0].target,
        rows=parts[0].rows,
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        seconds=sum(p.seconds for p in parts),
        latencies_ms=[latency for p in parts for latency in p.latencies_ms],
        server_cpu_seconds=sum(p.server_cpu_seconds for p in parts),
    )


@contextmanager
def served(
    target: Target, argv: list[str], env: dict[str, str], log: Path, ready_url: str
) -> Iterator[None]:
    process = lab.start_logged_process(argv, env, log)
    target.process_group = process.pid  # started as a session leader: pgid == pid
    try:
        lab.wait_http_ok(ready_url, 180, process)
        yield
    finally:
        lab.stop_process(process)


def check_same_predictions(targets: list[Target], headers: dict[str, str]) -> None:
    answers = []
    for target in targets:
        response = httpx.post(target.url, content=target.bodies[1000], headers=headers, timeout=60)
        response.raise_for_status()
        answers.append(response.json()["predictions"])
    if any(answer != answers[0] for answer in answers):
        raise SystemExit("the two servers disagree on the predictions; not benchmarking")


def markdown(results: list[Result]) -> str:
    lines = [
        "| server | rows/request | requests | errors | req/s | p50 ms | p99 ms "
        "| server CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.rows} | {r.requests} | {r.errors} | {r.throughput:.1f} "
            f"| {r.percentile(50):.2f} | {r.percentile(99):.2f} | {r.cpu_ms_per_request:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests-1", type=int, default=2000, help="requests with 1 row")
    parser.add_argument("--requests-1000", type=int, default=300, help="requests with 1000 rows")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per scenario")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of each server")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per scenario")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="cap per scenario")
    args = parser.parse_args()

    base_env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # `mlflow models serve` runs `uvicorn` from PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with tempfile.TemporaryDirectory(prefix="oci-mlops-bench-") as tmp:
        workdir = Path(tmp)
        with lab.running_mlflow(workdir / "mlflow") as server:
            os.environ.update(server.env(reader=False))
            from mlflow.tracking import MlflowClient

            model = lab.log_iris_model("bench", MODEL, c=1.0)
            MlflowClient().set_registered_model_alias(MODEL, "champion", model.version)
            server.grant_read("experiment", model.experiment_id)
            server.grant_read("registered_model", MODEL)

            reader_env = {**base_env, **server.env(reader=True)}
            api_key = "bench-" + os.urandom(16).hex()
            api_port, mlflow_port = lab.free_port(), lab.free_port()
            api_env = {
                **reader_env,
                "OCI_MLOPS_API_KEYS": api_key,
                "OCI_MLOPS_SERVED_MODELS": MODEL,
                "OCI_MLOPS_PRELOAD_MODELS": f"{MODEL}@champion",
                # the default: the access log is on, as mlflow models serve's (uvicorn's) is
                "OCI_MLOPS_LOG_LEVEL": "INFO",
            }
            bodies = {n: iris_rows(n) for n in (1, 1000)}
            targets = [
                Target(
                    "oci-mlops-api",
                    f"http://127.0.0.1:{api_port}/predict/{MODEL}/champion",
                    {n: json.dumps({"data": rows}).encode() for n, rows in bodies.items()},
                ),
                Target(
                    "mlflow models serve",
                    f"http://127.0.0.1:{mlflow_port}/invocations",
                    {
                        n: json.dumps(
                            {"dataframe_split": {"columns": FEATURES, "data": rows}}
                        ).encode()
                        for n, rows in bodies.items()
                    },
                ),
            ]
            headers = {"Content-Type": "application/json", "X-API-Key": api_key}
            api_argv = [
                lab.venv_bin("oci-mlops-api"),
                "--port",
                str(api_port),
                "--workers",
                str(args.workers),
            ]
            mlflow_argv = [
                lab.venv_bin("mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                str(args.workers),
            ]
            with (
                served(
                    targets[0],
                    api_argv,
                    api_env,
                    workdir / "api.log",
                    f"http://127.0.0.1:{api_port}/ready",
                ),
                served(
                    targets[1],
                    mlflow_argv,
                    reader_env,
                    workdir / "mlflow-serve.log",
                    f"http://127.0.0.1:{mlflow_port}/ping",
                ),
            ):
                check_same_predictions(targets, headers)
                load_before = os.getloadavg()
                results: list[Result] = []
                for rows, total in ((1, args.requests_1), (1000, args.requests_1000)):
                    for target in targets:
                        asyncio.run(
                            run_load(target, rows, args.warmup, args.concurrency, 60, headers)
                        )
                    rounds: dict[str, list[Result]] = {t.name: [] for t in targets}
                    for index in range(args.rounds):
                        order = targets if index % 2 == 0 else targets[::-1]
                        for target in order:
                            rounds[target.name].append(
                                asyncio.run(
                                    run_load(
                                        target,
                                        rows,
                                        total // args.rounds,
                                        args.concurrency,
                                        args.max_seconds / args.rounds,
                                        headers,
                                    )
                                )
                            )
                    results.extend(merge(parts) for parts in rounds.values())
                    print(f"done: {rows} row(s)", file=sys.stderr)
                load_after = os.getloadavg()

    print(f"command: {shlex.join(['python', '-m', 'bench.predict_bench', *sys.argv[1:]])}")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.workers} uvicorn worker(s) per server; concurrency {args.concurrency}; "
        f"{args.warmup} warm-up requests and {args.rounds} alternating rounds per scenario; "
        "client and servers on 127.0.0.1"
    )
    print(f"1-minute load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print(markdown(results))


if __name__ == "__main__":
    main()

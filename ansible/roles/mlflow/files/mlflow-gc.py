"""`mlflow gc` for the platform's tracking server, run by mlflow-gc.service (its timer).

    mlflow-gc.py --older-than 30d --artifacts-destination s3://bucket[/prefix]

Permanently deletes what users deleted more than the retention ago: runs in
the `deleted` lifecycle stage (their deleted_time), deleted experiments
(their last_update_time) with all their runs, and deleted logged models,
each with its artifacts, then its rows. It is MLflow's own `mlflow gc`
(mlflow.cli), called in this process with two platform specifics:

* The backend store URI holds the database password: it comes from the
  server's environment file (MLFLOW_BACKEND_STORE_URI; systemd reads
  /etc/mlflow/mlflow.env for the unit), never from a command line. `mlflow gc`
  takes it only as an option, so it is handed to MLflow's click command here,
  inside the process; the command line holds the retention and the
  destination only.
* The server proxies the artifacts (--serve-artifacts): runs and logged
  models record `mlflow-artifacts:/<path>` URIs, which stock `mlflow gc`
  resolves through an HTTP tracking URI (the server, signed in as a user
  allowed to delete). Here they are resolved as the server itself resolves
  them, to <artifacts destination>/<path>, and deleted in the artifact store
  with the server's own credentials (the same environment file). Other URIs
  (a run logged straight to the store) are used as they are.

A path that does not name something below the destination (empty, or with
`..`) stops the run before anything of that run is deleted; so does any
error of the store or the database (the unit fails; the next run resumes).
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys
from urllib.parse import urlparse


def artifact_location(uri: str, destination: str) -> str:
    """Where an artifact URI's files are in the store: mlflow-artifacts:/<path> -> <destination>/<path>."""
    parsed = urlparse(uri)
    if parsed.scheme != "mlflow-artifacts":
        return uri
    path = parsed.path.strip("/")
    parts = path.split("/")
    # A run's artifacts are <experiment>/<run>/artifacts, a logged model's
    # <experiment>/models/<id>/artifacts: never the destination's root.
    if len(parts) < 2 or any(p in ("", ".", "..") for p in parts) or posixpath.normpath(path) != path:
        raise ValueError(f"refusing to delete {uri!r}: it does not name a run's or model's artifacts")
    return destination.rstrip("/") + "/" + path


def main(argv: list[str] | None = None, environ: os._Environ[str] | dict[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--older-than", required=True, help="retention, in mlflow gc's #d#h#m#s format (e.g. 30d)")
    parser.add_argument("--artifacts-destination", required=True, help="the server's --artifacts-destination")
    args = parser.parse_args(argv)
    backend = environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not backend:
        sys.exit("mlflow-gc: MLFLOW_BACKEND_STORE_URI is not set (run it with the server's environment file)")
    # `mlflow gc` refuses to run without a tracking URI; the store is the database.
    environ["MLFLOW_TRACKING_URI"] = backend

    import mlflow.cli

    resolve = mlflow.cli.get_artifact_repository

    def get_artifact_repository(artifact_uri: str, *rest, **kwargs):
        return resolve(artifact_location(artifact_uri, args.artifacts_destination), *rest, **kwargs)

    mlflow.cli.get_artifact_repository = get_artifact_repository
    mlflow.cli.cli.main(
        args=[
            "gc",
            "--older-than",
            args.older_than,
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            args.artifacts_destination,
        ],
        prog_name="mlflow",
        standalone_mode=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

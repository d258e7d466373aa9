"""Console entry points: ``oci-mlops-api`` (uvicorn) and ``oci-mlops-dashboard`` (streamlit)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .config import ApiSettings, ConfigError, DashboardSettings, apply_mlflow_client_defaults
from .logs import configure_logging, logging_config
from .metrics import MULTIPROC_ENV

DASHBOARD_SCRIPT = Path(__file__).parent / "dashboard" / "streamlit_app.py"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"configuration error: {name} must be an integer, got {raw!r}") from None


def api_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oci-mlops-api",
        description="Serve MLflow registry models over HTTP (settings: see README).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("OCI_MLOPS_API_HOST", "127.0.0.1"),
        help="bind address (env OCI_MLOPS_API_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("OCI_MLOPS_API_PORT", 8000),
        help="port (env OCI_MLOPS_API_PORT, default 8000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_env_int("OCI_MLOPS_API_WORKERS", 1),
        help="uvicorn worker processes (env OCI_MLOPS_API_WORKERS, default 1)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        settings = ApiSettings.from_env()  # fail fast, before any worker starts
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    apply_mlflow_client_defaults()
    if args.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # the workers inherit this before they import prometheus_client
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="oci-mlops-prometheus-")
    configure_logging(settings.log_level)
    for warning in settings.warnings:
        logging.getLogger("oci_mlops_app.config").warning(warning)

    import uvicorn

    uvicorn.run(
        "oci_mlops_app.api:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=logging_config(settings.log_level),
        access_log=False,
        server_header=False,
        # X-Forwarded-For/-Proto are trusted only from OCI_MLOPS_FORWARDED_ALLOW_IPS (the reverse
        # proxy); unset: from no one (uvicorn's own default would trust 127.0.0.1).
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def dashboard_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oci-mlops-dashboard",
        description="Run the Streamlit dashboard headless (settings: see README).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("OCI_MLOPS_DASHBOARD_HOST", "127.0.0.1"),
        help="bind address (env OCI_MLOPS_DASHBOARD_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("OCI_MLOPS_DASHBOARD_PORT", 8501),
        help="port (env OCI_MLOPS_DASHBOARD_PORT, default 8501)",
    )
    args = parser.parse_args(argv)
    try:
        settings = DashboardSettings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    apply_mlflow_client_defaults()
    configure_logging(settings.log_level)  # the dashboard's own loggers; streamlit keeps its own
    for warning in settings.warnings:
        logging.getLogger("oci_mlops_app.config").warning(warning)

    from streamlit.web import cli as streamlit_cli

    sys.argv = [
        "streamlit",
        "run",
        str(DASHBOARD_SCRIPT),
        "--server.headless=true",
        f"--server.address={args.host}",
        f"--server.port={args.port}",
        # behind a reverse proxy at e.g. /dashboard (the proxy must not strip the prefix)
        f"--server.baseUrlPath={settings.base_path.strip('/')}",
        "--server.fileWatcherType=none",
        # uploads (batch CSVs): Streamlit's default is 200 MB
        f"--server.maxUploadSize={settings.max_upload_mb}",
        "--browser.gatherUsageStats=false",
    ]
    sys.exit(streamlit_cli.main())

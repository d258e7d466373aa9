"""Model serving API and dashboard for the OCI MLOps platform's MLflow model registry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oci-mlops-app")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]

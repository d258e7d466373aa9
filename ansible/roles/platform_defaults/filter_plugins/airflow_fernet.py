"""Derive a valid Fernet key from a secret string, reproducibly."""

from __future__ import annotations

import base64
import hashlib

from ansible.errors import AnsibleFilterError


def airflow_fernet_key(secret) -> str:
    """urlsafe-base64 of the 32-byte SHA-256 of `secret`: a valid Fernet key.

    The controller generates (or the vault holds) a random secret once; the key
    derived from it is the same on every run and every host.
    """
    secret = str(secret)
    if len(secret) < 32:
        raise AnsibleFilterError("airflow_fernet_key: the secret needs at least 32 characters")
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest()).decode("ascii")


class FilterModule:  # pylint: disable=too-few-public-methods
    """The Fernet key's derivation, beside the default that uses it (defaults/main/airflow.yml):
    every play loads platform_defaults, and hosts that never run the airflow role
    render airflow_fernet_key too (the backup role's encrypted secrets on the db host)."""

    def filters(self):
        return {"airflow_derive_fernet_key": airflow_fernet_key}

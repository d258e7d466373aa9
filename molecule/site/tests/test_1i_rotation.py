"""Secret rotation (issue #17 point 5): `make rotate SECRET=<name>` on the converged platform.

After the restore drill (test_1h; a platform with data), before the drift suite:

1. The Airflow admin creates a connection with a password and an extra
   through the REST API (stored encrypted with the Fernet key).
2. `ansible/playbooks/rotate.yml -e oci_mlops_rotate_secret=airflow_fernet_secret`
   (`make rotate SECRET=airflow_fernet_secret`) runs: the controller's secret
   is new, its previous copy gone at the end; the airflow role ran `airflow
   rotate-fernet-key` (a changed task on the airflow host), and the airflow
   host's credential file holds the new key alone (the old one dropped in the
   same rotation).
3. The connection is still readable through the REST API with the new key
   alone: the same password and extra. The admin still signs in.

The API key's overlap (`make rotate SECRET=api_key`, then `FINISH=1`) and an
unknown name are tests/unit/test_rotation.py's (the keys the API is given at
each step, the refusal listing the declared names); the API accepting every
key of its keys file is app/tests'. Here they cost two converges of the
whole platform (about 6 min of CI) for no other property.

That a converge after the rotations changes nothing (and does not run
`rotate-fernet-key` again) is the next suite's first check: test_2_drift's
check-mode run on the clean platform reports no change.

Cannot run without the lab (Docker): `make site-test`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import sitekit
from sitekit import AIRFLOW

STATE: dict[str, Any] = {}
# Its own id per run: `molecule verify` can run the suite again on the same platform.
CONNECTION = f"rotation_check_{uuid.uuid4().hex[:8]}"
FERNET_CREDENTIAL = "/etc/airflow/credentials/airflow_fernet_key"
REENCRYPT = "airflow : Re-encrypt connections, variables and triggers (airflow rotate-fernet-key)"


def _derive(secret: str) -> str:
    """platform_defaults' airflow_derive_fernet_key (SHA-256 of the controller's secret, urlsafe base64)."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def _rotate(name: str, *args: str) -> dict:
    return sitekit.playbook(
        "ansible/playbooks/rotate.yml", "-e", f"oci_mlops_rotate_secret={name}", *args, timeout=3600
    )


def test_a_connection_with_a_password_is_stored_encrypted(airflow):
    marker = uuid.uuid4().hex
    resp = airflow.request(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": CONNECTION,
            "conn_type": "http",
            "host": "example.invalid",
            "login": "rotation",
            "password": f"pw-{marker}",
            "extra": json.dumps({"rotation_marker": marker}),
        },
    )
    assert resp.status_code == 201, resp.text
    STATE["marker"] = marker
    STATE["old_secret"] = sitekit.secret("airflow_fernet_secret")
    keys = sitekit.out(AIRFLOW, f"cat {FERNET_CREDENTIAL}").split(",")
    assert keys == [_derive(STATE["old_secret"])], "the airflow host holds another Fernet key than the controller's"


def test_make_rotate_fernet_reencrypts_once_and_drops_the_old_key():
    result = _rotate("airflow_fernet_secret")
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-5000:]
    sitekit.report(f"make rotate SECRET=airflow_fernet_secret: {result['seconds']:.0f} s\n{sitekit.profile(result)}")
    assert (AIRFLOW, REENCRYPT) in result["changed"], sorted(result["changed"])
    new = sitekit.secret("airflow_fernet_secret")
    assert new != STATE["old_secret"]
    assert not (sitekit.SECRETS_DIR / "airflow_fernet_secret.previous").exists()
    assert sitekit.out(AIRFLOW, f"cat {FERNET_CREDENTIAL}") == _derive(new), "the old key was not dropped"
    STATE["new_secret"] = new


def test_the_connection_is_still_readable_with_the_new_key_alone(airflow):
    resp = airflow.request("GET", f"/api/v2/connections/{CONNECTION}")
    assert resp.status_code == 200, f"connection {CONNECTION}: {resp.status_code} {resp.text[:1000]}"
    connection = resp.json()
    assert json.loads(connection["extra"]) == {"rotation_marker": STATE["marker"]}, connection
    # The REST API masks a password it returns; present and not empty means it decrypted.
    assert connection["password"], connection
    assert connection["login"] == "rotation" and connection["host"] == "example.invalid", connection


def test_the_admin_still_signs_in():
    assert sitekit.airflow_admin_sign_in().status_code == 201

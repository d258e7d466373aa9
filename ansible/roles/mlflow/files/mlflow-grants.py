"""Reconcile the explicit grants of the mlflow role's users (mlflow_users: permission, grants).

Run by the mlflow role on the MLflow host as `python -c <this file>` (the platform's Python, standard
library only). Reads one JSON object on stdin (the admin's password never goes on a command line):

    {"url": "http://127.0.0.1:5000", "admin": ["admin", "<password>"], "check": false,
     "users": [{"name": "mlflow-pipelines",
                "grants": [{"resource_type": "registered_model", "resource_id": "iris-classifier",
                            "permission": "EDIT"}]}]}

As the admin, through MLflow's REST API:

1. Creates the registered models a grant names (resource_id other than "*") that do not exist
   yet, as the admin: nobody else can then register that name first (MLflow lets any user create a
   registered model, and its creator MANAGEs it).
2. Gives each user each declared grant it lacks, or holds weaker (revoke, then grant: MLflow's
   grant endpoint does not overwrite). A stronger grant stays: MLflow gives the creator of an
   experiment or a registered model MANAGE on it.
3. Revokes the user's grants on every experiment or registered model ("*") that its entry does not
   declare. Grants on single resources that the entry does not declare (the creator's MANAGE,
   grants made through the API) stay.

Only the user's own grants (its synthetic role ``__user_<id>__``) are read and changed; users that do
not exist (check mode, before they are created) have none. With "check": true nothing is changed.
Prints {"changes": ["<what was (or would be) done>", ...]}; exits non-zero on any other answer.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

RANK = {"DENY": -1, "NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}
WILDCARD_TYPES = ("experiment", "registered_model")
# The server is local: never through a proxy.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, params: dict[str, str], ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        url, data = f"{self.url}{path}", None
        if method == "GET":
            url += "?" + urllib.parse.urlencode(params)
        else:
            data = json.dumps(params).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with OPENER.open(request, timeout=60) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        if status not in ok:
            sys.exit(f"{method} {path} {params.get('username', params.get('name', ''))}: HTTP {status}: {body[:300]!r}")
        return status, json.loads(body) if body else {}


def own_grants(api: Api, username: str) -> dict[tuple[str, str], str]:
    """(resource_type, resource_pattern) -> permission of the user's own grants; {} if no such user."""
    status, answer = api.call("GET", "/api/3.0/mlflow/users/permissions/list", {"username": username}, (200, 404))
    if status == 404:
        return {}
    return {
        (row["resource_type"], row["resource_pattern"]): row["permission"]
        for row in answer.get("permissions", [])
        if str(row.get("role_name", "")).startswith("__user_")
    }


def reconcile(api: Api, users: list[dict[str, Any]], check: bool) -> list[str]:
    changes: list[str] = []
    models = sorted(
        {
            grant["resource_id"]
            for user in users
            for grant in user["grants"]
            if grant["resource_type"] == "registered_model" and grant["resource_id"] != "*"
        }
    )
    for name in models:
        status, _ = api.call("GET", "/api/2.0/mlflow/registered-models/get", {"name": name}, (200, 404))
        if status == 404:
            changes.append(f"create registered model {name} (as the admin)")
            if not check:
                api.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})

    for user in users:
        name = user["name"]
        have = own_grants(api, name)
        want = {(g["resource_type"], g["resource_id"]): g["permission"] for g in user["grants"]}
        for (rtype, rid), permission in sorted(want.items()):
            current = have.get((rtype, rid))
            if current is not None and RANK.get(current, -1) >= RANK[permission]:
                continue
            key = {"username": name, "resource_type": rtype, "resource_id": rid}
            if current is None:
                changes.append(f"grant {name} {permission} on {rtype} {rid}")
            else:
                changes.append(f"raise {name} from {current} to {permission} on {rtype} {rid}")
            if check:
                continue
            if current is not None:
                api.call("POST", "/api/3.0/mlflow/users/permissions/revoke", key)
            api.call("POST", "/api/3.0/mlflow/users/permissions/grant", {**key, "permission": permission})
        for rtype, rid in sorted(have):
            if rid != "*" or rtype not in WILDCARD_TYPES or (rtype, rid) in want:
                continue
            changes.append(f"revoke {name} {have[(rtype, rid)]} on every {rtype} (*)")
            if not check:
                api.call(
                    "POST",
                    "/api/3.0/mlflow/users/permissions/revoke",
                    {"username": name, "resource_type": rtype, "resource_id": rid},
                )
    return changes


def main() -> None:
    request = json.load(sys.stdin)
    admin, password = request["admin"]
    changes = reconcile(Api(request["url"], admin, password), request["users"], bool(request.get("check")))
    print(json.dumps({"changes": changes}))


if __name__ == "__main__":
    main()

"""The platform's one way to get a shared secret (see README, "Secrets").

Every secret is declared once in `oci_mlops_secrets` (platform_defaults/defaults/main/secrets.yml:
name, length, chars, the groups whose hosts hold it, purpose). This lookup
returns, for each name, `vault_<name>` (or the declaration's `vault` variable)
when it is defined, else the controller's copy `<oci_mlops_secrets_dir>/<name>`,
generated on first use with the declared length and characters by
ansible.builtin.password (same file format and locking as before), unless
the declaration's `generated_if` variable is false: then only vault will do
(e.g. the S3 key pair on OCI, which must be a customer secret key OCI issued).
"""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.loader import lookup_loader
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: oci_mlops_secret
short_description: a declared platform secret, from vault or generated once on the controller
description:
  - Returns each named secret, declared in C(oci_mlops_secrets).
  - C(vault_<name>) (or the declaration's C(vault) variable) wins when defined.
  - Else the controller file C(<oci_mlops_secrets_dir>/<name>), generated once when absent,
    unless the declaration's C(generated_if) variable is false (then an error names the vault variable).
options:
  _terms:
    description: Names of declared secrets.
    required: true
  digest:
    description:
      - Return the SHA-256 hex digest of each secret instead of its value, and an
        empty string for a secret that is neither in vault nor on the controller.
      - Never generates anything.
    type: bool
    default: false
  previous:
    description:
      - Return the previous value of each secret kept during a deliberate rotation
        (C(<oci_mlops_secrets_dir>/<name>.previous), written by rotate.yml for a secret
        whose declaration has C(overlap)), or an empty string when there is none.
      - Never generates anything; vault is not consulted (a vault value carries its own overlap).
    type: bool
    default: false
"""

RETURN = r"""
_raw:
  description: The secrets' values (or digests with digest=true), in the order of the names.
  type: list
  elements: str
"""


class LookupModule(LookupBase):
    """Vault when defined, else the controller's generated copy."""

    def _var(self, variables, name):
        return self._templar.template(variables[name])

    def _may_generate(self, decl, variables) -> bool:
        """False when the declaration's generated_if variable is false (or undefined)."""
        flag = decl.get("generated_if")
        if flag is None:
            return True
        value = self._var(variables, flag) if flag in variables else False
        return boolean(value, strict=False)

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        if "oci_mlops_secrets" not in variables or "oci_mlops_secrets_dir" not in variables:
            raise AnsibleLookupError(
                "oci_mlops_secret needs oci_mlops_secrets and oci_mlops_secrets_dir"
                " (ansible/roles/platform_defaults/defaults/main/secrets.yml)"
            )
        declared = {d["name"]: d for d in self._var(variables, "oci_mlops_secrets")}
        secrets_dir = str(self._var(variables, "oci_mlops_secrets_dir"))
        digest = self.get_option("digest")
        previous = self.get_option("previous")
        ret = []
        for name in terms:
            if name not in declared:
                raise AnsibleLookupError(f"oci_mlops_secret: {name!r} is not declared in oci_mlops_secrets")
            decl = declared[name]
            vault_var = decl.get("vault", "vault_" + name)
            path = os.path.join(secrets_dir, name)
            if previous:
                ret.append(_read(path + ".previous"))
                continue
            if vault_var in variables:
                value = str(self._var(variables, vault_var))
            elif digest:
                value = _read(path)
            elif not self._may_generate(decl, variables):
                flag = decl["generated_if"]
                raise AnsibleLookupError(
                    f"Secret {name} must come from vault here: set {vault_var}."
                    f" It is not generated because {flag} is false: on OCI the S3 API accepts only a customer"
                    " secret key OCI issued (terraform output s3_access_key/s3_secret_key with"
                    " create_mlflow_s3_user = true, or one created for an existing user); docs/deploy-oci.md."
                    f" A platform with its own object store (the lab) sets {flag}: true."
                )
            else:
                term = f"{path} length={int(decl['length'])} chars={','.join(decl['chars'])}"
                value = lookup_loader.get("ansible.builtin.password", loader=self._loader, templar=self._templar).run(
                    [term], variables
                )[0]
            if digest:
                value = hashlib.sha256(value.encode("utf-8")).hexdigest() if value else ""
            ret.append(value)
        return ret


def _read(path: str) -> str:
    """The password of a file written by ansible.builtin.password ('' when absent)."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read().strip()
    except FileNotFoundError:
        return ""
    # ansible.builtin.password may append " salt=..." (never for these secrets).
    return content.split(" salt=", 1)[0]

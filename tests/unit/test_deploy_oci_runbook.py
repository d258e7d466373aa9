"""docs/deploy-oci.md's variable table is terraform/variables.tf's, so it cannot rot.

The runbook's "Terraform variables" section has one table row per variable of
terraform/variables.tf (first cell: the name in backticks; second: `required`
exactly for the variables without a default). A variable added, renamed or
removed in Terraform without the runbook, or a row for a variable that no
longer exists, fails here.
"""

from __future__ import annotations

import re

from conftest import ROOT

VARIABLES_TF = ROOT / "terraform" / "variables.tf"
RUNBOOK = ROOT / "docs" / "deploy-oci.md"
SECTION = "## 4. Terraform variables"


def _terraform_variables() -> dict[str, bool]:
    """{name: has a default} of every `variable` block (blocks end at a `}` in column 0)."""
    text = VARIABLES_TF.read_text(encoding="utf-8")
    found = {}
    for match in re.finditer(r'^variable "([A-Za-z0-9_]+)" \{\n(.*?)^\}', text, re.M | re.S):
        found[match.group(1)] = re.search(r"^  default\s*=", match.group(2), re.M) is not None
    assert found, f"no variable block parsed from {VARIABLES_TF}"
    return found


def _runbook_rows() -> dict[str, str]:
    """{name: second cell} of the table rows of the runbook's variables section."""
    text = RUNBOOK.read_text(encoding="utf-8")
    assert SECTION in text, f"{RUNBOOK} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2:
            for name in re.findall(r"`([A-Za-z0-9_]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def test_every_terraform_variable_has_a_row_and_every_row_a_variable():
    variables, rows = _terraform_variables(), _runbook_rows()
    missing = sorted(set(variables) - set(rows))
    stale = sorted(set(rows) - set(variables))
    assert not missing, f"terraform/variables.tf variables missing from {RUNBOOK.name} ({SECTION}): {missing}"
    assert not stale, f"{RUNBOOK.name} ({SECTION}) lists variables terraform/variables.tf does not have: {stale}"


def test_required_is_said_exactly_of_the_variables_without_a_default():
    variables, rows = _terraform_variables(), _runbook_rows()
    wrong = sorted(
        name for name, has_default in variables.items() if name in rows and (rows[name] == "required") == has_default
    )
    assert not wrong, f"{RUNBOOK.name}: the default column says 'required' wrongly for {wrong}"


def test_the_parser_reads_the_real_file():
    """A parser that found nothing would make the tests above pass vacuously."""
    variables = _terraform_variables()
    assert variables.get("region") is False and variables.get("vcn_cidr") is True
    assert len(variables) == len(re.findall(r"^variable ", VARIABLES_TF.read_text(encoding="utf-8"), re.M))

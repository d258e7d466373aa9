"""The users' view of this scenario's platform: tests/outside, from the control node only.

The scenario publishes its services on the control node's loopback like
`make lab` (LAB_PORT_OFFSET in molecule.yml), and site.yml wrote the users'
URLs and credentials into the scenario inventory's .secrets/client.env. The
outside-in suite (which also runs docs/quickstart.md) uses nothing else: it
is run here as an operator runs it against the lab, `make outside-test`.
"""

import re
import subprocess
import time
from pathlib import Path

import sitekit


def test_outside_in_suite():
    inventory = Path(sitekit.INVENTORY).parent
    start = time.monotonic()
    run = subprocess.run(
        ["make", "--no-print-directory", "outside-test", f"INVENTORY={inventory}"],
        cwd=sitekit.PROJECT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.monotonic() - start
    print(run.stdout[-20000:], run.stderr[-5000:])
    summary = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", run.stdout, re.M)
    sitekit.report(f"outside-in suite (make outside-test): {summary[-1] if summary else 'no summary'}, {seconds:.0f} s")
    assert run.returncode == 0, f"tests/outside failed (rc {run.returncode}); see the output above"

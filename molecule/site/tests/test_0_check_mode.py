"""Right after the fresh converge: a `site.yml --check --diff` reports nothing.

Check mode is truthful on a converged platform, and this check run stands in
for molecule's idempotence step, which this scenario does not run (molecule.yml:
a full run's CPU): every task that would change on a second run reports
changed here. The drift suite's last run is a real run that must report
changed=0 on every host.
"""

import sitekit


def test_check_mode_reports_nothing_on_the_fresh_platform():
    result = sitekit.playbook("site.yml", check=True)
    sitekit.report(
        f"check mode on the fresh platform: {result['seconds']:.0f} s, changed={sitekit.changed_count(result)}\n"
        + sitekit.profile(result)
    )
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    changed = sitekit.changed_lines(result)
    assert not result["changed"], f"check mode reports changes on a converged platform:\n{changed}"

"""common's lab_ca entry point: the lab CA and its leaf certificates on the
controller. A converged state costs one read (no crypto module runs); drift
(a mode, a name, a near expiry, a key that no longer matches) is repaired,
only where it is; check mode before the first run creates nothing and does
not fail."""

from __future__ import annotations

import datetime as dt
import re
import stat
from pathlib import Path

import pytest
from conftest import run_local_play
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

LEAVES = [
    {"name": "mysql", "dns": ["lab-db"], "ip": ["172.28.52.3"]},
    {"name": "edge", "dns": ["localhost"], "ip": ["127.0.0.1"]},
]


def _run(tmp: Path, ca_dir: Path, leaves: list, check: bool = False, **extra) -> dict:
    play = {
        "name": "Lab CA",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Lab CA",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "lab_ca"},
                "vars": {"common_lab_ca_dir": str(ca_dir), "common_lab_ca_certificates": leaves, **extra},
            }
        ],
    }
    run = run_local_play(tmp, [play], args=("--check",) if check else ())
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    ran, changed = [], []
    for block in re.split(r"\n(?=TASK \[)", run.stdout):
        header = re.match(r"TASK \[(?:common : )?(.*?)\]", block)
        if not header:
            continue
        if header.group(1).startswith("Validating arguments"):
            continue  # the entry point's argument spec (no command)
        if re.search(r"^(ok|changed): ", block, re.M):
            ran.append(header.group(1))
        if re.search(r"^changed: ", block, re.M):
            changed.append(header.group(1))
    return {"ran": ran, "changed": changed, "out": out}


def _cert(ca_dir: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ca_dir / f"{name}.crt").read_bytes())


def _names(cert: x509.Certificate) -> tuple[list, list]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(san.get_values_for_type(x509.DNSName)), sorted(
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


READ = "Read the lab CA's state (one read; nothing else runs when it is as wanted)"
CONVERGED = ["Validate the certificates asked for", READ]


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labca")
    ca_dir = tmp / "secrets" / "lab-ca"
    first = _run(tmp, ca_dir, LEAVES)
    return tmp, ca_dir, first


def test_check_mode_before_the_first_run_creates_nothing(tmp_path):
    ca_dir = tmp_path / "lab-ca"
    run = _run(tmp_path, ca_dir, LEAVES, check=True)
    assert not ca_dir.exists()
    assert "Report the certificates check mode would issue" in run["changed"], run["out"][-3000:]


def test_first_run_creates_the_ca_and_the_leaves(issued):
    _, ca_dir, first = issued
    assert "Issue the leaf certificates from the CA" in first["changed"]
    assert _mode(ca_dir) == 0o700
    for name in ("lab-ca", "mysql", "edge"):
        for suffix in ("key", "crt"):
            assert _mode(ca_dir / f"{name}.{suffix}") == 0o600, f"{name}.{suffix}"
    ca = _cert(ca_dir, "lab-ca")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    mysql = _cert(ca_dir, "mysql")
    mysql.verify_directly_issued_by(ca)
    assert _names(mysql) == (["lab-db"], ["172.28.52.3"])
    assert mysql.subject.rfc4514_string() == "CN=lab-db"
    assert x509.ExtendedKeyUsageOID.SERVER_AUTH in mysql.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_converged_state_is_one_read(issued):
    tmp, ca_dir, _ = issued
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}
    run = _run(tmp, ca_dir, LEAVES)
    assert run["ran"] == CONVERGED, run["ran"]
    assert run["changed"] == []
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before


def test_leaves_not_listed_are_left_alone(issued):
    tmp, ca_dir, _ = issued
    edge = (ca_dir / "edge.crt").read_bytes()
    run = _run(tmp, ca_dir, LEAVES[:1])
    assert run["ran"] == CONVERGED
    assert (ca_dir / "edge.crt").read_bytes() == edge


def test_wrong_modes_are_repaired_without_reissuing(issued):
    tmp, ca_dir, _ = issued
    cert = (ca_dir / "mysql.crt").read_bytes()
    (ca_dir / "mysql.key").chmod(0o644)
    (ca_dir / "mysql.crt").chmod(0o640)
    ca_dir.chmod(0o755)
    run = _run(tmp, ca_dir, LEAVES)
    assert run["changed"] == ["Create the lab CA directory", "Set the files' modes to 0600"], run["changed"]
    assert (_mode(ca_dir), _mode(ca_dir / "mysql.key"), _mode(ca_dir / "mysql.crt")) == (0o700, 0o600, 0o600)
    assert (ca_dir / "mysql.crt").read_bytes() == cert
    assert _run(tmp, ca_dir, LEAVES)["ran"] == CONVERGED


def test_changed_names_reissue_that_leaf_only(issued):
    tmp, ca_dir, _ = issued
    edge, ca = (ca_dir / "edge.crt").read_bytes(), (ca_dir / "lab-ca.crt").read_bytes()
    leaves = [{"name": "mysql", "dns": ["lab-db", "db.lab"], "ip": ["172.28.52.3"]}, LEAVES[1]]
    run = _run(tmp, ca_dir, leaves)
    assert "Issue the leaf certificates from the CA" in run["changed"]
    assert _names(_cert(ca_dir, "mysql")) == (["db.lab", "lab-db"], ["172.28.52.3"])
    assert (ca_dir / "edge.crt").read_bytes() == edge and (ca_dir / "lab-ca.crt").read_bytes() == ca
    assert _run(tmp, ca_dir, leaves)["ran"] == CONVERGED
    _run(tmp, ca_dir, LEAVES)  # back to the fixture's names
    assert _names(_cert(ca_dir, "mysql")) == (["lab-db"], ["172.28.52.3"])


def test_near_expiry_is_reissued(issued):
    tmp, ca_dir, _ = issued
    # Every leaf has < 400 days left: re-issued, for 20 days (due again at renew_days 30).
    _run(tmp, ca_dir, LEAVES, common_lab_ca_leaf_valid_days=20, common_lab_ca_renew_days=400)
    short = _cert(ca_dir, "mysql").not_valid_after_utc
    assert short < dt.datetime.now(dt.UTC) + dt.timedelta(days=21)
    run = _run(tmp, ca_dir, LEAVES)
    assert "Issue the leaf certificates from the CA" in run["changed"]
    assert _cert(ca_dir, "mysql").not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=390)
    assert _run(tmp, ca_dir, LEAVES)["ran"] == CONVERGED


def test_certificate_not_matching_its_key_is_reissued(issued):
    tmp, ca_dir, _ = issued
    key = ec.generate_private_key(ec.SECP256R1())
    (ca_dir / "mysql.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (ca_dir / "mysql.key").chmod(0o600)
    run = _run(tmp, ca_dir, LEAVES)
    assert "Issue the leaf certificates from the CA" in run["changed"]
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert _cert(ca_dir, "mysql").public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
    assert _run(tmp, ca_dir, LEAVES)["ran"] == CONVERGED


def test_a_new_ca_reissues_every_listed_leaf(issued):
    tmp, ca_dir, _ = issued
    (ca_dir / "lab-ca.key").unlink()
    run = _run(tmp, ca_dir, LEAVES)
    assert "Self-sign the CA certificate" in run["changed"]
    ca = _cert(ca_dir, "lab-ca")
    for name in ("mysql", "edge"):
        _cert(ca_dir, name).verify_directly_issued_by(ca)
    assert _run(tmp, ca_dir, LEAVES)["ran"] == CONVERGED


@pytest.mark.parametrize(
    "leaves",
    [
        [{"name": "lab-ca", "dns": ["x"]}],
        [{"name": "Bad Name", "dns": ["x"]}],
        [{"name": "a", "dns": []}],
        [{"name": "a", "dns": ["x"]}, {"name": "a", "dns": ["y"]}],
        [{"name": "a", "ip": ["not-an-address"]}],
    ],
    ids=["reserved", "bad-name", "no-names", "duplicate", "bad-ip"],
)
def test_bad_leaves_fail_naming_the_variable(tmp_path, leaves):
    play = {
        "name": "Lab CA",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Lab CA",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "lab_ca"},
                "vars": {"common_lab_ca_dir": str(tmp_path / "ca"), "common_lab_ca_certificates": leaves},
            }
        ],
    }
    run = run_local_play(tmp_path, [play])
    assert run.returncode != 0
    assert "common_lab_ca_certificates" in run.stdout + run.stderr
    assert not (tmp_path / "ca").exists()

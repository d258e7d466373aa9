"""The inventory Terraform writes, loaded by the REAL oracle.oci.oci inventory
plugin (vendored, tests/unit/data/oracle_oci, collection 5.5.0) in ansible-core's
InventoryManager, against stubbed OCI SDK clients (no tenancy, no network).

The stubs answer what the plugin asks (plugins/inventory/oci.py): the
compartment (IdentityClient.get_compartment), the running instances
(ComputeClient.list_instances), their VNIC attachments (list_vnic_attachments),
VNICs and subnets (VirtualNetworkClient.get_vnic, get_subnet, list_ipv6s),
with the SDK's own model classes (the plugin calls oci.util.to_dict on them)
wrapped in oci.response.Response (the plugin pages with
oci.pagination.list_call_get_all_results). The compartment is NAMED `db`, like
a playbook group: with the plugin's default groups its hosts would join `db`.

Checked: the groups are exactly the topology's instance groups (plus the
plugin's fixed all_hosts, and all/ungrouped); hosts are named by private IP;
another project's instance in the same compartment is filtered out. The same
stubs without `default_groups: []` give the extra groups (db among them), so
the check can fail.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, load_plugin

TF_DIR = ROOT / "terraform"
VENDORED = Path(__file__).resolve().parent / "data" / "oracle_oci"
VENDORED_FILES = (
    "LICENSE.txt",
    "galaxy.yml",
    "meta/runtime.yml",
    "plugins/inventory/oci.py",
    "plugins/module_utils/__init__.py",
    "plugins/module_utils/oci_common_utils.py",
    "plugins/module_utils/oci_config_utils.py",
    "plugins/module_utils/oci_log_utils.py",
    "plugins/module_utils/oci_version.py",
    "plugins/module_utils/oci_version_utils.py",
)
PLUGIN_MODULE = "ansible_collections.oracle.oci.plugins.inventory.oci"

oci = pytest.importorskip("oci", reason="the OCI Python SDK (oci) is needed to run the real plugin")
from oci.core import models as core_models  # type: ignore[import-untyped]  # noqa: E402
from oci.identity import models as identity_models  # type: ignore[import-untyped]  # noqa: E402
from oci.response import Response  # type: ignore[import-untyped]  # noqa: E402

PROJECT = "oci-mlops"
ENVIRONMENT = "prod"
NAME = f"{PROJECT}-{ENVIRONMENT}"
REGION = "eu-frankfurt-1"
COMPARTMENT = "ocid1.compartment.oc1..aaaatest"
SUBNET = "ocid1.subnet.oc1.eu-frankfurt-1.aaaaprivate"
VCN = "ocid1.vcn.oc1.eu-frankfurt-1.aaaavcn"
AD = "Uocm:EU-FRANKFURT-1-AD-1"
INVENTORY_VARS = dict(
    auth_type="api_key",
    config_profile="DEFAULT",
    regions=[REGION],
    compartment_ocid=COMPARTMENT,
    project=PROJECT,
    environment=ENVIRONMENT,
)


def _topology_instance_groups() -> set[str]:
    path = ROOT / "ansible/roles/platform_defaults/defaults/main/topology.yml"
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["oci_mlops_topology"]["groups"]
    return {name for name, group in groups.items() if group["oci"] == "instances"}


INSTANCE_GROUPS = _topology_instance_groups()
# Terraform's instances (terraform/locals.tf: "<group>-<n>"), two api hosts.
HOSTS = {
    f"{group}-{n}": f"10.0.1.{10 + i}"
    for i, (group, n) in enumerate(sorted((g, n) for g in INSTANCE_GROUPS for n in ((1, 2) if g == "api" else (1,))))
}
OTHER_PROJECT_IP = "10.0.1.200"


DISPLAY_NAME_TF = 'display_name = replace("${local.name}-${each.key}", "-", "_")'


def _display_name(key: str) -> str:
    # terraform/compute.tf (DISPLAY_NAME_TF); local.name is "<project>-<environment>".
    return f"{NAME}-{key}".replace("-", "_")


def test_the_stubs_name_instances_as_terraform_does():
    assert DISPLAY_NAME_TF in (TF_DIR / "compute.tf").read_text(encoding="utf-8"), (
        "terraform/compute.tf names instances differently: update _display_name"
    )


def _instance(key: str, group: str, project: str = PROJECT) -> core_models.Instance:
    tags = {"project": project, "environment": ENVIRONMENT, "ansible_group": group}
    return core_models.Instance(
        id=f"ocid1.instance.oc1.eu-frankfurt-1.{project}.{key}",
        compartment_id=COMPARTMENT,
        availability_domain=AD,
        display_name=_display_name(key) if project == PROJECT else f"{project}_{key}".replace("-", "_"),
        lifecycle_state="RUNNING",
        region=REGION,
        shape="VM.Standard.E4.Flex",
        time_created="2026-12-01T10:00:00.000Z",
        freeform_tags=tags,
        # OCI adds the Oracle-Tags defaults to every resource (CreatedOn: a group per timestamp).
        defined_tags={
            NAME: {"ansible_group": group},
            "Oracle-Tags": {"CreatedBy": "terraform", "CreatedOn": "2026-12-01T10:00:00.000Z"},
        },
    )


def _instances() -> list[tuple[core_models.Instance, str]]:
    found = [(_instance(key, key.rsplit("-", 1)[0]), ip) for key, ip in HOSTS.items()]
    # Another project in the same compartment, tagged like ours otherwise.
    found.append((_instance("api-1", "api", project="other-project"), OTHER_PROJECT_IP))
    return found


class _Stub:
    """A client: built like the SDK's (config dict, signer=...), answers from the fixtures."""

    calls: list[str] = []

    def __init__(self, config, **kwargs):
        self.config = config
        self.region = config.get("region")

    @staticmethod
    def _response(data):
        return Response(200, {}, data, None)

    def _call(self, name):
        type(self).calls.append(f"{type(self).__name__}.{name}")


class StubIdentityClient(_Stub):
    def get_compartment(self, compartment_id, **kwargs):
        self._call("get_compartment")
        assert compartment_id == COMPARTMENT, compartment_id
        # Named like a playbook group: the plugin's compartment_name group would be `db`.
        return self._response(
            identity_models.Compartment(
                id=COMPARTMENT, compartment_id="ocid1.tenancy.oc1..aaaa", name="db", lifecycle_state="ACTIVE"
            )
        )

    def list_compartments(self, compartment_id, **kwargs):
        self._call("list_compartments")
        return self._response([])

    def list_region_subscriptions(self, tenancy_id, **kwargs):
        self._call("list_region_subscriptions")
        return self._response([identity_models.RegionSubscription(region_name=REGION, is_home_region=True)])


class StubComputeClient(_Stub):
    def list_instances(self, compartment_id, **kwargs):
        self._call("list_instances")
        assert compartment_id == COMPARTMENT, compartment_id
        assert kwargs.get("lifecycle_state") == "RUNNING", kwargs
        return self._response([instance for instance, _ in _instances()])

    def list_vnic_attachments(self, compartment_id, instance_id=None, **kwargs):
        self._call("list_vnic_attachments")
        return self._response(
            [
                core_models.VnicAttachment(
                    id=f"{instance.id}.attachment",
                    instance_id=instance.id,
                    compartment_id=compartment_id,
                    availability_domain=AD,
                    lifecycle_state="ATTACHED",
                    subnet_id=SUBNET,
                    vnic_id=f"{instance.id}.vnic",
                )
                for instance, _ in _instances()
                if instance.id == instance_id
            ]
        )


class StubVirtualNetworkClient(_Stub):
    def get_vnic(self, vnic_id, **kwargs):
        self._call("get_vnic")
        (instance, ip), *_ = [(i, ip) for i, ip in _instances() if f"{i.id}.vnic" == vnic_id]
        return self._response(
            core_models.Vnic(
                id=vnic_id,
                compartment_id=COMPARTMENT,
                availability_domain=AD,
                display_name=f"{instance.display_name}-vnic",
                hostname_label=instance.display_name.replace("_", "-"),
                is_primary=True,
                lifecycle_state="AVAILABLE",
                private_ip=ip,
                public_ip=None,  # no public IPs (private subnet)
                subnet_id=SUBNET,
            )
        )

    def get_subnet(self, subnet_id, **kwargs):
        self._call("get_subnet")
        return self._response(
            core_models.Subnet(
                id=subnet_id,
                compartment_id=COMPARTMENT,
                vcn_id=VCN,
                cidr_block="10.0.1.0/24",
                dns_label="private",
                display_name=f"{NAME}-private",
                lifecycle_state="AVAILABLE",
                prohibit_public_ip_on_vnic=True,
            )
        )

    def list_ipv6s(self, vnic_id=None, **kwargs):
        self._call("list_ipv6s")
        return self._response([])


class StubDatabaseClient(_Stub):
    """fetch_db_hosts is false: the MySQL DB System is not a host. Any call fails."""

    def __getattr__(self, name):
        raise AssertionError(f"DatabaseClient.{name} called with fetch_db_hosts: false")


STUBS = {
    "IdentityClient": StubIdentityClient,
    "ComputeClient": StubComputeClient,
    "VirtualNetworkClient": StubVirtualNetworkClient,
    "DatabaseClient": StubDatabaseClient,
}


def _render_inventory() -> str:
    tftpl = load_plugin(TF_DIR / "tests" / "tftpl.py")  # terraform/tests' renderer of templatefile()
    text = (TF_DIR / "templates" / "inventory.oci.yml.tftpl").read_text(encoding="utf-8")
    return tftpl.render(text, INVENTORY_VARS)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """ansible_collections/oracle/oci from the vendored files, as the only
    collection path of a fresh collection finder (the previous one restored after)."""
    missing = [name for name in VENDORED_FILES if not (VENDORED / name).is_file()]
    if missing:
        pytest.fail(
            f"the vendored oracle.oci collection is incomplete in {VENDORED}: missing {missing} "
            "(copy them byte-identical from oracle/oci-ansible-collection 5.5.0, see its README.md)",
            pytrace=False,
        )
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    base = tmp_path_factory.mktemp("collections")
    shutil.copytree(VENDORED, base / "ansible_collections" / "oracle" / "oci")

    def purge() -> dict:
        """Take every ansible_collections module out of sys.modules: a test
        that ran before may have imported the package `ansible_collections`
        without a collection finder (a plain namespace package whose path
        lacks this one), and imports below it would resolve there."""
        taken = {
            n: m for n, m in sys.modules.items() if n == "ansible_collections" or n.startswith("ansible_collections.")
        }
        for name in taken:
            del sys.modules[name]
        return taken

    previous = AnsibleCollectionConfig.collection_finder
    before = purge()
    finder = _AnsibleCollectionFinder(
        [str(Path(str(importlib.import_module("ansible._internal").__file__)).parent), str(base)], False
    )
    finder._install()
    try:
        module = importlib.import_module(PLUGIN_MODULE)
        assert Path(str(module.__file__)).resolve().is_relative_to(base.resolve()), module.__file__
        yield module
    finally:
        _AnsibleCollectionFinder._remove()
        purge()
        sys.modules.update(before)
        if previous is not None:
            previous._install()


def _load(collection, monkeypatch, tmp_path, text: str):
    """Groups {name: sorted hosts} and the InventoryManager, loading `text` as an .oci.yml source."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    for name, stub in STUBS.items():
        monkeypatch.setattr(collection, name, stub)
    # The plugin logs the collection's latest release from api.github.com (even without debug).
    monkeypatch.setattr(collection.oci_version_utils, "get_oci_ansible_collection_latest_version", lambda: None)
    # No OCI config file is read (the stubs need none).
    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "no-oci-config"))
    # Only this plugin, and a source it cannot parse fails the test.
    C = importlib.import_module("ansible.constants")
    monkeypatch.setattr(C, "INVENTORY_ENABLED", ["oracle.oci.oci"])
    monkeypatch.setattr(C, "INVENTORY_UNPARSED_IS_FAILED", True)
    monkeypatch.setattr(C, "INVENTORY_ANY_UNPARSED_IS_FAILED", True)
    inventory_loader._clear_caches()
    _Stub.calls = []

    source = tmp_path / "inventory.oci.yml"  # the plugin only accepts *.oci.yml
    source.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        manager = InventoryManager(loader=DataLoader(), sources=[str(source)])
    plugin = inventory_loader.get("oracle.oci.oci")
    assert plugin is not None and type(plugin).__module__ == PLUGIN_MODULE, plugin
    groups = {name: sorted(h.name for h in group.get_hosts()) for name, group in manager.groups.items()}
    return groups, manager


def test_the_vendored_plugin_is_oracle_oci_5_5_0(collection):
    assert collection.__name__ == PLUGIN_MODULE
    assert yaml.safe_load((VENDORED / "galaxy.yml").read_text(encoding="utf-8"))["version"] == "5.5.0"
    assert collection.oci_version.__version__ == "5.5.0"
    assert collection.HAS_OCI_PY_SDK, "the plugin could not import the OCI SDK"


def test_the_rendered_inventory_gives_exactly_the_playbook_groups(collection, monkeypatch, tmp_path):
    groups, manager = _load(collection, monkeypatch, tmp_path, _render_inventory())

    assert set(groups) == INSTANCE_GROUPS | {"all_hosts", "all", "ungrouped"}, (
        f"groups beyond the topology's instance groups {sorted(INSTANCE_GROUPS)}: "
        f"{sorted(set(groups) - INSTANCE_GROUPS - {'all_hosts', 'all', 'ungrouped'})}"
    )
    assert "db" not in groups, "the compartment's name (db) became a group: the playbooks would run in lab mode"
    assert not [g for g in groups if g.startswith(("region_", "tag_", "Uocm")) or "CreatedOn" in g or "#" in g]
    for key, ip in HOSTS.items():
        assert ip in groups[key.rsplit("-", 1)[0]], (key, ip, groups)
    assert (
        groups["api"] == sorted(ip for key, ip in HOSTS.items() if key.startswith("api-")) and len(groups["api"]) == 2
    )
    # Hosts by private IP, only this project's.
    assert groups["all"] == sorted(HOSTS.values()), groups["all"]
    assert groups["all_hosts"] == sorted(HOSTS.values())
    assert OTHER_PROJECT_IP not in groups["all"], "the other project's instance was not filtered out"
    assert groups["ungrouped"] == []
    # Each host in exactly one playbook group.
    for ip in HOSTS.values():
        assert sum(ip in groups[g] for g in INSTANCE_GROUPS) == 1, ip
    # The plugin really went through the stubs (the VNIC path gives the private IP).
    for call in (
        "StubIdentityClient.get_compartment",
        "StubComputeClient.list_instances",
        "StubComputeClient.list_vnic_attachments",
        "StubVirtualNetworkClient.get_vnic",
        "StubVirtualNetworkClient.get_subnet",
    ):
        assert call in _Stub.calls, (call, sorted(set(_Stub.calls)))
    host = manager.get_host(HOSTS["api-1"])
    assert host.vars["display_name"] == _display_name("api-1")
    assert host.vars["private_ip"] == HOSTS["api-1"] and host.vars["public_ip"] is None
    assert host.vars["compartment_name"] == "db"
    # The plugin sets a host variable named after the display name: a valid
    # variable name (no hyphens; ansible-core deprecates invalid ones).
    assert _display_name("api-1") in host.vars and _display_name("api-1").isidentifier()


def test_without_default_groups_the_plugin_adds_its_groups(collection, monkeypatch, tmp_path):
    """The same stubs, the template's `default_groups: []` removed: the
    compartment (db), region, AD and tag groups appear, so the check above can fail."""
    data = yaml.safe_load(_render_inventory())
    assert data.pop("default_groups") == []
    groups, _ = _load(collection, monkeypatch, tmp_path, yaml.safe_dump(data, sort_keys=False))

    extra = set(groups) - INSTANCE_GROUPS - {"all_hosts", "all", "ungrouped"}
    assert "db" in extra and groups["db"] == sorted(HOSTS.values()), sorted(extra)
    assert "region_eu-frankfurt-1" in extra, sorted(extra)
    assert "Uocm:EU-FRANKFURT-1-AD-1".replace(":", "_") in extra, sorted(extra)
    assert f"tag_project={PROJECT}" in extra and "tag_ansible_group=api" in extra, sorted(extra)
    assert [g for g in extra if "CreatedOn=" in g], sorted(extra)
    assert OTHER_PROJECT_IP not in groups["all"]

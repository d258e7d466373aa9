"""Choose the cgroup bind mount a container's systemd can boot with."""

from __future__ import annotations

import ipaddress
import zlib

from ansible.errors import AnsibleFilterError

# systemd 258 dropped support for the legacy and hybrid cgroup v1 hierarchies.
SYSTEMD_CGROUP2_ONLY = 258
# Set by lab/build-image.sh on the images it builds.
SYSTEMD_VERSION_LABEL = "org.oci-mlops.systemd-version"


def lab_cgroup_volume(layout: str, systemd_version: int | str) -> str:
    """Return the docker volume spec for /sys/fs/cgroup.

    layout: "unified" (cgroup v2 only), "hybrid" (v1 controllers with a v2
    hierarchy at /sys/fs/cgroup/unified) or "legacy" (v1 only).
    """
    try:
        version = int(systemd_version)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"lab_cgroup_volume: systemd version {systemd_version!r} is not a number") from exc
    if layout == "unified":
        return "/sys/fs/cgroup:/sys/fs/cgroup:rw"
    if layout == "hybrid":
        if version >= SYSTEMD_CGROUP2_ONLY:
            return "/sys/fs/cgroup/unified:/sys/fs/cgroup:rw"
        return "/sys/fs/cgroup:/sys/fs/cgroup:rw"
    if layout == "legacy":
        if version >= SYSTEMD_CGROUP2_ONLY:
            raise AnsibleFilterError(
                f"systemd {version} needs cgroup v2, but this Docker host has only cgroup v1 "
                "(boot the host with systemd.unified_cgroup_hierarchy=1, or use an image with systemd < 258)"
            )
        return "/sys/fs/cgroup:/sys/fs/cgroup:rw"
    raise AnsibleFilterError(f"lab_cgroup_volume: unknown cgroup layout {layout!r}")


def lab_image_systemd_versions(image_info_results: list[dict], default: int) -> dict[str, int]:
    """Map each image name to the systemd version its label records.

    image_info_results: the `results` of a docker_image_info task looped over
    image names. Images without the label get `default`.
    """
    versions = {}
    for result in image_info_results:
        labels = (result["images"][0].get("Config") or {}).get("Labels") or {} if result["images"] else {}
        versions[result["item"]] = int(labels.get(SYSTEMD_VERSION_LABEL, default))
    return versions


def lab_static_addresses(names: list[str], subnet: str, taken: dict[str, str]) -> dict[str, str]:
    """Give each host a fixed address on the lab network, as OCI instances have.

    Docker hands out addresses in start order, so restarted containers may swap
    them; services bound to their address and peers' /etc/hosts then break.
    taken maps every container already on the network (running or not) to its
    address: a host keeps its own, a new host gets the first free address after
    a hash of its name (so scenarios creating hosts at the same time rarely
    pick the same one).
    """
    network = ipaddress.ip_network(subnet)
    # .1 is Docker's gateway; keep the broadcast address out.
    pool = [str(a) for a in network.hosts()][1:]
    if not pool:
        raise AnsibleFilterError(f"lab_static_addresses: subnet {subnet} has no room")
    used = {a for a in taken.values() if a}
    result = {}
    for name in names:
        if taken.get(name):
            result[name] = taken[name]
            continue
        start = zlib.crc32(name.encode()) % len(pool)
        for offset in range(len(pool)):
            candidate = pool[(start + offset) % len(pool)]
            if candidate not in used:
                break
        else:
            raise AnsibleFilterError(f"lab_static_addresses: no free address left in {subnet}")
        result[name] = candidate
        used.add(candidate)
    return result


def lab_network_addresses(containers: list[dict], network: str) -> dict[str, str]:
    """Map each container of a docker_host_info listing (verbose) to its address on network.

    The fixed address (IPAMConfig) when it has one, else the one it runs with.
    """
    addresses = {}
    for container in containers:
        settings = ((container.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
        address = (settings.get("IPAMConfig") or {}).get("IPv4Address") or settings.get("IPAddress") or ""
        for name in container.get("Names") or []:
            addresses[name.lstrip("/")] = address
    return addresses


class FilterModule:
    """Ansible filters of the lab_containers role."""

    def filters(self):
        return {
            "lab_cgroup_volume": lab_cgroup_volume,
            "lab_image_systemd_versions": lab_image_systemd_versions,
            "lab_static_addresses": lab_static_addresses,
            "lab_network_addresses": lab_network_addresses,
        }

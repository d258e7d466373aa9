"""What several hosts of a group need first: the topology's
`scale_out_requires` (ansible/roles/platform_defaults/defaults/main/topology.yml),
today several airflow hosts (HA schedulers and api-servers) only with Celery
workers (airflow_worker). The configuration is EVALUATED for given
instance_groups (tests/hcleval.py) as in test_optional_groups.py: the NSGs'
preconditions as Terraform would decide them at plan. The rule is generic:
other topologies (without the key, with it on another service) are
evaluated too.
"""

from __future__ import annotations

import copy
import re

import hcleval
import pytest
import test_optional_groups as og

TOPOLOGY = og.TOPOLOGY
SERVICES = og.SERVICES
NSG = og.NSG
_model, _refusals = og._model, og._refusals


def _code(text) -> str:
    return re.sub(r"\s+", " ", str(text))


def _topology(**requires) -> dict:
    """The topology with scale_out_requires set per service (None: removed)."""
    topology = copy.deepcopy(TOPOLOGY)
    for service, groups in requires.items():
        topology["services"][service].pop("scale_out_requires", None)
        if groups is not None:
            topology["services"][service]["scale_out_requires"] = groups
    return topology


def _without_scale_out_requires() -> dict:
    return _topology(**{name: None for name in SERVICES})


# --------------------------------------------------------------------------
# The topology today
# --------------------------------------------------------------------------
def test_airflow_scales_out_only_with_celery_workers():
    assert SERVICES["airflow"]["scale_out"] is True
    assert SERVICES["airflow"]["scale_out_requires"] == ["airflow_worker"]
    # The workers need the broker already (its clients; test_optional_groups.py).
    assert "airflow_worker" in SERVICES["broker"]["clients"]
    # Every listed group is a group of the topology.
    for name, svc in SERVICES.items():
        for group in svc.get("scale_out_requires", []):
            assert group in TOPOLOGY["groups"], (name, group)


def test_the_rule_reads_the_topology_and_names_no_group(tf):
    """The locals read scale_out_requires from the topology; no group or
    service is spelled in their code; an NSG precondition refuses on them."""
    code = _code(tf.locals()["scale_out_requirements"]) + _code(tf.locals()["unmet_scale_out_requirements"])
    assert "try(svc.scale_out_requires, [])" in code
    assert "local.group_counts[group] > 1" in code
    for name in set(TOPOLOGY["groups"]) | set(SERVICES):
        assert not re.search(rf"\b{name}\b", code), (name, code)
    nsg = tf.resources(NSG)[(NSG, "service")]
    conditions = [_code(p["condition"]) for p in nsg["lifecycle"][0]["precondition"]]
    assert "${length(local.unmet_scale_out_requirements) == 0}" in conditions, conditions


# --------------------------------------------------------------------------
# What the plan refuses and accepts with today's topology
# --------------------------------------------------------------------------
REFUSED = [
    {"airflow": 2},
    {"airflow": 2, "broker": 1},  # a broker is not a worker
    {"airflow": 3, "broker": 1, "mlflow": 2, "api": 2, "edge": 2},
    {"airflow": 10},
]


@pytest.mark.parametrize("counts", REFUSED, ids=lambda c: ",".join(f"{g}={n}" for g, n in c.items()))
def test_several_airflow_hosts_without_workers_are_refused_by_name(tf, counts):
    (message,) = _refusals(_model(tf, counts))
    want = (
        f"instance_groups: airflow has count {counts['airflow']}, but its service airflow runs on several hosts "
        "only with hosts in airflow_worker (its scale_out_requires in the topology), and there are none: "
        "count 0 for airflow_worker. "
    )
    assert message.startswith(want), message
    assert "docs/scaling.md" in message


ACCEPTED = [
    {"airflow": 1},  # one airflow host needs no worker (LocalExecutor)
    {"airflow": 2, "broker": 1, "airflow_worker": 2},
    {"airflow": 2, "broker": 1, "airflow_worker": 1},
    {"airflow": 10, "broker": 1, "airflow_worker": 10, "mlflow": 3, "api": 2, "edge": 2},
]


@pytest.mark.parametrize("counts", ACCEPTED, ids=lambda c: ",".join(f"{g}={n}" for g, n in c.items()))
def test_several_airflow_hosts_with_workers_are_accepted(tf, counts):
    model = _model(tf, counts)
    assert _refusals(model) == []
    assert model.local("unmet_scale_out_requirements") == []
    airflow = {k for k, v in model.local("instances").items() if v["group"] == "airflow"}
    assert airflow == {f"airflow-{i}" for i in range(1, counts["airflow"] + 1)}


def test_workers_without_the_broker_are_still_refused_for_the_broker_alone(tf):
    """airflow 2 with workers meets scale_out_requires; the workers' own need
    (the broker) is the other precondition's, named once."""
    (message,) = _refusals(_model(tf, {"airflow": 2, "airflow_worker": 2}))
    assert "group broker has count 0" in message and "scale_out_requires" not in message


def test_the_precondition_is_what_refuses(tf):
    """Negative control: without the precondition (a variant of the parsed
    HCL) several airflow hosts without workers would pass the plan."""
    variant = copy.deepcopy(tf)
    body = variant.parsed["security.tf"]["resource"][0]['"oci_core_network_security_group"']['"service"']
    pres = body["lifecycle"][0]["precondition"]
    kept = [p for p in pres if "unmet_scale_out_requirements" not in p["condition"]]
    assert len(kept) == len(pres) - 1
    body["lifecycle"][0]["precondition"] = kept
    assert _refusals(_model(variant, {"airflow": 2})) == []
    assert _refusals(_model(tf, {"airflow": 2})) != []


# --------------------------------------------------------------------------
# Generic: other topologies
# --------------------------------------------------------------------------
def test_a_topology_without_scale_out_requires_lets_any_scale_out_group_grow(tf):
    topology = _without_scale_out_requires()
    assert not any("scale_out_requires" in svc for svc in topology["services"].values())
    for counts in ({"airflow": 2}, {"airflow": 3, "mlflow": 2, "api": 2, "edge": 2}, {}):
        model = _model(tf, counts, locals_={"topology": topology})
        assert _refusals(model) == [], counts
        assert model.local("unmet_scale_out_requirements") == []
    # The other rules still hold: the broker does not scale out.
    (message,) = _refusals(_model(tf, {"broker": 2, "airflow": 2}, locals_={"topology": topology}))
    assert "broker has count 2" in message


def test_the_requirement_follows_the_topology_to_another_service(tf):
    """mlflow requiring the broker, airflow requiring nothing: the rule
    names mlflow and the broker, and lets airflow grow alone."""
    topology = _topology(mlflow=["broker"], airflow=None)
    locals_ = {"topology": topology}
    assert _refusals(_model(tf, {"airflow": 2}, locals_=locals_)) == []
    assert _refusals(_model(tf, {"mlflow": 1}, locals_=locals_)) == []
    assert _refusals(_model(tf, {"mlflow": 2, "broker": 1}, locals_=locals_)) == []
    (message,) = _refusals(_model(tf, {"mlflow": 2}, locals_=locals_))
    assert "mlflow has count 2, but its service mlflow runs on several hosts only with hosts in broker" in message
    assert "count 0 for broker" in message and "airflow" not in message


def test_every_missing_group_and_every_service_is_named(tf):
    """Two listed groups without hosts, two groups refused: one message,
    each group with its count, service and missing groups."""
    topology = _topology(mlflow=["airflow_worker", "broker"])
    (message,) = _refusals(_model(tf, {"mlflow": 2, "airflow": 3}, locals_={"topology": topology}))
    assert "airflow has count 3, but its service airflow " in message
    assert "mlflow has count 2, but its service mlflow " in message
    assert "count 0 for airflow_worker, broker" in message
    assert message.count("count 0 for airflow_worker") == 2
    # One of the two present: only the other is named.
    (message,) = _refusals(_model(tf, {"mlflow": 2, "broker": 1}, locals_={"topology": topology}))
    assert "count 0 for airflow_worker" in message and "count 0 for airflow_worker, broker" not in message


def test_a_managed_group_is_always_there_and_an_unknown_name_never(tf):
    """A managed group (OCI service, no instances, no count) meets the
    requirement; a name that is no group of the topology is refused by name."""
    locals_ = {"topology": _topology(mlflow=["db"])}
    assert _refusals(_model(tf, {"mlflow": 2}, locals_=locals_)) == []
    locals_ = {"topology": _topology(mlflow=["no_such_group"])}
    (message,) = _refusals(_model(tf, {"mlflow": 2}, locals_=locals_))
    assert "count 0 for no_such_group" in message
    assert _refusals(_model(tf, {"mlflow": 1}, locals_=locals_)) == []


def test_the_evaluator_agrees_with_a_computation_from_the_topology(tf):
    """For every pair of counts of the scale-out groups and the optional
    groups, what the HCL refuses is what the topology says."""
    instance = set(og.INSTANCE_GROUPS)
    managed = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "managed"}
    for airflow in (1, 2):
        for workers in (0, 1):
            counts = {"airflow": airflow, "airflow_worker": workers, "broker": 1}
            model = _model(tf, counts)
            groups = model.vars["instance_groups"]
            want = sorted(
                (svc["group"], name)
                for name, svc in SERVICES.items()
                if svc["group"] in instance and groups[svc["group"]]["count"] > 1
                for req in svc.get("scale_out_requires", [])
                if req not in managed and groups.get(req, {}).get("count", 0) < 1
            )
            got = sorted(
                (m.split(" has count ")[0], m.split("its service ")[1].split(" ")[0])
                for m in model.local("unmet_scale_out_requirements")
            )
            assert got == want, counts
            assert bool(want) == (airflow > 1 and workers == 0)


def test_the_evaluator_fails_loudly_on_a_broken_topology(tf):
    """scale_out_requires must be a list: a string is not silently iterated."""
    topology = _topology(airflow="airflow_worker")
    with pytest.raises(hcleval.EvalError):
        _model(tf, {"airflow": 2}, locals_={"topology": topology}).local("unmet_scale_out_requirements")

# oci-mlops: the two commands that matter are `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Colour in a terminal, plain text in CI logs.
ifeq ($(CI),true)
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
else
export PY_COLORS := 1
export ANSIBLE_FORCE_COLOR := 1
endif

# Lab images: built locally from Debian's archive unless you point these at
# images you already have (e.g. LAB_IMAGE=debian:12 from a registry).
DEFAULT_LAB_IMAGE := oci-mlops-lab/debian:bookworm
DEFAULT_LAB_DB_IMAGE := oci-mlops-lab/debian:sid
export LAB_IMAGE ?= $(DEFAULT_LAB_IMAGE)
export LAB_DB_IMAGE ?= $(DEFAULT_LAB_DB_IMAGE)

# Every scenario under molecule/, site (the whole platform: end-to-end, drift
# and fault suites over site.yml) included. SCENARIOS="a b" runs some.
SCENARIOS ?= $(patsubst molecule/%/molecule.yml,%,$(sort $(wildcard molecule/*/molecule.yml)))
# The scenarios `make test` runs: every one (upgrade's db host also carries
# the db suites: the mysql_server, mysql_schemas and object_store tests).
TEST_SCENARIOS ?= $(SCENARIOS)
TIMED := scripts/timed

.PHONY: help prereqs venv images lab lab-up lab-converge lab-info lab-destroy drift converge \
        backup restore restore-needs-an-id rotate rotate-needs-a-name lint unit dags-test dags-test-run dags-lock locks outside-test scale-test outside-lock app-test terraform-test publish-dags molecule site-test upgrade-test test timings-reset clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

prereqs: ## Install Docker and debootstrap if missing, start dockerd
	@scripts/host-prereqs

venv: ## Control-node virtualenv (.venv) and Ansible collections
	@scripts/bootstrap

# Both images at once (each is mostly downloads): the slower one's time.
images: prereqs ## Build the lab images (debootstrap + docker import) if missing
	@$(TIMED) images bash -c 'pids=(); \
	  if [[ "$$LAB_IMAGE" == "$(DEFAULT_LAB_IMAGE)" ]]; then lab/build-image.sh bookworm $(DEFAULT_LAB_IMAGE) & pids+=($$!); fi; \
	  if [[ "$$LAB_DB_IMAGE" == "$(DEFAULT_LAB_DB_IMAGE)" ]]; then lab/build-image.sh sid $(DEFAULT_LAB_DB_IMAGE) & pids+=($$!); fi; \
	  status=0; for p in "$${pids[@]}"; do wait "$$p" || status=1; done; exit $$status'

# SCALE=2: the lab's scale profile (inventory/lab-scale: two MLflow and two
# API hosts behind the edge, its own containers, network and ports;
# docs/scaling.md). SCALE=1 (default): the small lab, inventory/lab.
SCALE ?= 1
LAB_INVENTORY := $(if $(filter 1,$(SCALE)),inventory/lab,$(if $(filter 2,$(SCALE)),inventory/lab-scale,$(error SCALE must be 1 or 2, not '$(SCALE)')))

lab: venv images ## Start the lab hosts, converge site.yml on them, print what is where (SCALE=2: the scale profile)
	@$(TIMED) lab-up ansible-playbook ansible/playbooks/lab-up.yml -i $(LAB_INVENTORY)
	@$(TIMED) lab-converge ansible-playbook site.yml -i $(LAB_INVENTORY)
	@ansible-playbook ansible/playbooks/lab-info.yml -i $(LAB_INVENTORY)

lab-destroy: venv ## Remove the lab hosts (images and caches stay; SCALE=2: the scale profile's)
	ansible-playbook ansible/playbooks/lab-destroy.yml -i $(LAB_INVENTORY)

INVENTORY ?= $(LAB_INVENTORY)
# Ansible's selectors for drift and converge, each passed only when set:
# `make converge LIMIT=lab-api TAGS=mlflow`.
SELECTORS := $(if $(LIMIT),--limit '$(LIMIT)') $(if $(TAGS),--tags '$(TAGS)')

drift: venv ## Report drift per host (check mode, changes nothing); scripts/drift-report exits 2 drift, 3 not all checked, 1 failed. LIMIT, TAGS, INVENTORY as for converge
	@scripts/drift-report -i $(INVENTORY) $(SELECTORS)

converge: venv ## Converge site.yml (repairs drift). LIMIT=lab-api TAGS=mlflow narrow it; INVENTORY=inventory/oci for OCI
	ansible-playbook site.yml -i $(INVENTORY) $(SELECTORS)

lint: venv ## yamllint, ansible-lint (production profile), ruff (lint + format check) and mypy over all Python
	@$(TIMED) yamllint yamllint --strict .
	@$(TIMED) ansible-lint ansible-lint
	@$(TIMED) ruff ruff check .
	@$(TIMED) ruff-format ruff format --check .
	@$(TIMED) mypy scripts/mypy-all

unit: venv ## pytest unit tests of the repository (filters, specs, inventory)
	@$(TIMED) unit pytest -q --durations=25 tests/unit

# DAG tests: two cached virtualenvs built from locks with hashes (pip
# --require-hashes), each rebuilt from scratch only when its lock changes
# (stamp files): Airflow 3.3.2 under the airflow role's constraints (DagBag,
# dag.test()), and the pipelines environment (the packages the Airflow hosts'
# pipelines venv gets, plus the MLflow server and pytest). `make dags-lock`
# regenerates the pipelines' freeze and locks; `make locks` all the locks.
PYTHON311 ?= python3.11
DAGS_TEST_DIR := $(CURDIR)/.cache/dags-test
DAGS_AIRFLOW_VENV := $(DAGS_TEST_DIR)/airflow-venv
DAGS_PIPELINES_VENV := $(DAGS_TEST_DIR)/pipelines-venv
PIPELINES_CONSTRAINTS := ansible/roles/airflow/files/pipelines-constraints-python3.11.txt
PIPELINES_PACKAGES := mlflow-skinny==3.17.2 numpy==2.4.6 pandas==3.1.1 scikit-learn==1.9.1 skops==0.16.0

$(DAGS_AIRFLOW_VENV)/.installed: tests/dags/requirements-airflow.txt
	rm -rf $(DAGS_AIRFLOW_VENV)
	$(PYTHON311) -m venv $(DAGS_AIRFLOW_VENV)
	$(DAGS_AIRFLOW_VENV)/bin/python -m pip install --quiet --no-input --require-hashes -r tests/dags/requirements-airflow.txt
	touch $@

$(DAGS_PIPELINES_VENV)/.installed: tests/dags/requirements-pipelines.txt
	rm -rf $(DAGS_PIPELINES_VENV)
	$(PYTHON311) -m venv $(DAGS_PIPELINES_VENV)
	$(DAGS_PIPELINES_VENV)/bin/python -m pip install --quiet --no-input --no-deps --require-hashes -r tests/dags/requirements-pipelines.txt
	touch $@

dags-test: ## DAGs: import in a real Airflow 3.3.2 DagBag, tasks and dag.test() against a real MLflow
	@$(TIMED) dags-test $(MAKE) --no-print-directory dags-test-run

dags-test-run: $(DAGS_AIRFLOW_VENV)/.installed $(DAGS_PIPELINES_VENV)/.installed
	$(DAGS_PIPELINES_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/dags/test_pipeline_tasks.py tests/dags/test_mlflow_grants.py
	rm -rf $(DAGS_TEST_DIR)/airflow-home && mkdir -p $(DAGS_TEST_DIR)/airflow-home
	AIRFLOW_HOME=$(DAGS_TEST_DIR)/airflow-home \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(DAGS_TEST_DIR)/airflow-home/airflow.db \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__LOAD_EXAMPLES=False \
	OCI_MLOPS_PIPELINES_PYTHON=$(DAGS_PIPELINES_VENV)/bin/python DAGS_TEST_PIPELINES_VENV=$(DAGS_PIPELINES_VENV) \
	  $(DAGS_AIRFLOW_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/dags/test_dags_airflow.py tests/dags/test_airflow_local_settings.py

dags-lock: ## Regenerate the pipelines constraints (airflow role) and the locks made from them (role, tests/dags)
	rm -rf $(DAGS_TEST_DIR)/lock && $(PYTHON311) -m venv $(DAGS_TEST_DIR)/lock
	$(DAGS_TEST_DIR)/lock/bin/python -m pip install --quiet --no-input $(PIPELINES_PACKAGES)
	sed -n '/^#/p' $(PIPELINES_CONSTRAINTS) > $(DAGS_TEST_DIR)/header
	{ cat $(DAGS_TEST_DIR)/header; $(DAGS_TEST_DIR)/lock/bin/python -m pip freeze; } > $(PIPELINES_CONSTRAINTS)
	rm -rf $(DAGS_TEST_DIR)/lock $(DAGS_TEST_DIR)/header
	scripts/locks ansible/roles/airflow/files/locks/pipelines.in tests/dags/requirements-pipelines.in

# Every virtualenv installs from a lock with hashes (pip install
# --require-hashes): the roles' on the hosts, the control node's, the tests'.
# Each <name>.txt is compiled from the <name>.in beside it (uv pip compile
# --universal --generate-hashes, one lock for every Python from the floor the
# .in names); every .in of the repository is such a source. Pins already in
# a lock are kept unless its .in needs others. `make -C app lock` and `make
# dags-lock` freeze new versions and run it for the locks made from them.
# LOCKS="a.in b.in" for some.
locks: ## Regenerate every lock with hashes (roles' virtualenvs, control node, tests) from the .in beside it
	scripts/locks $(LOCKS)

# Outside-in suite (tests/outside): the platform as its users see it, from the
# control node through the URLs and credentials site.yml writes for them
# (<inventory>/.secrets/client.env), with the clients users have (MLflow's,
# Airflow's REST API, curl, headless Chromium); it also runs
# docs/quickstart.md. Its environment: a cached virtualenv built from the lock
# with hashes tests/outside/requirements.txt (`make outside-lock` or `make
# locks` regenerates it).
# molecule/site runs it against its own platform (OCI_MLOPS_INVENTORY).
OUTSIDE_VENV := $(CURDIR)/.cache/outside-test/venv

$(OUTSIDE_VENV)/.installed: tests/outside/requirements.txt
	rm -rf $(OUTSIDE_VENV)
	$(PYTHON311) -m venv $(OUTSIDE_VENV)
	$(OUTSIDE_VENV)/bin/python -m pip install --quiet --no-input --require-hashes -r tests/outside/requirements.txt
	touch $@

outside-test: venv $(OUTSIDE_VENV)/.installed ## The users' view of a converged platform (the lab; INVENTORY=… for another)
	@$(TIMED) outside-test env OCI_MLOPS_INVENTORY=$(abspath $(INVENTORY)) \
	  $(OUTSIDE_VENV)/bin/python -m pytest -q -p no:cacheprovider --timeout=1800 -x tests/outside

# The scale profile's suite (docs/scaling.md): `make lab SCALE=2` first (not in
# `make test`: a second platform of nine hosts does not fit CI's time). The
# users' suite against it, then tests/scale: spread over both hosts of each
# group, and no failed request while a host's service is stopped.
# Two pytest runs: each suite's test modules import helpers from their own
# conftest, which one run would load under one name.
scale-test: venv $(OUTSIDE_VENV)/.installed ## tests/outside and tests/scale against the scale lab (make lab SCALE=2 first)
	@$(TIMED) scale-test env OCI_MLOPS_INVENTORY=$(abspath inventory/lab-scale) bash -c ' \
	  $(OUTSIDE_VENV)/bin/python -m pytest -q -p no:cacheprovider --timeout=1800 -x tests/outside && \
	  $(OUTSIDE_VENV)/bin/python -m pytest -q -p no:cacheprovider --timeout=1800 -x tests/scale'

outside-lock: ## Regenerate tests/outside/requirements.txt (with hashes) from requirements.in
	scripts/locks tests/outside/requirements.in

app-test: ## The app/ package's own suite (serving API and dashboard against a real MLflow)
	@$(TIMED) app-test $(MAKE) --no-print-directory -C app test

terraform-test: ## Terraform: HCL vs site.yml/roles, checkov, fmt, workflow schema (no cloud needed)
	@$(TIMED) terraform-test $(MAKE) --no-print-directory -C terraform test

# publish-dags refuses a folder without DAGs and a publish deleting more than
# half the bucket (airflow role, docs/airflow.md); SRC=/path publishes another
# folder, ALLOW_MASS_DELETE=1 lets a mass deletion through.
publish-dags: venv ## Upload dags/ to the DAG bucket (lab: its S3 stand-in). INVENTORY=inventory/oci for OCI; SRC=folder, ALLOW_MASS_DELETE=1
	ansible-playbook ansible/playbooks/publish-dags.yml -i $(INVENTORY) \
	  $(if $(SRC),-e publish_dags_src='$(abspath $(SRC))') $(if $(ALLOW_MASS_DELETE),-e publish_dags_allow_mass_delete=true)

# Backups (backup role, docs/operations.md): the schemas host's timer dumps
# both schemas to the backups bucket; `make backup` runs one now and prints
# its id; `make restore BACKUP=<id>` verifies it, puts back the secrets the
# controller lacks (age identity: OCI_MLOPS_BACKUP_AGE_IDENTITY), stops
# MLflow and Airflow, restores both schemas and converges (services healthy).
restore-needs-an-id:
	@if [[ -z "$(BACKUP)" ]]; then echo "make restore: BACKUP=<id> is required (ids: make backup prints them; oci-mlops-backup list on the schemas host)" >&2; exit 2; fi

backup: venv ## Back up both schemas now (schemas host's backup unit); prints BACKUP=<id>. INVENTORY as for converge
	ansible-playbook ansible/playbooks/backup.yml -i $(INVENTORY)

restore: restore-needs-an-id venv ## Restore backup BACKUP=<id> (verify, secrets, stop, restore both schemas, converge). INVENTORY as for converge
	ansible-playbook ansible/playbooks/restore.yml -i $(INVENTORY) -e backup_restore_id='$(BACKUP)'

# Rotation (playbooks/rotate.yml, docs/operations.md "Rotation"): one declared
# secret anew, generated on the controller, the previous value kept valid
# where the service allows an overlap, every host converged. FINISH=1 ends
# the overlap of a secret that keeps it until then (api_key).
rotate-needs-a-name:
	@if [[ -z "$(SECRET)" ]]; then echo "make rotate: SECRET=<name> is required (the names: ansible/roles/platform_defaults/defaults/main/secrets.yml; an unknown name lists them)" >&2; exit 2; fi

rotate: rotate-needs-a-name venv ## Rotate one secret deliberately: SECRET=<name> [FINISH=1]. INVENTORY as for converge
	ansible-playbook ansible/playbooks/rotate.yml -i $(INVENTORY) -e oci_mlops_rotate_secret='$(SECRET)' \
	  $(if $(FINISH),-e oci_mlops_rotate_finish=true)

# Scenarios run in MOLECULE_JOBS parallel lanes (logs in artifacts/molecule/).
MOLECULE_JOBS ?= 2

molecule: venv images ## molecule test for every scenario (SCENARIOS="a b" for some, MOLECULE_JOBS=1 for one at a time)
	@scripts/lanes $(MOLECULE_JOBS) $(SCENARIOS)

site-test: venv images ## molecule/site alone: the whole platform, end-to-end, drift and fault suites
	@scripts/lanes 1 site

upgrade-test: venv images ## molecule/upgrade alone: the previous release, its data, the current pins, the db host's suites
	@scripts/lanes 1 upgrade

# Everything CI runs, in MOLECULE_JOBS lanes (scripts/lanes): the image build
# and the scenarios overlap the stages that need no lab host, so molecule/site
# (the longest job) starts as soon as the images exist. Every stage runs even
# when another failed; the summary lists what failed.
TEST_STAGES := make:images make:lint make:unit make:dags-test make:app-test make:terraform-test

test: timings-reset venv ## Everything CI runs: lint, unit, DAG, app, Terraform tests and every molecule scenario, in parallel lanes
	@status=0; scripts/lanes $(MOLECULE_JOBS) $(TEST_STAGES) $(TEST_SCENARIOS) || status=$$?; \
	echo "timings:" && cat artifacts/timings.txt; \
	echo "stages: $$(grep -c ' ok$$' artifacts/timings.txt) passed, $$(grep -vc ' ok$$' artifacts/timings.txt || true) failed"; \
	exit $$status

timings-reset:
	@rm -f artifacts/timings.txt

clean: lab-destroy ## Remove the lab and the virtualenv
	rm -rf $(VENV) .ansible

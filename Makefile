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

# model_api (serving API + dashboard roles) is work in progress: its scenario
# does not pass yet (see the closing note of issue #6), so it is not run by
# default; run it with `make molecule SCENARIOS=model_api`.
SCENARIOS_WIP := model_api
SCENARIOS ?= $(filter-out $(SCENARIOS_WIP),$(patsubst molecule/%/molecule.yml,%,$(sort $(wildcard molecule/*/molecule.yml))))
TIMED := scripts/timed

.PHONY: help prereqs venv images lab lab-up lab-converge lab-info lab-destroy drift converge \
        lint unit app-test terraform-test publish-dags molecule test timings-reset clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

prereqs: ## Install Docker and debootstrap if missing, start dockerd
	@scripts/host-prereqs

venv: ## Control-node virtualenv (.venv) and Ansible collections
	@scripts/bootstrap

images: prereqs ## Build the lab images (debootstrap + docker import) if missing
	@if [[ "$$LAB_IMAGE" == "$(DEFAULT_LAB_IMAGE)" ]]; then lab/build-image.sh bookworm $(DEFAULT_LAB_IMAGE); fi
	@if [[ "$$LAB_DB_IMAGE" == "$(DEFAULT_LAB_DB_IMAGE)" ]]; then lab/build-image.sh sid $(DEFAULT_LAB_DB_IMAGE); fi

lab: venv images ## Start the lab hosts, converge site.yml on them, print what is where
	@$(TIMED) lab-up ansible-playbook ansible/playbooks/lab-up.yml
	@$(TIMED) lab-converge ansible-playbook site.yml -i inventory/lab
	@ansible-playbook ansible/playbooks/lab-info.yml

lab-destroy: venv ## Remove the lab hosts (images and caches stay)
	ansible-playbook ansible/playbooks/lab-destroy.yml

INVENTORY ?= inventory/lab

drift: venv ## Report drift (check mode, changes nothing); exit 2 if any. INVENTORY=inventory/oci for OCI
	@scripts/drift-report -i $(INVENTORY)

converge: venv ## Converge site.yml (repairs drift). INVENTORY=inventory/oci for OCI
	ansible-playbook site.yml -i $(INVENTORY)

lint: venv ## yamllint and ansible-lint (production profile)
	@$(TIMED) yamllint yamllint --strict .
	@$(TIMED) ansible-lint ansible-lint

unit: venv ## pytest unit tests of the repository (filters, specs, inventory)
	@$(TIMED) unit pytest -q tests/unit

app-test: ## The app/ package's own suite (serving API and dashboard against a real MLflow)
	@$(TIMED) app-test $(MAKE) --no-print-directory -C app test

terraform-test: ## Terraform: HCL vs site.yml/roles, checkov, fmt, workflow schema (no cloud needed)
	@$(TIMED) terraform-test $(MAKE) --no-print-directory -C terraform test

publish-dags: venv ## Upload dags/ to the DAG bucket (lab: its S3 stand-in). INVENTORY=inventory/oci for OCI
	ansible-playbook ansible/playbooks/publish-dags.yml -i $(INVENTORY)

molecule: venv images ## molecule test for every scenario (SCENARIOS="a b" for some)
	@for s in $(SCENARIOS); do $(TIMED) molecule-$$s molecule test -s $$s; done

test: timings-reset lint unit app-test molecule ## Everything CI runs
	@echo "timings:" && cat artifacts/timings.txt
	@echo "stages: $$(grep -c ' ok$$' artifacts/timings.txt) passed, $$(grep -vc ' ok$$' artifacts/timings.txt || true) failed"

timings-reset:
	@rm -f artifacts/timings.txt

clean: lab-destroy ## Remove the lab and the virtualenv
	rm -rf $(VENV) .ansible

# TensorFlow-versus-PyTorch benchmark suite. `make help` lists the targets.
#
# PYTHON picks the interpreter. By default a .venv is built from requirements.txt on
# first use; pass PYTHON=python3 to use an existing environment (e.g. a CUDA machine
# that already has torch) and skip the install.

SHELL := /bin/bash
VENV ?= .venv
ifeq ($(origin PYTHON), undefined)
PYTHON := $(VENV)/bin/python
DEPS := $(VENV)/.installed
else
DEPS :=
endif

PROFILE ?= full
DEVICE ?= cpu,cuda
RESULTS ?= results
FORMAT ?= table
THRESHOLD ?= 10%
REPEAT ?= 8
DESIGN ?= interleave
TURN_TIME ?=
ROUND_TIME ?=
AB_THREADS ?=
AB_LANES ?=
AB_CALLS ?=
K ?=
OUT ?= build

PYTEST := $(PYTHON) -m pytest
TOOL := $(PYTHON) -m benchruns
opt = $(if $(2),$(1) $(2))

.DEFAULT_GOAL := help
.PHONY: publish noise-study help bench bench-quick bench-cuda-smoke test smoke compare gate diff ab error-rates history baseline report docs figures clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(VENV)/.installed: requirements.txt
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --no-compile -r requirements.txt
	@# The bytecode, on every core: pip compiles one file at a time (the install before and after:
	@# docs/running.md). Like pip, it passes over files this Python cannot compile (torch ships a
	@# 3.12-only test module), so its exit status is not checked.
	$(VENV)/bin/python -m compileall -qq -j 0 $(VENV)/lib || true
	@touch $@

# Second environments, next to the default .venv (which pip's local config fills with the CPU
# wheel): `venv-pypi` installs requirements.txt with `pip --isolated`, i.e. exactly what PyPI
# serves a Linux user (the CUDA build of torch and the torchvision built against it, about
# 6.4 GB); `venv-upgrade` is the same pins with torch/torchvision moved to TORCH_UPGRADE /
# TORCHVISION_UPGRADE, by plain pip. Use either with PYTHON=<env>/bin/python.
VENV_PYPI ?= .venv-pypi
TORCH_UPGRADE ?= 2.14.1
TORCHVISION_UPGRADE ?= 0.29.1
VENV_UPGRADE ?= .venv-torch$(subst .,,$(TORCH_UPGRADE))
.PHONY: venv-pypi venv-upgrade

venv-pypi: $(VENV_PYPI)/.installed ## build .venv-pypi: requirements.txt as PyPI serves it (pip --isolated; CUDA torch, 6.4 GB)

$(VENV_PYPI)/.installed: requirements.txt
	@test -x $(VENV_PYPI)/bin/python || python3 -m venv $(VENV_PYPI)
	$(VENV_PYPI)/bin/pip install --isolated -r requirements.txt
	@touch $@

venv-upgrade: $(VENV_UPGRADE)/.installed ## build .venv-torch2141: torch==TORCH_UPGRADE, torchvision==TORCHVISION_UPGRADE, other pins as requirements.txt

$(VENV_UPGRADE)/.installed: requirements.txt
	@test -x $(VENV_UPGRADE)/bin/python || python3 -m venv $(VENV_UPGRADE)
	grep -v -E '^torch(vision)?==' requirements.txt > $(VENV_UPGRADE)/requirements-others.txt
	$(VENV_UPGRADE)/bin/pip install torch==$(TORCH_UPGRADE) torchvision==$(TORCHVISION_UPGRADE) -r $(VENV_UPGRADE)/requirements-others.txt
	@touch $@

bench: $(DEPS) ## run the benchmarks (PROFILE=quick|full, DEVICE=cpu,cuda) and save the run under results/
	$(PYTEST) benches --profile=$(PROFILE) --device=$(DEVICE) --save-run --results-dir=$(RESULTS) $(ARGS)

bench-quick: ## the quick profile (its time here: docs/running.md, the contributor loop)
	$(MAKE) bench PROFILE=quick

bench-cuda-smoke: $(DEPS) ## the CUDA cases of the quick profile, torch only is enough (PYTHON=python3 on a GPU box)
	$(PYTEST) benches --profile=quick --device=cuda -m cuda --save-run --results-dir=$(RESULTS) $(ARGS)

# make test: the tests and the smoke profile across the cores (pytest-xdist, JOBS=auto, at most
# MAX_JOBS workers: each loads both frameworks), except the tests marked serial (tests/conftest.py
# says why) and the distributed smoke cases (their worker processes bind ports and take the cores,
# and the cases of one launch share it within a process); then those two in one run, alone, with
# the benchmark fixture on; then the slowest tests of both runs. Without pytest-xdist
# (PYTHON=python3) the first runs in one process.
JOBS ?= auto
MAX_JOBS ?= 4
XDIST = $$($(PYTHON) -c 'import xdist' 2>/dev/null && echo '-n $(JOBS) --maxprocesses=$(MAX_JOBS)')
TEST_REPORTS ?= $(OUT)/test-reports
SMOKE_OPTS := --profile=smoke -p no:cacheprovider
SMOKE := benches $(SMOKE_OPTS) --benchmark-disable

test: $(DEPS) ## the project's tests, then every benchmark case once (smoke) with parity checks; the slowest at the end
	@rm -rf $(TEST_REPORTS) && mkdir -p $(TEST_REPORTS)
	$(PYTEST) tests $(SMOKE) -m "not serial and not distributed" $(XDIST) --junitxml=$(TEST_REPORTS)/tests-and-smoke.xml
	$(PYTEST) tests benches $(SMOKE_OPTS) -m "serial or distributed" --junitxml=$(TEST_REPORTS)/serial-and-distributed.xml
	@$(PYTHON) -m tests.slowest $(TEST_REPORTS)/*.xml --top 15

compare: $(DEPS) ## median ratio with CI and verdict per benchmark (BASE= CAND= FORMAT=table|md|json)
	$(TOOL) compare $(call opt,--base,$(BASE)) $(call opt,--cand,$(CAND)) --format=$(FORMAT) --results-dir=$(RESULTS) $(ARGS)

gate: $(DEPS) ## exit 1 on a significant slowdown (THRESHOLD=10% is the slowdown to catch; see docs/gate.md)
	$(TOOL) gate $(call opt,--base,$(BASE)) $(call opt,--cand,$(CAND)) --threshold=$(THRESHOLD) --results-dir=$(RESULTS) $(ARGS)

diff: $(DEPS) ## what differs between two result files (A=path B=path)
	$(TOOL) diff $(A) $(B) $(ARGS)

ab: $(DEPS) ## same-job A/B of BASE_REF against the working tree (K=expr REPEAT=8 pairs, DESIGN=interleave|alternate|duet, TURN_TIME ROUND_TIME AB_THREADS AB_LANES AB_CALLS)
	$(TOOL) ab --base-ref=$(BASE_REF) $(call opt,-k,$(if $(K),"$(K)")) --repeat=$(REPEAT) --design=$(DESIGN) $(call opt,--turn-time,$(TURN_TIME)) $(call opt,--round-time,$(ROUND_TIME)) $(call opt,--threads,$(AB_THREADS)) $(call opt,--lanes,$(AB_LANES)) $(call opt,--calls,$(AB_CALLS)) --threshold=$(THRESHOLD) --python=$(PYTHON) $(ARGS)

noise-study: $(DEPS) ## A/A worker pairs per design, round time and threads: where ab's noise is (about 25 min; run alone)
	$(TOOL) noise-study --out=$(OUT)/noise_study_record.json --docs-prefix=$(OUT)/noise_study $(ARGS)

error-rates: $(DEPS) ## gate false alarms and detection resampled from real runs of one commit (RUNS='results/k/*_abc1234.json' SLOW=glob)
	$(TOOL) error-rates $(if $(RUNS),$(RUNS),--processes tests/data/processes_quick_35c2370.json) $(call opt,--slow,$(if $(SLOW),"$(SLOW)")) $(ARGS)

history: $(DEPS) ## static site of every machine and profile over time, into build/history (prints the overview and newest regressions)
	$(TOOL) history --results-dir=$(RESULTS) --out=$(OUT)/history $(ARGS)

# The results branch (docs/nightly-ci.md): runs committed gzipped, checked out as a worktree
# that is also a results folder (make gate/history RESULTS=$(RESULTS_WORKTREE)).
RESULTS_BRANCH ?= benchmark-results
RESULTS_WORKTREE ?= results-branch

publish: $(DEPS) ## commit the runs under RESULTS that RESULTS_BRANCH lacks (gzipped) and push; retried on a concurrent push
	$(TOOL) publish --results-dir=$(RESULTS) --branch=$(RESULTS_BRANCH) --worktree=$(RESULTS_WORKTREE) $(ARGS)

baseline: $(DEPS) ## mark RUN=path (default: this machine's newest run) as the gate's baseline
	$(TOOL) baseline $(call opt,--run,$(RUN)) --results-dir=$(RESULTS) $(ARGS)

report: $(DEPS) ## verdicts on the usual TF-vs-PyTorch claims with plots, into build/report
	$(TOOL) report $(call opt,--run,$(RUN)) --results-dir=$(RESULTS) --out=$(OUT)/report $(ARGS)

.PHONY: fleet
fleet: $(DEPS) ## the report's verdicts per machine side by side, into build/fleet (FOLDERS='a b': results folders, e.g. CI artifacts; FORMAT=md|json)
	$(TOOL) fleet $(FOLDERS) --results-dir=$(RESULTS) --out=$(OUT)/fleet $(if $(filter-out table,$(FORMAT)),--format=$(FORMAT)) $(ARGS)

docs: $(DEPS) ## rewrite the generated tables in README.md and docs/ from the run files their markers name (ARGS=--check: diff only)
	$(TOOL) docs $(ARGS)

# The docs' data tables that come from a measurement script, not a saved run. Each names its
# command, machine, commit and load; run from a clean checkout (a modified tracked file is
# refused) on a quiet machine: two of them time things under a load window.
FIGURES_PROCESSES ?= tests/data/processes_quick_35c2370.json
SYNTH_RUN ?= results/amd-epyc-2c-cpu-480e5c54/20261202T125249Z_35c2370.json

figures: $(DEPS) ## docs/data tables: change-point rates (FIGURES_PROCESSES), history build time (SYNTH_RUN), results-branch growth, peer-harness check, noise timescale; run alone
	$(PYTHON) -m benchruns.studies.figures changepoints $(FIGURES_PROCESSES) --out docs/data/changepoints.json
	$(PYTHON) -m benchruns.studies.figures history-build $(SYNTH_RUN) --out docs/data/history_build.json
	$(PYTHON) -m benchruns.studies.branchgrowth --out docs/data/results_branch_growth.json
	$(PYTHON) -m benches.transfer_cases --out docs/data/peer_harness.json
	$(PYTHON) -m benches.noise_timescale --out docs/data/noise_timescale.json --plot docs/img/noise_timescale.png

clean: ## remove caches and build output (never results/)
	rm -rf .pytest_cache .benchmarks $(OUT) .cache results/.incoming
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

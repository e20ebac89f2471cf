# One command per job; each sets itself up on a fresh machine (Python >= 3.10, pip, venv).
VENV ?= .venv
PY := $(VENV)/bin/python
SM := $(VENV)/bin/sm
# torch 2.13.0 is the CPU build on this project's machines; elsewhere pip picks the platform's build.
TORCH ?= torch==2.13.0

.PHONY: setup setup-sheet train sheet test lint engines bundled-model bundled-model-32 screenshot clean

setup: $(VENV)/.installed
setup-sheet: $(VENV)/.sheet-installed

# What the sheet needs and no more: the bundled model's ONNX export runs on onnxruntime (no torch).
$(VENV)/.sheet-installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[onnx]"
	touch $@

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(VENV)/.sheet-installed $@

train: setup          ## train on the bundled sprite set, tracked in MLflow (sm-runs/mlflow.db)
	$(SM) train

sheet: setup-sheet    ## 64 hero sprites from the bundled model, packed into hero.png + hero.json (onnxruntime only)
	$(SM) sheet --label 5 --count 64 --out hero.png --force

bundled-model: setup  ## retrain the bundled model (see scarlet_moon/bundled/model/README.md)
	$(SM) train --steps 10000 --checkpoint-every 250 --sample-every 2000 --name bundled
	$(PY) -c "from scarlet_moon.models.checkpoint import sampling_weights as w; w('sm-runs/bundled/checkpoint.safetensors', 'sm-runs/bundled/teacher.safetensors')"
	$(SM) distill --model sm-runs/bundled/teacher.safetensors --out scarlet_moon/bundled/model25/model.safetensors --steps 6000 --batch 512 --lr 2e-4
	$(SM) distill --model bundled-25 --few-step 4 --substeps 6 --steps 1500 --batch 64 --lr 2e-4 --out scarlet_moon/bundled/model/model.safetensors
	$(SM) export-onnx --model scarlet_moon/bundled/model/model.safetensors --out scarlet_moon/bundled/model/model.onnx --no-step-graph

bundled-model-32: setup  ## retrain the bundled 32x32 model (see scarlet_moon/bundled/model32/README.md)
	$(SM) train --data bundled-32 --time 80m --steps 20000 --checkpoint-every 500 --sample-every 1000 --name bundled32
	$(SM) distill --model sm-runs/bundled32/model.safetensors --out sm-runs/bundled32/student.safetensors --steps 1000 --batch 64 --lr 2e-4
	$(SM) eval --model sm-runs/bundled32/student.safetensors --choose-post --seeds 0,1,2,3 --out sm-runs/bundled32/post.json
	cp sm-runs/bundled32/student.safetensors scarlet_moon/bundled/model32/model.safetensors

engines: setup        ## chromium, godot3-server and the npm engines for the atlas tests
	bash .ci/install-engines

lint: setup          ## ruff (lint + format), mypy and the import contracts (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: setup lint engines  ## the checks and the whole suite, as CI runs them
	$(PY) -m pytest -q

screenshot: setup engines  ## docs/studio.png, the README's picture of sm studio, taken again in headless chromium
	SM_UPDATE_SCREENSHOT=1 $(PY) -m pytest -q tests/test_studio_browser.py

clean:
	rm -rf $(VENV) sm-runs .pytest_cache

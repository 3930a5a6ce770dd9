# The two commands a newcomer needs:  make demo   and   make test
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
BUILD := build

.PHONY: demo test lint typecheck unit bench bench-worker lock schemas clean redis-server prometheus chromium image-test image-tools

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# On a shared machine another apt-get may hold dpkg's lock: wait for it (up to 10 min)
# instead of failing. apt-get update is tried again too, for the package lists' lock.
APT_GET := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 -qq
APT_UPDATE := for try in 1 2 3 4 5 6; do $(APT_GET) update && break; sleep 10; done

$(INSTALLED): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

## demo: install, generate a stream with 1% malformed records, replay it, print the summary
## (180 days: twice the churn horizon, so the churn model learns and scores customers)
demo: $(INSTALLED)
	mkdir -p $(BUILD)
	$(BIN)/rapport generate --customers 5000 --days 180 --malformed 0.01 --seed 42 -o $(BUILD)/demo.jsonl
	$(BIN)/rapport replay $(BUILD)/demo.jsonl --changes $(BUILD)/changes.jsonl \
		--dead-letters $(BUILD)/dead_letters.jsonl --profiles $(BUILD)/profiles.jsonl \
		--actions $(BUILD)/actions.jsonl

## test: install, then lint (ruff), types (mypy --strict) and the whole pytest suite
## (integration tests start redis-server, prometheus and a headless chromium, installed
## here from Debian when missing; promtool comes with prometheus)
test: $(INSTALLED) redis-server prometheus chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2

redis-server:
	@command -v redis-server >/dev/null || { \
		$(APT_UPDATE); \
		$(APT_GET) install -y --no-install-recommends redis-server >/dev/null; }

chromium:
	@command -v chromium >/dev/null || { \
		$(APT_UPDATE); \
		$(APT_GET) install -y --no-install-recommends chromium >/dev/null; }

prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		$(APT_UPDATE); \
		$(APT_GET) install -y --no-install-recommends prometheus >/dev/null; }

## image-test: build the Dockerfile with buildah (no Docker engine) on a base made from
## Debian's packages, then run `rapport --help` and a short replay inside the image
IMAGE ?= localhost/rapport:test
BASE_IMAGE ?= localhost/debian-python:bookworm
DEBIAN_MIRROR ?= http://deb.debian.org/debian
export STORAGE_DRIVER ?= vfs
image-test: image-tools
	@podman image exists $(BASE_IMAGE) || { \
		rm -rf $(BUILD)/debian-python-rootfs && mkdir -p $(BUILD) && \
		$(SUDO) debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
			bookworm $(BUILD)/debian-python-rootfs $(DEBIAN_MIRROR) >$(BUILD)/debootstrap.log && \
		$(SUDO) tar -C $(BUILD)/debian-python-rootfs -c . | podman import - $(BASE_IMAGE) && \
		$(SUDO) rm -rf $(BUILD)/debian-python-rootfs; }
	buildah bud --quiet --isolation chroot --format docker --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro -t $(IMAGE) .
	@ctr=$$(buildah from $(IMAGE)) && trap 'buildah rm '$$ctr' >/dev/null' EXIT && \
		buildah run --isolation chroot $$ctr -- rapport --help && \
		buildah run --isolation chroot $$ctr -- sh -c 'id -un && cd /tmp && \
			rapport generate --customers 300 --days 30 --seed 3 -o s.jsonl && rapport replay s.jsonl'

image-tools:
	@command -v buildah >/dev/null && command -v podman >/dev/null && command -v debootstrap >/dev/null || { \
		$(APT_UPDATE); \
		$(APT_GET) install -y --no-install-recommends buildah podman debootstrap >/dev/null; }

## bench: the engine (shipped rules, churn) on the demo stream vs. CPython's floor and
## orjson, and the stored profiles' sizes; the last line is the figures as JSON
bench: $(INSTALLED)
	$(BIN)/python -m bench.replay_throughput

## bench-worker: one worker end to end on a local broker vs. the broker itself, a Quix
## Streams app (a bench-only peer, in its own virtualenv) and the engine's replay
PEERS := $(BUILD)/bench-peers
$(PEERS)/.installed: bench/peers/requirements.txt
	$(PY) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet -r bench/peers/requirements.txt
	touch $@

bench-worker: $(INSTALLED) redis-server $(PEERS)/.installed
	$(BIN)/python -m bench.worker_end_to_end

## schemas: regenerate the committed JSON Schema files and config/defaults.yaml
schemas: $(INSTALLED)
	$(BIN)/rapport schemas export
	$(BIN)/rapport rules schema
	$(BIN)/rapport config show --defaults > config/defaults.yaml

## lock: re-resolve every dependency into constraints.txt (commit the result)
lock:
	rm -rf $(BUILD)/lockenv && $(PY) -m venv $(BUILD)/lockenv
	$(BUILD)/lockenv/bin/pip install --quiet --upgrade pip
	$(BUILD)/lockenv/bin/pip install --quiet -e '.[dev]'
	$(BUILD)/lockenv/bin/pip freeze --exclude-editable | grep -v '^rapport' > constraints.txt

clean:
	rm -rf $(VENV) $(BUILD)

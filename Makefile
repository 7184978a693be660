# pantau — `make demo` and `make test` do all the setup on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ARGS ?= --sites 3 --cameras 4 --duration 300
PYTEST_ARGS ?=

.PHONY: setup demo test unit check lint typecheck fmt bench clean system-packages

setup: system-packages $(VENV)/.installed devtools/oidc/node_modules/.installed

# Real mosquitto and influxd binaries, chromium for the technician page's browser test, snmpd
# (net-snmp) behind the simulated UPS, PostgreSQL for the shared state database and faketime
# for agents whose clock is wrong, GStreamer's RTSP server (run by the system python3) as a camera
# server nobody here wrote, ZoneMinder with MariaDB as a real NVR (Debian packages);
# deploy/docker-compose.yml is the alternative on machines without apt.
system-packages:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] || ! command -v influxd >/dev/null \
		|| ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| [ ! -x /usr/sbin/snmpd ] || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
		|| ! command -v faketime >/dev/null \
		|| ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
		|| ! gst-inspect-1.0 h265parse >/dev/null 2>&1 \
		|| [ ! -x /usr/bin/zmc ] || [ ! -x /usr/sbin/mariadbd ]; then \
		echo "installing mosquitto, influxdb, chromium, snmpd, postgresql, faketime, gst-rtsp-server, zoneminder, mariadb-server (Debian packages)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			mosquitto influxdb chromium chromium-driver snmpd postgresql faketime \
			python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
			gstreamer1.0-plugins-good gstreamer1.0-plugins-bad zoneminder mariadb-server >/dev/null; \
	fi
	@# node and npm for the OpenID provider of the login tests, only where none is installed: a
	@# NodeSource nodejs (which carries npm) conflicts with Debian's npm package.
	@if ! command -v npm >/dev/null; then \
		echo "installing nodejs, npm (Debian packages)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			--no-install-recommends nodejs npm >/dev/null; \
	fi
	@# Debian starts the packaged services; pantau runs its own on free ports, so stop them.
	@-$(SUDO) systemctl disable --now mosquitto influxdb snmpd postgresql zoneminder mariadb \
		>/dev/null 2>&1 || true

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

# panva's oidc-provider (npm, pinned by package-lock.json): the identity provider the OpenID
# Connect login is tested against (tests/test_auth_oidc.py).
devtools/oidc/node_modules/.installed: devtools/oidc/package.json devtools/oidc/package-lock.json
	cd devtools/oidc && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

demo: setup
	$(VENV)/bin/pantau demo $(DEMO_ARGS)

check: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Tests that mostly wait for minutes (a 150 s chaos schedule, a 2-minute stopped stream under
# ZoneMinder, ten broker restarts, the tiny bench, the demo, the 10,000-payload fuzz and the
# collector fed its corpus) run in a second pytest beside the rest; its output follows the main
# run's. Both must pass.
BESIDE_TESTS := tests/test_chaos.py tests/test_recorders_zoneminder.py tests/test_broker_restart.py \
	tests/test_bench.py tests/test_demo_cli.py tests/test_fuzz.py tests/test_fuzz_collector.py

test: setup check
	@mkdir -p var
	@$(VENV)/bin/pytest $(PYTEST_ARGS) $(BESIDE_TESTS) > var/test-beside.log 2>&1 & beside=$$!; \
	trap 'kill $$beside 2>/dev/null' INT TERM; \
	$(VENV)/bin/pytest $(PYTEST_ARGS) $(addprefix --ignore=,$(BESIDE_TESTS)); main=$$?; \
	wait $$beside; other=$$?; \
	echo "--- the tests run beside ($(BESIDE_TESTS)): exit $$other ---"; \
	cat var/test-beside.log; \
	[ $$main -eq 0 ] && [ $$other -eq 0 ]

# The fast tier: no test that needs a real service (marked `services` by its fixture, see
# tests/conftest.py) and no minute-long fuzz run (`slow`); under a minute, nothing started.
unit: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not services and not slow" -n 4 --dist loadfile $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/pantau bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var

# The two commands of the README, `make run` and `make test`; and `make test-pg`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test test-pg chromium sevenzip openssh gnupg curl bench-tools static-vendor screenshots lint format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, found " + sys.version.split()[0] if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)

# Stamp files: a second `make run` with unchanged requirements installs nothing.
$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	DEBUG=true $(BIN)/python manage.py migrate --noinput --verbosity 0
	DEBUG=true $(BIN)/python manage.py seed_demo
	@echo
	@DEBUG=true $(BIN)/python manage.py gateway_fingerprints
	@echo
	@echo "Kokatto is starting: admin at http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops everything)"
	@echo
	@# The web server, the task queue and the gateway write their metrics to one folder,
	@# emptied first, and /metrics sums them (README "Watching the platform").
	rm -rf var/metrics && mkdir -p var/metrics
	DEBUG=true PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/metrics" PATH="$(CURDIR)/$(BIN):$$PATH" \
	  $(BIN)/honcho start --port $(PORT)

test: $(VENV)/.installed-dev chromium sevenzip openssh gnupg curl
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

# The suite on PostgreSQL, with Redis as cache and django-q2 broker, as CI runs it
# second: the concurrency, worker-crash and query-plan tests that skip on SQLite run
# here. PG_DATABASE is dropped and created afresh, then migrated (pytest itself uses
# test_$(PG_DATABASE)); its own name, not DATABASE_URL, so that a DATABASE_URL in the
# environment naming a database you keep is never dropped. PG_REDIS_URL's Redis
# database is flushed by the tests: 12 is used by nothing else here (the benchmarks
# use 13 and 14, CI 15). PYTEST_ARGS narrows the run: make test-pg PYTEST_ARGS=tests/api
PG_SERVER ?= postgres://postgres@127.0.0.1:5432
PG_DATABASE ?= kokatto_test_pg
PG_REDIS_URL ?= redis://127.0.0.1:6379/12
PYTEST_ARGS ?=
PG_ENV := DATABASE_URL="$(PG_SERVER)/$(PG_DATABASE)" REDIS_URL="$(PG_REDIS_URL)"

test-pg: $(VENV)/.installed-dev chromium sevenzip openssh gnupg curl
	psql "$(PG_SERVER)/postgres" -v ON_ERROR_STOP=1 -q \
	  -c "DROP DATABASE IF EXISTS $(PG_DATABASE)" -c "CREATE DATABASE $(PG_DATABASE)"
	$(PG_ENV) $(BIN)/python manage.py migrate --noinput --verbosity 0
	$(PG_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(PG_ENV) $(BIN)/pytest $(PYTEST_ARGS)

# The end-to-end tests drive Debian's Chromium, never a browser downloaded by
# Playwright. Installed when missing and possible (root with apt-get); otherwise
# those tests skip. Silent when it is already there.
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the end-to-end tests (apt-get)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium >/dev/null; } \
	      || echo "Could not install chromium: the end-to-end tests (tests/e2e) will be skipped."; \
	  else \
	    echo "$(CHROMIUM) is missing and installing it needs root and apt-get: the end-to-end"; \
	    echo "tests (tests/e2e) will be skipped. To run them: sudo apt-get install chromium"; \
	  fi; \
	fi

# The batch tests check interoperability with the 7z program clients use (Debian's
# 7zip package). Installed when missing and possible; otherwise those tests skip
# (in CI, where CI is set, they fail instead).
sevenzip:
	@if ! command -v 7z >/dev/null 2>&1 && ! command -v 7zz >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's 7zip for the batch archive tests (apt-get)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends 7zip >/dev/null; } \
	      || echo "Could not install 7zip: the 7z interoperability tests will be skipped."; \
	  else \
	    echo "7z is missing and installing it needs root and apt-get: the 7z interoperability"; \
	    echo "tests will be skipped. To run them: sudo apt-get install 7zip"; \
	  fi; \
	fi

# The gateway tests drive the SFTP gateway with OpenSSH's own client (Debian's
# openssh-client: sftp, ssh-keygen). Installed when missing and possible; otherwise
# those tests skip (in CI they fail instead).
openssh:
	@if ! command -v sftp >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's openssh-client for the gateway tests (apt-get)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends openssh-client >/dev/null; } \
	      || echo "Could not install openssh-client: the SFTP gateway tests will be skipped."; \
	  else \
	    echo "sftp is missing and installing it needs root and apt-get: the SFTP gateway"; \
	    echo "tests will be skipped. To run them: sudo apt-get install openssh-client"; \
	  fi; \
	fi

# The OpenPGP keys are made and checked by Debian's gpg (gnupg), which python-gnupg drives,
# and the tests play the client's side with it (a message without integrity protection too:
# gpg --rfc2440). Installed when missing and possible; otherwise those tests skip (in CI they
# fail instead).
gnupg:
	@if ! command -v gpg >/dev/null 2>&1 || ! command -v gpgconf >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's gnupg for the OpenPGP keys and their tests (apt-get)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends gnupg >/dev/null; } \
	      || echo "Could not install gnupg: the OpenPGP tests will be skipped."; \
	  else \
	    echo "gpg is missing and installing it needs root and apt-get: the OpenPGP"; \
	    echo "tests will be skipped. To run them: sudo apt-get install gnupg"; \
	  fi; \
	fi

# bench/gateway_upload.py compares the SFTP gateway with OpenSSH's own sftp-server:
# Debian's openssh-server (sshd, which the benchmark starts itself on a loopback port;
# nothing is enabled or started here) and openssh-client.
bench-tools:
	@if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/lib/openssh/sftp-server ] || ! command -v sftp >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's openssh-server and openssh-client for the benchmark (apt-get)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends openssh-server openssh-client >/dev/null; \
	  else \
	    echo "Installing sshd needs root and apt-get: sudo apt-get install openssh-server openssh-client"; \
	    exit 1; \
	  fi; \
	fi

# The FTPS gateway tests drive it with curl too (Debian's curl). Installed when missing
# and possible; otherwise those tests skip (in CI they fail instead).
curl:
	@if ! command -v curl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's curl for the FTPS gateway tests (apt-get)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends curl >/dev/null; } \
	      || echo "Could not install curl: the FTPS gateway's curl tests will be skipped."; \
	  else \
	    echo "curl is missing and installing it needs root and apt-get: the FTPS gateway's"; \
	    echo "curl tests will be skipped. To run them: sudo apt-get install curl"; \
	  fi; \
	fi

# The browser libraries of the admin (the dashboard's Chart.js), vendored into
# static/vendor/ and committed: no CDN under the CSP, and `make run` needs no npm.
# Refresh after changing package.json (`npm install --save-exact chart.js@4.x` first).
static-vendor:
	npm ci --no-audit --no-fund
	mkdir -p static/vendor/chartjs
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md static/vendor/chartjs/

# The README's screenshots (docs/screenshots/), taken by the end-to-end tests that show
# those pages; a plain test run leaves the committed ones alone.
screenshots: $(VENV)/.installed-dev chromium
	SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -p no:randomly \
	  tests/e2e/test_dashboard.py tests/e2e/test_support_notification_page.py

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

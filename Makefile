# Switchboard — `make run` and `make test` on a fresh Debian machine, as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# C libraries the node links (XML, XSLT, SFTP, FTP, SQLite, SHA-256, its allocator), from Debian.
SYSTEM_PACKAGES := libxml2-dev libxslt1-dev libssh2-1-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libjemalloc-dev
# Real servers the tests talk to, and the benchmark's tools.
TEST_PACKAGES := nginx openssh-server postgresql xsltproc time python3-pip openssl curl docbook-xsl
BENCH_PACKAGES := nginx wrk time python3-pip

SWIFT ?= swift
# Release builds optimize across module boundaries (NIO, Hummingbird, AsyncHTTPClient and
# ours): about 11% more requests/s on the proxy benchmark for the same build time.
RELEASE := -c release -Xswiftc -cross-module-optimization

.PHONY: help deps test-deps bench-deps build run test check reference bench clean

help:
	@echo "make run    install what is missing, build (release), start the node on the routes in Routes/"
	@echo "make test   install what is missing, start the servers tests need, run every test"
	@echo "make check  validate the routes in Routes/ without starting anything"
	@echo "make reference  rewrite the README's generated tables (steps, adapters, config keys)"
	@echo "make bench  run the benchmarks in bench/ against their reference tools"

# Installs the Debian packages in $(1) that are not installed yet.
define apt_install
	@missing=""; for package in $(1); do dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))
	@python3 -c "import pyftpdlib, OpenSSL" 2>/dev/null || pip install -q pyftpdlib pyopenssl 2>/dev/null \
		|| pip install -q --break-system-packages pyftpdlib pyopenssl

bench-deps: deps
	$(call apt_install,$(BENCH_PACKAGES))

build: deps
	$(SWIFT) build $(RELEASE)

run: build
	.build/release/switchboard run

check: deps
	$(SWIFT) build
	.build/debug/switchboard check

# The README's reference tables are printed by the binary from the specs the loader checks;
# ReadmeReferenceTests fails until they are rewritten after a spec changes.
reference: deps
	$(SWIFT) build --product switchboard
	docs/tools/update-reference .build/debug/switchboard

# Test servers: a throwaway PostgreSQL cluster on a free loopback port below the kernel's
# ephemeral range (a port in it can be held by an outgoing connection's end, which the probe
# does not see and PostgreSQL then fails to bind) (Tests/servers/postgres),
# stopped when the tests end; the HTTP tests start a Hummingbird backend in-process and nginx
# on a free loopback port themselves. Test data whose licence keeps it out of the repository
# is read from SWITCHBOARD_TEST_SHARED_DATA when set (by default ../shared/data, if there);
# the few tests that need it are skipped otherwise.
SHARED_DATA ?= $(wildcard $(CURDIR)/../shared/data)
test: test-deps
	$(SWIFT) build --build-tests
	@set -e; \
	servers=$$(mktemp -d /tmp/switchboard-test-servers.XXXXXX); chmod 755 $$servers; \
	low=$$(awk '{ low = $$1 - 1; print (low > 20000 ? low : 60000) }' /proc/sys/net/ipv4/ip_local_port_range); \
	port=$$(shuf -i 20000-$$low -n 1); while (echo >/dev/tcp/127.0.0.1/$$port) 2>/dev/null; do port=$$(shuf -i 20000-$$low -n 1); done; \
	trap "Tests/servers/postgres stop $$servers/postgres; rm -rf $$servers" EXIT; \
	url=$$(Tests/servers/postgres start $$servers/postgres $$port); \
	echo "PostgreSQL for the tests: $$url"; \
	SWITCHBOARD_TEST_POSTGRES=$$url SWITCHBOARD_TEST_SHARED_DATA=$(SHARED_DATA) $(SWIFT) test

bench: bench-deps
	$(SWIFT) build $(RELEASE)
	bench/http-proxy
	bench/audit-overhead
	bench/xslt
	bench/xslt-http
	bench/fixed-width
	bench/listener-attacks
	bench/many-routes
	bench/json-schema

clean:
	rm -rf .build var

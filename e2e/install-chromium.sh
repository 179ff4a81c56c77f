#!/bin/sh
# Installs Debian's chromium for the e2e tests, unless a chromium is already on PATH.
set -eu
command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

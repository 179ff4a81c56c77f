#!/bin/sh
# Installs what the e2e tests need from Debian: chromium, and a CJK font so
# that screenshots of the demos' Chinese text are readable. Does nothing when
# both are there already.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="chromium"
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing="$missing fonts-wqy-zenhei"
if [ -n "$missing" ]; then
	apt-get update
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

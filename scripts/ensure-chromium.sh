#!/bin/sh
# Make sure Debian's Chromium is present for the report's browser tests.
# Idempotent and quiet: exits 0 when /usr/bin/chromium already exists. Installs it only when we
# are root (a CI container); otherwise says how and exits 0, and the browser tests skip with a reason.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: $CHROMIUM is missing and we are not root;" \
         "install it with: sudo apt-get install -y chromium" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi

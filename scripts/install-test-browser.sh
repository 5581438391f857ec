#!/bin/sh
# The browser of the demo's browser test (tests/test_demo_browser.py): Debian's chromium and
# chromium-driver. Optional: it installs only as root where apt-get exists and changes nothing
# elsewhere (the test then skips, saying why). It never fails the set-up.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-browser: not root or no apt-get; the demo's browser test will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium chromium-driver \
  || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; } \
  || echo "install-test-browser: apt-get failed; the demo's browser test will skip" >&2
exit 0

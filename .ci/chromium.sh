#!/usr/bin/env bash
# Install Debian's chromium for the console's browser tests (Playwright drives /usr/bin/chromium;
# its own browser download is not used). Does nothing when it is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)
{ "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium; } >&2
test -x /usr/bin/chromium

#!/usr/bin/env bash
# Install the Debian packages the cluster suite and the alert-rule tests drive, when missing:
# haproxy, prometheus (with promtool), nghttp2-client (h2load), postgresql. Idempotent.
set -euo pipefail
need=()
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || need+=(prometheus)
[ -x /usr/bin/h2load ] || need+=(nghttp2-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=()
  [ "$(id -u)" = 0 ] || SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The packages start their own services; the suite runs its own instances on free ports.

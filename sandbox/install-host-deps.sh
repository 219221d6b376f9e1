#!/usr/bin/env bash
# Install what the sandbox needs on this machine, from Debian packages only:
# dockerd (docker.io), debootstrap, socat, apt-cacher-ng, zstd, iproute2, util-linux, and
# the shell linter (`make lint`).
# Services are NOT started by the packages (policy-rc.d denies it): the sandbox runs
# its own private engine in its own network namespace and never the machine's docker0.
# Safe to re-run: does nothing when every command is already there.
set -euo pipefail
need=()
for pair in dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap socat:socat \
            apt-cacher-ng:apt-cacher-ng zstd:zstd nsenter:util-linux ss:iproute2 \
            ssh:openssh-client ssh-keygen:openssh-client shellcheck:shellcheck; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "install-host-deps: need root to apt-get install ${need[*]}" >&2; exit 1; }
echo "install-host-deps: apt-get install ${need[*]}"
created=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created=1
fi
trap '[ -z "$created" ] || rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# engine.sh start|stop|status - the sandbox's PRIVATE Docker engine.
#
# dockerd runs inside its own, empty network namespace (unshare --net), with its own
# socket, data-root and exec-root under $SBX_CACHE/engine, overlay2 storage, no default
# bridge and no iptables. It can therefore never touch this machine's docker0, firewall
# or sysctls. The sandbox servers run on it; their bridge network lives in that namespace.
# `start` is idempotent and prints the DOCKER_HOST to use.
set -euo pipefail
SBX_CACHE=${SBX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mottivme-infra}
E=$SBX_CACHE/engine
SOCK=unix://$E/docker.sock
alive() { [ -f "$E/dockerd.pid" ] && kill -0 "$(cat "$E/dockerd.pid")" 2>/dev/null; }

case ${1:-start} in
  start)
    mkdir -p "$E/data" "$E/exec"
    exec 8>"$E/lock"; flock 8
    if ! alive; then
      command -v dockerd >/dev/null || { echo "engine: dockerd missing: run sandbox/install-host-deps.sh" >&2; exit 1; }
      rm -f "$E/dockerd.pid" "$E/docker.sock"
      setsid unshare --net dockerd --host "$SOCK" --data-root "$E/data" --exec-root "$E/exec" \
          --pidfile "$E/dockerd.pid" --storage-driver overlay2 --cgroup-parent /mottivme-sbx \
          --bridge none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
          </dev/null >>"$E/dockerd.log" 2>&1 8>&- &
      for _ in $(seq 300); do DOCKER_HOST=$SOCK docker version >/dev/null 2>&1 && break; sleep 0.1; done
      DOCKER_HOST=$SOCK docker version >/dev/null 2>&1 || { echo "engine: dockerd did not start:" >&2; tail "$E/dockerd.log" >&2; exit 1; }
    fi
    echo "$SOCK" ;;
  stop)
    if alive; then
      p=$(cat "$E/dockerd.pid"); kill "$p"
      for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      echo "engine: stopped dockerd $p"
    fi
    find /sys/fs/cgroup/*/mottivme-sbx -depth -type d -exec rmdir {} + 2>/dev/null || true ;;
  status) if alive; then echo "running $SOCK"; else echo stopped; exit 1; fi ;;
  *) echo "usage: engine.sh start|stop|status" >&2; exit 2 ;;
esac

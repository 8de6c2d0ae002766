# shellcheck shell=bash
# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail

# shellcheck disable=SC2034 # ROOT, SETUP_PACKAGES and TEST_PACKAGES are for the scripts that source this
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s [%s] %s\n' "$(date +%T)" "$(basename "$0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root: $0 as root, or sudo $0"; }

# find_cargo: puts the Rust toolchain on PATH when it is not (sudo's secure_path drops
# ~/.cargo/bin): root's, else the sudo caller's rustup installation.
find_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  local home
  for home in "${CARGO_HOME:-$HOME/.cargo}" /root/.cargo ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo"}; do
    if [ -x "$home/bin/cargo" ]; then
      export PATH="$home/bin:$PATH" CARGO_HOME=$home
      [ -n "${RUSTUP_HOME:-}" ] || [ ! -d "${home%/.cargo}/.rustup" ] || export RUSTUP_HOME="${home%/.cargo}/.rustup"
      return 0
    fi
  done
  die "cargo not found: install Rust first (https://rustup.rs), then run $0 again"
}

# Debian packages, checked by package (dpkg-query), never by whether some command exists: a used
# machine has commands from packages we never named (protoc without libprotobuf-dev's .proto files
# once hid a broken build). SETUP_PACKAGES build and run calico-docker; TEST_PACKAGES are what the
# test suite needs on top of them.
# shellcheck disable=SC2034
SETUP_PACKAGES=(
  build-essential   # cc for the bundled SQLite (and libFuzzer in the tests)
  protobuf-compiler # protoc: etcd client code generation at build time ...
  libprotobuf-dev   # ... which imports google/protobuf/*.proto, shipped only here
  docker.io         # Docker Engine 20.10 (dockerd, containerd, runc, the CLI)
  iptables          # Docker's own rules
  nftables          # the policy dataplane
  bird2             # BGP between hosts
  etcd-server       # the multi-host datastore
  etcd-client       # etcdctl
  busybox-static    # the tutorial image, imported with docker import
  iproute2          # ip
  procps            # sysctl
  util-linux        # nsenter, unshare, flock, setsid
)
# shellcheck disable=SC2034
TEST_PACKAGES=(
  openssl    # test certificates for etcd over TLS
  mmdebstrap # the pristine Debian 12 root filesystem of scripts/check-fresh
  shellcheck # the scripts are checked
  socat      # UDP servers and clients in the end-to-end tests (busybox's nc has no UDP)
  conntrack  # conntrack -L and -F in the host endpoint end-to-end tests (doNotTrack)
  python3-prometheus-client # the Prometheus project's OpenMetrics parser, for the metrics tests
)

# missing_packages PKG...: prints those of PKG that dpkg does not have installed.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || echo "$pkg"
  done
}

# ensure_packages PKG...: installs whichever of PKG are missing; does nothing when all are there.
ensure_packages() {
  local missing=()
  mapfile -t missing < <(missing_packages "$@")
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all $# present"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local out
  out=$(mktemp)
  # Debian's docker.io and etcd-server try to start services on install; we start our own.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$out" 2>&1; then
    tail_log "$out" 40
    rm -f "$out"
    die "apt-get could not install: ${missing[*]}"
  fi
  rm -f "$out"
  mapfile -t missing < <(missing_packages "$@")
  [ ${#missing[@]} -eq 0 ] || die "apt-get did not install: ${missing[*]}"
}

# docker_engine_28: prints a directory holding today's Docker Engine (dockerd 28, containerd 2,
# containerd-shim-runc-v2, docker-proxy, the docker CLI and docker-compose v2) from Debian sid's
# packages, downloaded and unpacked once into a cache; put it first on PATH. Bookworm's runc stays
# (sid's needs a newer glibc). Nothing is installed: sid's packages only reach the cache.
DOCKER_28_CACHE=/var/cache/calico-docker/docker-engine-28
docker_engine_28() {
  local c=$DOCKER_28_CACHE tmp f compose
  local bins=(dockerd docker-proxy containerd containerd-shim-runc-v2 docker docker-compose)
  if [ -d "$c/bin" ] && (cd "$c/bin" && for f in "${bins[@]}"; do [ -x "$f" ] || exit 1; done); then
    echo "$c/bin"
    return 0
  fi
  log "fetching Docker Engine 28 (Debian sid's docker.io, docker-cli, containerd, docker-compose) into $c"
  mkdir -p "$c"
  tmp=$(mktemp -d "$c/fetch.XXXXXX")
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root" "$tmp/bin"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main' >"$tmp/sources.list"
  local apt=(-o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o APT::Sandbox::User=root)
  apt-get "${apt[@]}" update -qq >&2
  (cd "$tmp/debs" && apt-get "${apt[@]}" download -qq docker.io docker-cli containerd docker-compose >&2)
  for f in "$tmp"/debs/*.deb; do dpkg-deb -x "$f" "$tmp/root"; done
  cp "$tmp/root/usr/sbin/dockerd" "$tmp/root/usr/sbin/docker-proxy" "$tmp/root/usr/bin/containerd" \
    "$tmp/root/usr/bin/containerd-shim-runc-v2" "$tmp/root/usr/bin/docker" "$tmp/bin/"
  compose=$(find "$tmp/root" -name docker-compose -type f | head -n1)
  [ -n "$compose" ] || die "sid's docker-compose package has no docker-compose binary"
  cp "$compose" "$tmp/bin/docker-compose"
  "$tmp/bin/dockerd" --version >&2 || die "sid's dockerd does not run on this machine"
  rm -rf "${c:?}/bin"
  mv "$tmp/bin" "$c/bin"
  rm -rf "$tmp"
  echo "$c/bin"
}

# Installs cargo-fuzz (for the bounded fuzz runs) when it is missing.
ensure_cargo_fuzz() {
  cargo fuzz --version >/dev/null 2>&1 && return 0
  log "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked --quiet
}

# ---------------------------------------------------------------------------------------------
# Long-running processes, tracked by pid file only (never by name: other people's dockerd, etcd
# and test processes share this machine). Used by scripts/cluster.

# alive PID: the process exists and is not a zombie. `kill -0` is not enough: our daemons are
# re-parented to PID 1, which may reap them late, and `kill -0` succeeds on a zombie.
alive() {
  local state
  [ -n "${1:-}" ] || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_dead PID SECONDS: waits until PID is no longer alive; fails on timeout.
wait_dead() {
  local pid=$1 deadline=$((${EPOCHREALTIME//[!0-9]/} + $2 * 1000000))
  while alive "$pid"; do
    [ "${EPOCHREALTIME//[!0-9]/}" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# spawn PIDFILE LOGFILE CMD...: starts CMD detached (own session, cwd /, stdin /dev/null, stdout
# and stderr appended to LOGFILE) and records ITS pid in PIDFILE: the shell writes its own pid and
# then execs CMD, so as long as CMD and its wrappers exec too (env, nsenter, unshare do) the pid is
# the daemon's. Waiting for `setsid CMD & echo $!` instead is wrong: setsid forks when the caller
# leads a process group. Fds other than 0-2 are not inherited (SPAWN_CLOSE_FD: one more to close).
spawn() {
  local pidfile=$1 logfile=$2 i
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # expanded by that sh
  if [ -n "${SPAWN_CLOSE_FD:-}" ]; then
    setsid /bin/sh -c 'cd / && echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
      "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null {SPAWN_CLOSE_FD}>&- &
  else
    setsid /bin/sh -c 'cd / && echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
      "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  fi
  for ((i = 0; i < 500; i++)); do
    [ -s "$pidfile" ] && return 0
    sleep 0.01
  done
  die "could not start $* (no pid file $pidfile after 5 s)"
}

# wait_until SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds; fails (status 1, with
# a message) after SECONDS. The caller decides whether that is fatal.
wait_until() {
  local what=$2 deadline=$((${EPOCHREALTIME//[!0-9]/} + $1 * 1000000))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "${EPOCHREALTIME//[!0-9]/}" -ge "$deadline" ]; then
      log "timed out waiting for $what"
      return 1
    fi
    sleep 0.05
  done
}

# tail_log FILE [LINES]: the end of a log file, indented, for error messages.
tail_log() {
  if [ -s "$1" ]; then
    printf '  --- last lines of %s ---\n' "$1" >&2
    tail -n "${2:-25}" "$1" | sed 's/^/  | /' >&2
  else
    printf '  (log %s is empty or missing)\n' "$1" >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# busybox_tarball DIR: a rootfs tarball from Debian's busybox-static for `docker import` (images
# cannot be pulled here), cached in DIR keyed by the binary; prints its path.
busybox_tarball() {
  local dir=$1 bin sum tar tmp applet
  bin=$(readlink -f "$(command -v busybox)") || die "busybox is missing (Debian busybox-static)"
  sum=$(sha256sum "$bin" | cut -c1-16)
  tar=$dir/busybox-rootfs-$sum.tar
  if [ ! -s "$tar" ]; then
    log "building the busybox image rootfs from $bin (cached as $tar)"
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,etc,proc,sys,dev,root,tmp,var}
    chmod 1777 "$tmp/tmp"
    cp "$bin" "$tmp/bin/busybox"
    for applet in $("$tmp/bin/busybox" --list); do
      [ "$applet" = busybox ] || ln -sf busybox "$tmp/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
    mkdir -p "$dir"
    tar -C "$tmp" -cf "$tar.$$" . && mv -f "$tar.$$" "$tar" # atomic: builds may race
    rm -rf "$tmp"
  fi
  echo "$tar"
}

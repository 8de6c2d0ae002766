# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s [%s] %s\n' "$(date +%T)" "$(basename "$0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (sudo $0)"; }

# Debian packages the project builds and tests with, keyed by a command each provides.
PACKAGES=(
  "protoc:protobuf-compiler"   # etcd client code generation at build time
  "etcd:etcd-server"           # multi-host datastore; the store tests start their own
  "etcdctl:etcd-client"
  "nft:nftables"               # policy dataplane
  "bird:bird2"                 # BGP between hosts
  "busybox:busybox-static"     # the test image, imported with docker import
  "dockerd:docker.io"          # Docker Engine
  "iptables:iptables"          # Docker's own rules
  "ip:iproute2"
  "nsenter:util-linux"
  "gcc:build-essential"        # bundled SQLite, libFuzzer
  "openssl:openssl"            # test certificates for etcd over TLS
)

# Installs whatever is missing from PACKAGES; does nothing when all are present.
ensure_packages() {
  local missing=() entry cmd pkg
  for entry in "${PACKAGES[@]}"; do
    cmd=${entry%%:*}; pkg=${entry#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's docker.io and etcd-server try to start services on install; we start our own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

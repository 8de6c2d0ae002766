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

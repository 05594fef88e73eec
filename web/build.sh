#!/usr/bin/env bash
# Build the in-browser demo into web/pkg/; then serve web/ with any static server, e.g.
#   python3 -m http.server 8000 --bind 127.0.0.1 --directory web
# and open http://127.0.0.1:8000/ in a browser with WebGPU.
#
# Toolchain (rustup has no wasm32 standard library here): Debian's rustc-web 1.96 with the
# standard library built from source (-Zbuild-std), lld-22 as rust-lld, and the wasm-bindgen CLI
# at exactly the version web/Cargo.toml pins. Missing Debian packages are installed when running
# as root with apt-get; the CLI is installed with cargo into .tools/ (or $DARTS_PT_TOOLS).
set -euo pipefail
cd "$(dirname "$0")"
web=$(pwd)
root=$(cd .. && pwd)
wbg_version=0.2.130
tools=${DARTS_PT_TOOLS:-$root/.tools}
# The wasm build keeps its own target directory (rustc-web and rustup's rustc must not share one);
# CARGO_TARGET_DIR, meant for the native build, is ignored here.
target=${DARTS_PT_WASM_TARGET_DIR:-$root/target-wasm}

packages="rustc-web cargo-web rust-web-src rust-web-llvm lld-22"
if ! dpkg -s $packages >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build.sh: installing $packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "build.sh: needs the Debian packages: $packages (sudo apt-get install $packages)" >&2
    exit 1
  fi
fi

if ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $wbg_version\$"; then
  echo "build.sh: installing wasm-bindgen-cli $wbg_version into $tools"
  # Not --locked: its lock file names a webpki-roots release that crates.io no longer has.
  # At opt-level 1: a cold install spends minutes compiling it, and the CLI runs once per build
  # (8.1 s instead of 7.8 s on the 39 MB module here, the same output).
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install wasm-bindgen-cli --version "$wbg_version" --root "$tools" --quiet
fi

/usr/bin/rustc --version
start=$(date +%s)
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target" \
  /usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort --target wasm32-unknown-unknown
module="$target/wasm32-unknown-unknown/release/darts_pt_web.wasm"
# wasm-ld links a module that never calls `__wasm_call_ctors` "command style": every export then
# re-runs all static constructors (thousands here) on each call from JS. `web/src/lib.rs` calls it
# once; the linker's names for such wrappers (`<export>.command_export`) must not appear.
if ! LC_ALL=C grep -q -a "__wasm_call_ctors" "$module"; then
  echo "build.sh: $module has no name section; cannot check for command-style export wrappers" >&2
  exit 1
elif LC_ALL=C grep -q -a "\.command_export" "$module"; then
  echo "build.sh: $module re-runs its static constructors in every export (.command_export wrappers); web/src/lib.rs must call __wasm_call_ctors once" >&2
  exit 1
fi
"$tools/bin/wasm-bindgen" --target web --no-typescript --remove-name-section --out-dir "$web/pkg" "$module"
wasm="$web/pkg/darts_pt_web_bg.wasm"
echo "build.sh: built in $(( $(date +%s) - start )) s"
echo "build.sh: $wasm: $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) bytes gzipped"

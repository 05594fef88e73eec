#!/usr/bin/env bash
# Prepares the GPU benchmark (tests/gpu/run.sh) on a build machine with Rust and network, for a
# Linux x86-64 machine with an NVIDIA GPU and PyTorch but no Rust toolchain and no network.
#
#   tests/gpu/prepare.sh            (from the repository root)
#
# It fills tests/gpu/pack/ (ignored by git; about 20 to 30 MiB, checked below 64 MiB) with:
#   darts-pt.gz   a stripped, gzip-compressed release build without the desktop app (`--no-default-features`);
#                 a cold release build takes most of an hour on 2 cores, an incremental one minutes
#   glibc.txt     the newest glibc symbol version that binary needs (run.sh checks the target's)
#   debs/         the Vulkan loader and glvnd as Debian packages (libvulkan1, libglvnd0, libglx0,
#                 libgl1, libegl1, libopengl0), unpacked by run.sh if the target lacks them
#   bench/        copies of reference_bench.py and side_by_side.sh ($DARTS_PT_SHARED/bench, default
#                 ../shared/bench)
#   reference/    the PyTorch reference (ruocwang/darts-pt) exported at commit 4ec3149, from
#                 $DARTS_PT_REF_GIT (a clone or bare git directory) or else cloned from GitHub
#   MANIFEST.txt  what was built from which commit, and each file's SHA-256
# Then carry tests/gpu/pack to the GPU machine with the tree and run tests/gpu/run.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PACK=$ROOT/tests/gpu/pack
REF_COMMIT=4ec3149dea0d77efd8e4c118f578b454dad5e0ac
SHARED=${DARTS_PT_SHARED:-$ROOT/../shared}
[ -f "$SHARED/bench/reference_bench.py" ] && [ -f "$SHARED/bench/side_by_side.sh" ] \
  || { echo "prepare: $SHARED/bench/ lacks reference_bench.py or side_by_side.sh (set DARTS_PT_SHARED)" >&2; exit 1; }
for tool in cargo apt-get objdump git sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "prepare: needs $tool on this machine" >&2; exit 1; }
done

echo "prepare: release build (stripped, --no-default-features)"
start=$(date +%s)
CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked --no-default-features --bin darts-pt
echo "prepare: build took $(( $(date +%s) - start )) s"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/darts-pt

rm -rf "$PACK"; mkdir -p "$PACK/debs" "$PACK/bench" "$PACK/reference"
cp "$BIN" "$PACK/darts-pt"
# The newest GLIBC_x.y symbol version the binary links against: the target's glibc must be at least that.
objdump -T "$PACK/darts-pt" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1 >"$PACK/glibc.txt"
echo "prepare: the binary needs glibc $(cat "$PACK/glibc.txt") or newer (this machine has $(ldd --version | head -1 | grep -o '[0-9][0-9.]*$'))"
# Compressed: the stripped release binary (~69 MiB) alone is over the 64 MiB that travels to the device.
gzip -9 -f "$PACK/darts-pt"

# The Vulkan loader, and glvnd's libraries that NVIDIA's ICD (libGLX_nvidia) loads.
(cd "$PACK/debs" && apt-get download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0) \
  || { echo "prepare: apt-get download of the Vulkan loader and glvnd packages failed (a Debian or Ubuntu package source is needed)" >&2; exit 1; }
cp "$SHARED/bench/reference_bench.py" "$SHARED/bench/side_by_side.sh" "$PACK/bench/"
chmod +x "$PACK/bench/side_by_side.sh"

if [ -n "${DARTS_PT_REF_GIT:-}" ]; then
  git --git-dir="$(cd "$DARTS_PT_REF_GIT" && git rev-parse --absolute-git-dir)" archive "$REF_COMMIT" | tar -x -C "$PACK/reference"
else
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  git clone -q https://github.com/ruocwang/darts-pt "$tmp/ref"
  git -C "$tmp/ref" archive "$REF_COMMIT" | tar -x -C "$PACK/reference"
fi
[ -f "$PACK/reference/nasbench201/search_model_darts_proj.py" ] && [ -f "$PACK/reference/sota/cnn/model_search_darts_proj.py" ] \
  || { echo "prepare: the exported reference tree looks wrong: $PACK/reference" >&2; exit 1; }

{
  echo "darts-pt commit: $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(ldd --version | head -1)"
  echo "build: CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked --no-default-features"
  echo "reference: ruocwang/darts-pt $REF_COMMIT"
  echo "needs glibc: $(cat "$PACK/glibc.txt")"
  (cd "$PACK" && find . -type f ! -name MANIFEST.txt -print0 | sort -z | xargs -0 sha256sum)
} >"$PACK/MANIFEST.txt"

size_kib=$(du -sk "$PACK" | cut -f1)
[ "$size_kib" -lt $((64 * 1024)) ] || { echo "prepare: $PACK is $size_kib KiB, over 64 MiB" >&2; exit 1; }
echo "prepare: $PACK ready ($((size_kib / 1024)) MiB); on the GPU machine run tests/gpu/run.sh [OUT_DIR]"

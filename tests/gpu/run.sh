#!/usr/bin/env bash
# The GPU benchmark of issue 16: `darts-pt bench --device wgpu` against the PyTorch reference on
# CUDA, side by side on one machine, at the two sizes of the paper's search (NB201 C=16 N=5 and the
# DARTS 7-op space C=16 with 8 cells, batch 64, 32x32 inputs), in under 8 minutes.
#
#   tests/gpu/run.sh [OUT_DIR]        (from anywhere; OUT_DIR defaults to $OUT, else tests/gpu/out)
#
# Needs: Linux x86-64, an NVIDIA GPU with its driver (Vulkan ICD included), python3 with torch
# (CUDA), torchvision and numpy; no Rust toolchain and no network. Everything else comes from
# tests/gpu/pack/, made beforehand by tests/gpu/prepare.sh.
# Environment: PYTHON (default python3), ROUNDS (alternations per size, default 2),
# BUDGET_S (the whole run's limit in seconds, default 450), VK_DRIVER_FILES (default: the NVIDIA
# ICD found under /usr/local/nvidia, /usr/share or /etc).
# DRY_RUN=1 checks the pack and this script on the build machine instead: both sides on the CPU
# (python with torch, torchvision and numpy; no GPU), at a tiny size. Its numbers mean nothing.
# Writes to OUT_DIR (at most 7 files, so that a device harness that returns a few files gets all):
#   devices.txt                 nvidia-smi -L and `darts-pt devices` (the adapters, the chosen one)
#   nb201-darts-pt.jsonl        one `darts-pt bench --json` object per line (fused rounds, then
#   darts-darts-pt.jsonl        one `--kernels plain` run if time allows)
#   nb201-reference.jsonl       one reference_bench.py object per line
#   darts-reference.jsonl
#   table.txt                   side_by_side.sh's tables, then the summary: per size and kernels,
#                               best times, ratios darts-pt / reference, wgpu-vs-flex logits check
#   run.log                     everything printed
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PACK=$HERE/pack
OUTDIR=${1:-${OUT:-$HERE/out}}
mkdir -p "$OUTDIR"; OUTDIR=$(cd "$OUTDIR" && pwd)
rm -f "$OUTDIR"/*-darts-pt.jsonl "$OUTDIR"/*-reference.jsonl "$OUTDIR/table.txt" "$OUTDIR/devices.txt"
exec > >(tee "$OUTDIR/run.log") 2>&1
PY=${PYTHON:-python3}
ROUNDS=${ROUNDS:-2}
BUDGET_S=${BUDGET_S:-450}
DRY=${DRY_RUN:-0}
if [ "$DRY" = 1 ]; then SIDE=cpu; OURS_DEV=cpu; else SIDE=gpu; OURS_DEV=wgpu; fi
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
die() { echo "gpu bench: $*" >&2; exit 1; }

# --- what the pack and this machine must provide -------------------------------------------------
[ -f "$PACK/darts-pt.gz" ] && [ -f "$PACK/bench/side_by_side.sh" ] && [ -d "$PACK/reference/nasbench201" ] \
  || die "$PACK is missing or incomplete: run tests/gpu/prepare.sh on the build machine first"
BIN=/tmp/darts-pt-bin/darts-pt
mkdir -p /tmp/darts-pt-bin && gunzip -c "$PACK/darts-pt.gz" >"$BIN" && chmod +x "$BIN" \
  || die "could not unpack $PACK/darts-pt.gz into /tmp/darts-pt-bin"
[ "$(uname -m)" = x86_64 ] || die "the prepared binary is x86-64; this machine is $(uname -m)"
need=$(cat "$PACK/glibc.txt")
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | grep -o '[0-9][0-9.]*' || ldd --version | head -1 | grep -o '[0-9][0-9.]*$')
[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" = "$need" ] \
  || die "the binary needs glibc $need or newer; this machine has $have (build it on an older system)"
"$PY" -c 'import sys, torch, torchvision, numpy; assert sys.argv[1] == "1" or torch.cuda.is_available(), "torch sees no CUDA device"' "$DRY" \
  || die "$PY needs torch with CUDA, torchvision and numpy (set PYTHON)"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
head -5 "$PACK/MANIFEST.txt"
if [ "$DRY" != 1 ]; then

# The Vulkan loader (and glvnd's libGLdispatch, which NVIDIA's ICD library loads): the system's,
# else the carried Debian packages, unpacked outside / and found through LD_LIBRARY_PATH.
if ! { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && ldconfig -p 2>/dev/null | grep -q 'libGLdispatch\.so\.0'; }; then
  VK=/tmp/darts-pt-vulkan; mkdir -p "$VK"
  for f in "$PACK"/debs/*.deb; do dpkg -x "$f" "$VK" || die "could not unpack $f"; done
  export LD_LIBRARY_PATH=$VK/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "gpu bench: Vulkan loader and glvnd from the pack ($VK)"
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
             /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && { export VK_DRIVER_FILES=$icd; break; }
  done
  [ -n "${VK_DRIVER_FILES:-}" ] || die "no NVIDIA Vulkan ICD (nvidia_icd.json) found: set VK_DRIVER_FILES"
fi
echo "gpu bench: VK_DRIVER_FILES=${VK_DRIVER_FILES:-} ${VK_ICD_FILENAMES:+VK_ICD_FILENAMES=$VK_ICD_FILENAMES}"

{ nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"; "$BIN" devices; } >"$OUTDIR/devices.txt" 2>&1 \
  || { cat "$OUTDIR/devices.txt"; die "darts-pt devices failed"; }
cat "$OUTDIR/devices.txt"
chosen=$(grep -- '<- --device wgpu' "$OUTDIR/devices.txt" || true)
case "$chosen" in
  *DiscreteGpu*|*IntegratedGpu*|*VirtualGpu*) ;;
  *) die "wgpu found no GPU adapter (the chosen one: '${chosen:-none}'); check the loader and VK_DRIVER_FILES" ;;
esac
else
  echo "gpu bench: DRY_RUN=1: both sides on the CPU at a tiny size (a check of the pack, not a measurement)"
  "$BIN" --version >"$OUTDIR/devices.txt"
fi

# --- the benchmark ------------------------------------------------------------------------------
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# side_by_side.sh keeps the JSONs in a temporary folder; these wrappers also append each one,
# compacted to one line, to OUT_DIR.
cat >"$T/append.py" <<'PY'
import json, sys
obj = json.load(open(sys.argv[1]))
with open(sys.argv[2], 'a') as f:
    f.write(json.dumps(obj) + '\n')
PY
wrap() { # wrap TAG: writes $T/ours-TAG and $T/ref-TAG
  local tag=$1
  cat >"$T/ours-$tag" <<EOF
#!/usr/bin/env bash
"$BIN" "\$@" >"$T/ours-$tag.out" || exit \$?
cat "$T/ours-$tag.out"
"$PY" "$T/append.py" "$T/ours-$tag.out" "$OUTDIR/$tag-darts-pt.jsonl"
EOF
  cat >"$T/ref-$tag" <<EOF
#!/usr/bin/env bash
"$PY" "\$@" || exit \$?
j=; prev=; for a in "\$@"; do [ "\$prev" = --json ] && j=\$a; prev=\$a; done
"$PY" "$T/append.py" "\$j" "$OUTDIR/$tag-reference.jsonl"
EOF
  chmod +x "$T/ours-$tag" "$T/ref-$tag"
}
side() { # side TAG LIMIT_S BENCH_ARGS...
  local tag=$1 limit=$2; shift 2
  local l; l=$(left); [ "$l" -lt "$limit" ] && limit=$l
  [ "$limit" -gt 20 ] || { echo "gpu bench: no time left for $tag" | tee -a "$OUTDIR/table.txt"; return 0; }
  wrap "$tag"
  echo "== $tag: $* (side by side, $ROUNDS rounds, limit ${limit} s)" | tee -a "$OUTDIR/table.txt"
  SIDE_DEVICE=$SIDE timeout "$limit" "$PACK/bench/side_by_side.sh" "$T/ours-$tag" "$T/ref-$tag" \
      "$PACK/reference" "$ROUNDS" -- "$@" 2>&1 | tee -a "$OUTDIR/table.txt" \
    || echo "gpu bench: $tag side by side failed or ran out of time (status ${PIPESTATUS[0]})" | tee -a "$OUTDIR/table.txt"
}
plain() { # plain TAG LIMIT_S BENCH_ARGS...: one darts-pt run with Burn's compositions, for bisecting
  local tag=$1 limit=$2; shift 2
  local l; l=$(left); [ "$l" -lt "$limit" ] && limit=$l
  [ "$limit" -gt 30 ] || { echo "gpu bench: no time left for $tag --kernels plain" | tee -a "$OUTDIR/table.txt"; return 0; }
  echo "== $tag: --kernels plain, one run (limit ${limit} s)"
  timeout "$limit" "$T/ours-$tag" bench --device "$OURS_DEV" --kernels plain "$@" --json >/dev/null \
    || echo "gpu bench: $tag --kernels plain failed or ran out of time" | tee -a "$OUTDIR/table.txt"
}
NB201=(--space nb201 --init-channels 16 --layers 5 --batch-size 64)
DARTS=(--space darts --init-channels 16 --layers 8 --batch-size 64)
if [ "$DRY" = 1 ]; then
  tiny=(--batch-size 8 --input-size 16 --eval-batches 2 --warmup 0 --repeats 1)
  NB201=(--space nb201 --init-channels 4 --layers 1 "${tiny[@]}")
  DARTS=(--space darts --init-channels 4 --layers 2 "${tiny[@]}")
fi
side nb201 170 "${NB201[@]}"
side darts 230 "${DARTS[@]}"
plain nb201 60 "${NB201[@]}"
plain darts 90 "${DARTS[@]}"

# --- the summary --------------------------------------------------------------------------------
"$PY" - "$OUTDIR" <<'PY' | tee -a "$OUTDIR/table.txt"
import json, os, sys
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
keys = ('search_step_s', 'forward_s', 'pt_candidate_s')
print("\nsummary: best of each side; ratio = darts-pt / reference (at or below 1.00: darts-pt as fast or faster)")
print(f"{'size':<7}{'kernels':<8}{'figure':<16}{'darts-pt s':>11}{'reference s':>12}{'ratio':>7}")
worst = None
for tag in ('nb201', 'darts'):
    ours, ref = rows(f'{tag}-darts-pt.jsonl'), rows(f'{tag}-reference.jsonl')
    if not ours or not ref:
        print(f"{tag:<7}(no complete result)")
        continue
    for kern in sorted({o.get('kernels', '?') for o in ours}):
        os_ = [o for o in ours if o.get('kernels', '?') == kern]
        for k in keys:
            a = min(o[k]['min'] for o in os_); b = min(r[k]['min'] for r in ref)
            if kern == 'fused':
                worst = max(worst or 0.0, a / b)
            print(f"{tag:<7}{kern:<8}{k:<16}{a:>11.4f}{b:>12.4f}{a / b:>7.2f}")
        checks = [o['check_vs_cpu_max_rel'] for o in os_ if o.get('check_vs_cpu_max_rel') is not None]
        if checks:
            c = max(checks)
            print(f"{tag:<7}{kern:<8}wgpu vs flex logits: max |a-b|/max|b| = {c:.2e} ({'within' if c <= 1e-4 else 'OVER'} 1e-4)")
    print(f"{tag:<7}adapter: {ours[0].get('adapter')}; reference: torch {ref[0].get('torch')} on {ref[0].get('device')}")
if worst is not None:
    print(f"worst fused ratio: {worst:.2f}")
PY
echo "gpu bench: done in $(( $(date +%s) - START )) s; results in $OUTDIR"

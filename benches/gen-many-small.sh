#!/usr/bin/env bash
# Deterministic "many small files" tree for benches/compare.sh's many-small workload (issue 11):
# DIRS directories x FILES files of 60..80 (mean ~70) pseudo-random bytes each.
#
#   benches/gen-many-small.sh OUT_DIR [DIRS [FILES [SEED]]]      # default 1000 x 1000, seed 1
#
# Same bytes, names and mtimes on every machine: file d/f's content is SHAKE-256("cairn-many-small/SEED/d/f"),
# its length 60 + (first byte of SHAKE-256("len/SEED/d/f") mod 21), its mtime fixed (2026-01-01 00:00:00 UTC),
# directories too. No PRNG whose stream could change between Python versions is used.
# Layout: OUT_DIR/dNNNN/fNNNN (4 digits, zero padded; wider when DIRS or FILES exceed 10000).
# The tree is built in OUT_DIR.tmp and renamed to OUT_DIR when complete; an existing OUT_DIR is refused.
# Prints "files bytes" on stdout when done.

set -euo pipefail
export LC_ALL=C

OUT=${1:?usage: gen-many-small.sh OUT_DIR [DIRS [FILES [SEED]]]}
DIRS=${2:-1000}
FILES=${3:-1000}
SEED=${4:-1}
for v in "$DIRS" "$FILES" "$SEED"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "gen-many-small.sh: DIRS, FILES and SEED must be non-negative integers" >&2; exit 2; }
done
[[ ! -e $OUT ]] || { echo "gen-many-small.sh: $OUT already exists" >&2; exit 1; }
PY=$(command -v python3) || { echo "gen-many-small.sh: python3 is required" >&2; exit 1; }

rm -rf -- "$OUT.tmp"
"$PY" - "$OUT.tmp" "$DIRS" "$FILES" "$SEED" <<'PY'
import hashlib, os, sys

out, ndirs, nfiles, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
MTIME = 1767225600  # 2026-01-01T00:00:00Z
width = max(4, len(str(max(ndirs, nfiles) - 1)))
os.makedirs(out)
total = 0
for d in range(ndirs):
    dname = f"d{d:0{width}d}"
    dpath = os.path.join(out, dname)
    os.mkdir(dpath)
    for f in range(nfiles):
        key = f"{seed}/{d}/{f}".encode()
        n = 60 + hashlib.shake_256(b"len/" + key).digest(1)[0] % 21
        data = hashlib.shake_256(b"cairn-many-small/" + key).digest(n)
        p = os.path.join(dpath, f"f{f:0{width}d}")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.fchmod(fd, 0o644)  # independent of the umask
            os.write(fd, data)
        finally:
            os.close(fd)
        os.utime(p, (MTIME, MTIME))
        total += n
    os.chmod(dpath, 0o755)
    os.utime(dpath, (MTIME, MTIME))
os.chmod(out, 0o755)
os.utime(out, (MTIME, MTIME))
print(f"{ndirs * nfiles} {total}")
PY
mv -- "$OUT.tmp" "$OUT"

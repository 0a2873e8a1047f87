#!/usr/bin/env bash
# End-to-end benchmark: cairn against restic, rustic and bupstash on the same data, in the same run.
#
# See benches/README.md. Short version:
#   benches/compare.sh                                   # full scale, 3 rounds, all tools, all workloads
#   CAIRN_BENCH_WORKLOADS=many-small benches/compare.sh  # only the million-small-files tree
#   CAIRN_BENCH_SCALE=small CAIRN_BENCH_ROUNDS=1 benches/compare.sh
#   CAIRN_BIN=/path/to/cairn CAIRN_BENCH_TOOLS="cairn restic" benches/compare.sh
#   CAIRN_BASE_BIN=/path/to/older/cairn CAIRN_BENCH_TOOLS="cairn cairn-base" benches/compare.sh   # before/after
#   CAIRN_BASE_BIN=/path/to/cairn CAIRN_BASE_BACKUP_ARGS="--verify off" ...   # one option's price, same binary
#
# Everything the script writes lives under $CAIRN_BENCH_DIR (default /var/tmp/cairn-bench) and under one
# private directory on a tmpfs (/dev/shm/cairn-bench.PID, or a tmpfs it mounts under the work dir).
# It reads the toolchain, /usr/include and /usr/share to build its corpus, and never modifies them.

set -uo pipefail
export LC_ALL=C

# ---------------------------------------------------------------- settings
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

DIR=${CAIRN_BENCH_DIR:-/var/tmp/cairn-bench}
SCALE=${CAIRN_BENCH_SCALE:-full}
ROUNDS=${CAIRN_BENCH_ROUNDS:-3}
TOOLS=${CAIRN_BENCH_TOOLS:-cairn restic rustic bupstash}
WORKLOADS=${CAIRN_BENCH_WORKLOADS:-corpus dump many-small}
STEP_TIMEOUT=${CAIRN_BENCH_TIMEOUT:-3600}
DO_INSTALL=${CAIRN_BENCH_INSTALL:-1}
KEEP=${CAIRN_BENCH_KEEP:-0}
STREAM_EDITS=${CAIRN_BENCH_STREAM_EDITS:-64}
TMPFS_BASE=${CAIRN_BENCH_TMPFS:-/dev/shm}
# How cairn opens its repositories: `secret` (a generated key file secret, format-spec §4.1, the credential README.md
# recommends for unattended hosts, and what bupstash's key file is) or `password` (argon2id, like restic's scrypt).
CAIRN_CREDENTIAL=${CAIRN_BENCH_CREDENTIAL:-secret}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}

# MS_DIRS x MS_FILES: the many-small tree (benches/gen-many-small.sh); GROW_MB: the real-file corpus backed up
# into the many-small repository as "new data" (built like the main corpus).
case "$SCALE" in
  full)  CORPUS_MB=1900; DUMP_MB=1000; MS_DIRS=1000; MS_FILES=1000; GROW_MB=200 ;;
  small) CORPUS_MB=200;  DUMP_MB=100;  MS_DIRS=100;  MS_FILES=1000; GROW_MB=40 ;;
  tiny)  CORPUS_MB=40;   DUMP_MB=20;   MS_DIRS=10;   MS_FILES=100;  GROW_MB=40 ;;
  *) echo "CAIRN_BENCH_SCALE must be full, small or tiny (or set CAIRN_BENCH_CORPUS_MB / CAIRN_BENCH_DUMP_MB)" >&2
     exit 2 ;;
esac
CORPUS_MB=${CAIRN_BENCH_CORPUS_MB:-$CORPUS_MB}
DUMP_MB=${CAIRN_BENCH_DUMP_MB:-$DUMP_MB}
MS_DIRS=${CAIRN_BENCH_MS_DIRS:-$MS_DIRS}
MS_FILES=${CAIRN_BENCH_MS_FILES:-$MS_FILES}
GROW_MB=${CAIRN_BENCH_GROW_MB:-$GROW_MB}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "CAIRN_BENCH_ROUNDS must be a positive integer" >&2; exit 2; }
[[ $CAIRN_CREDENTIAL == secret || $CAIRN_CREDENTIAL == password ]] ||
  { echo "CAIRN_BENCH_CREDENTIAL must be secret or password" >&2; exit 2; }
[[ $CORPUS_MB =~ ^[1-9][0-9]*$ && $DUMP_MB =~ ^[1-9][0-9]*$ ]] || { echo "corpus/dump MB must be positive integers" >&2; exit 2; }
[[ $MS_DIRS =~ ^[1-9][0-9]*$ && $MS_FILES =~ ^[1-9][0-9]*$ && $GROW_MB =~ ^[1-9][0-9]*$ ]] ||
  { echo "CAIRN_BENCH_MS_DIRS, CAIRN_BENCH_MS_FILES and CAIRN_BENCH_GROW_MB must be positive integers" >&2; exit 2; }
declare -A WANT=()
for w in $WORKLOADS; do
  case "$w" in
    corpus|dump|many-small) WANT[$w]=1 ;;
    *) echo "CAIRN_BENCH_WORKLOADS: unknown workload '$w' (known: corpus dump many-small)" >&2; exit 2 ;;
  esac
done
(( ${#WANT[@]} > 0 )) || { echo "CAIRN_BENCH_WORKLOADS is empty" >&2; exit 2; }

CORPUS=$DIR/corpus-${CORPUS_MB}mb          # cached copy of real files; the backup source
DUMP=$DIR/dump-${DUMP_MB}mb.sql             # cached sqlite3 .dump
DUMP2=$DIR/dump-${DUMP_MB}mb-edited.sql     # the same dump, edited in the middle
STASH=$DIR/stash-${CORPUS_MB}mb             # originals of the files the 1 % mutation edits
TREE=$DIR/many-small-${MS_DIRS}x${MS_FILES}  # cached many-small tree (gen-many-small.sh, seed 1)
GROW=$DIR/corpus-${GROW_MB}mb               # new data backed up into the many-small repository
SCRATCH=$DIR/scratch                        # repositories and caches, wiped every round
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RUNDIR=$DIR/runs/$RUN_ID
LOGS=$RUNDIR/logs
TSV=$RUNDIR/results.tsv
HELPER=$DIR/.compare-helper.py

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)

say()  { printf '%s\n' "$*" >&2; }
note() { printf '[bench] %s\n' "$*" >&2; }
die()  { printf '[bench] FATAL: %s\n' "$*" >&2; exit 1; }

# rm -rf, but only below the work dir or our tmpfs dir.
safe_rm() {
  local p
  for p in "$@"; do
    [[ -e $p || -L $p ]] || continue
    p=$(realpath -s "$p")
    case "$p" in
      "$DIR"/?*|"${SHM_RUN:-/nonexistent}"/?*|"${SHM_RUN:-/nonexistent}") rm -rf -- "$p" ;;
      *) die "refusing to delete $p (outside $DIR and the tmpfs dir)" ;;
    esac
  done
}

# ---------------------------------------------------------------- setup
mkdir -p "$DIR" "$LOGS" || die "cannot create $DIR"
DIR=$(realpath -s "$DIR")
exec 9>"$DIR/.lock"
flock -n 9 || die "another compare.sh run holds $DIR/.lock"

APT_UPDATED=0
apt_install() {  # apt_install PKG... ; returns non-zero on failure
  [[ $DO_INSTALL == 1 ]] || return 1
  command -v apt-get >/dev/null || return 1
  note "apt-get install -y $*"
  if ! DEBIAN_FRONTEND=noninteractive nice -n 19 apt-get install -y -qq "$@" >>"$LOGS/install.log" 2>&1; then
    if [[ $APT_UPDATED == 0 ]]; then
      APT_UPDATED=1
      nice -n 19 apt-get update -qq >>"$LOGS/install.log" 2>&1
      DEBIAN_FRONTEND=noninteractive nice -n 19 apt-get install -y -qq "$@" >>"$LOGS/install.log" 2>&1 || return 1
    else
      return 1
    fi
  fi
}

[[ -x /usr/bin/time ]] || apt_install time || die "/usr/bin/time (GNU time) is required"
command -v sqlite3 >/dev/null || apt_install sqlite3 || die "sqlite3 is required"
[[ -n $PY ]] || apt_install python3 || die "python3 is required"
[[ -n $PY ]] || PY=$(command -v python3)
command -v flock >/dev/null || die "flock (util-linux) is required"

# ---------------------------------------------------------------- python helper
cat >"$HELPER" <<'PY'
import os, sys, stat, random, shutil, mmap, statistics, subprocess

LARGE = 16 << 20

def walk_entries(root):
    """(relpath, kind, size) in a deterministic walk order; kind is d, f or l."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        keep = []
        names = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        for d in dirnames:
            if not os.path.islink(os.path.join(dirpath, d)):
                keep.append(d)
        dirnames[:] = keep
        if rel:
            out.append((rel, "d", 0))
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            r = os.path.join(rel, n) if rel else n
            if stat.S_ISREG(st.st_mode):
                out.append((r, "f", st.st_size))
            elif stat.S_ISLNK(st.st_mode):
                out.append((r, "l", 0))
    return out

def plan(listdir, target, ref, sources):
    """Choose the corpus: walk the sources in order until `ref` bytes (the full-size corpus), then if
    target < ref keep a strided sample of the small files plus the smallest large files."""
    chosen = []   # (srcindex, name, root, rel, kind, size)
    total = 0
    for i, spec in enumerate(sources):
        name, root = spec.split("=", 1)
        if not os.path.isdir(root):
            print(f"  source {root} missing, skipped", file=sys.stderr)
            continue
        for rel, kind, size in walk_entries(root):
            if total >= ref:
                break
            chosen.append((i, name, root, rel, kind, size))
            total += size
        if total >= ref:
            break
    if target < total:
        s = target / total
        large = sorted((c for c in chosen if c[4] == "f" and c[5] >= LARGE), key=lambda c: c[5])
        large_bytes = sum(c[5] for c in large)
        small = [c for c in chosen if c[4] != "d" and not (c[4] == "f" and c[5] >= LARGE)]
        keep_large, lb = [], 0
        for c in large:
            if lb + c[5] <= s * large_bytes * 1.5 or (not keep_large and c[5] <= target * 0.5):
                keep_large.append(c); lb += c[5]
        small_budget = max(target - lb, 1)
        small_bytes = sum(c[5] for c in small) or 1
        stride = max(1, round(small_bytes / small_budget))
        keep_small = [c for k, c in enumerate(small) if k % stride == stride // 2]
        keep = set((c[0], c[3]) for c in keep_large + keep_small)
        # ancestors of kept entries
        dirs = set()
        for (i, rel) in list(keep):
            d = os.path.dirname(rel)
            while d:
                dirs.add((i, d)); d = os.path.dirname(d)
        chosen = [c for c in chosen if (c[0], c[3]) in keep or (c[4] == "d" and (c[0], c[3]) in dirs)]
    os.makedirs(listdir, exist_ok=True)
    bysrc = {}
    for c in chosen:
        bysrc.setdefault((c[0], c[1], c[2]), []).append(c)
    nfiles = sum(1 for c in chosen if c[4] == "f")
    nbytes = sum(c[5] for c in chosen)
    nlarge = sum(1 for c in chosen if c[4] == "f" and c[5] >= LARGE)
    nsmall4k = sum(1 for c in chosen if c[4] == "f" and c[5] < 4096)
    for (i, name, root), cs in sorted(bysrc.items()):
        lf = os.path.join(listdir, f"{i:02d}.list")
        with open(lf, "wb") as f:
            for c in sorted(cs, key=lambda c: (c[4] != "d", c[3])):   # directories first
                f.write(os.fsencode(c[3]) + b"\0")
        print(f"{name}\t{root}\t{lf}")
    print(f"  plan: {nfiles} files ({nsmall4k} under 4 KiB, {nlarge} of 16 MiB or more), "
          f"{nbytes/1e6:.0f} MB", file=sys.stderr)

def regular_files(root):
    return [(r, s) for r, k, s in walk_entries(root) if k == "f"]

def is_text(path, size):
    if size == 0 or size > (4 << 20):
        return None
    try:
        with open(path, "rb") as f:
            b = f.read()
    except OSError:
        return None
    if b"\0" in b:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None

def make_dump(corpus, target, dbpath, out):
    import sqlite3
    files = regular_files(corpus)
    texts = []
    for rel, size in files:
        if is_text(os.path.join(corpus, rel), size) is not None:
            texts.append((rel, size))
    if not texts:
        sys.exit("no text files in the corpus")
    text_bytes = sum(s for _, s in texts)
    print(f"  dump: {len(texts)} text files, {text_bytes/1e6:.0f} MB of text; filling to {target/1e6:.0f} MB",
          file=sys.stderr)
    if os.path.exists(dbpath):
        os.unlink(dbpath)
    db = sqlite3.connect(dbpath)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, path TEXT NOT NULL, rev INTEGER NOT NULL,"
               " size INTEGER NOT NULL, mtime INTEGER NOT NULL, lines INTEGER NOT NULL, content TEXT NOT NULL)")
    db.execute("CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO meta VALUES('source', ?)", (corpus,))
    rng = random.Random(42)
    total, rev, rowid = 0, 0, 0
    # 0.97: INSERT statement overhead and quote doubling make the dump a little bigger than the text
    while total < target * 0.97:
        order = list(range(len(texts)))
        if rev > 0:
            rng.shuffle(order)   # later revisions come in another order, like a table that was rewritten
        for k in order:
            if total >= target * 0.97:
                break
            rel, size = texts[k]
            p = os.path.join(corpus, rel)
            txt = is_text(p, size)
            if txt is None:
                continue
            if rev > 0:
                lines = txt.split("\n")
                for j in range(rev % 8, len(lines), 8):
                    lines[j] = lines[j] + f" -- r{rev}"
                txt = "\n".join(lines)
            rowid += 1
            db.execute("INSERT INTO docs VALUES(?,?,?,?,?,?,?)",
                       (rowid, (f"rev{rev}/" if rev else "") + rel, rev, len(txt.encode()),
                        int(os.lstat(p).st_mtime), txt.count("\n"), txt))
            total += len(txt.encode())
        rev += 1
    db.execute("CREATE INDEX docs_path ON docs(path)")
    db.commit()
    db.close()
    with open(out, "wb") as f:
        subprocess.run(["sqlite3", dbpath, ".dump"], stdout=f, check=True)
    os.unlink(dbpath)
    print(f"  dump: {rowid} rows in {rev} revision(s), {os.path.getsize(out)/1e6:.0f} MB", file=sys.stderr)

def gen_text(rng, n):
    """n bytes of fresh SQL-looking lines."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
             "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
    parts, size, i = [], 0, 0
    while size < n:
        body = " ".join(rng.choice(words) + str(rng.randrange(1 << 30)) for _ in range(rng.randrange(8, 200)))
        line = f"INSERT INTO docs VALUES({10**9 + rng.randrange(10**9)},'bench/inserted/{i}',9,0,0,0,'{body}');\n"
        parts.append(line); size += len(line); i += 1
    return "".join(parts).encode()[:n]

def edit_dump(src, dst, nedits):
    """Insert a block at 30 %, overwrite two blocks at 50 %, delete a block at 70 %, and make `nedits`
    scattered 100-byte edits between 35 % and 65 % (block = size/1000, at least 64 KiB)."""
    rng = random.Random(42)
    size = os.path.getsize(src)
    block = max(64 << 10, size // 1000)
    with open(src, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        def line_start(pos):
            j = mm.find(b"\n", pos)
            return size if j < 0 else j + 1
        ops = []   # (start, end, replacement)
        a = line_start(int(size * 0.30)); ops.append((a, a, gen_text(rng, block)))
        a = int(size * 0.50); ops.append((a, min(size, a + 2 * block), gen_text(rng, 2 * block)))
        a = line_start(int(size * 0.70)); ops.append((a, min(size, a + block), b""))
        lo, hi = int(size * 0.35), int(size * 0.65)
        for _ in range(nedits):
            a = rng.randrange(lo, hi - 100)
            ops.append((a, a + 100, bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(100))))
        ops.sort(key=lambda o: (o[0], o[1]))
        clean, end = [], -1
        for o in ops:   # drop edits that overlap an earlier one
            if o[0] >= end or o[0] == o[1] == end:
                clean.append(o); end = max(end, o[1])
        with open(dst + ".tmp", "wb") as out:
            cur = 0
            for a, b, data in clean:
                out.write(mm[cur:a]); out.write(data); cur = max(cur, b)
            out.write(mm[cur:])
        mm.close()
    os.replace(dst + ".tmp", dst)
    print(f"  edited dump: {len(clean)} edits, block {block} bytes, "
          f"{os.path.getsize(dst)/1e6:.0f} MB", file=sys.stderr)

MUT_OVERWRITE = b"#CAIRN-BENCH-EDIT#"
MUT_APPEND = b"\n# cairn-bench: appended line for the 1 % mutation step\n"

def mutate(corpus, stash):
    """Edit every 100th regular file (1 %): even picks get 18 bytes overwritten in the middle (same size),
    odd picks get a line appended. Originals are copied to `stash` first."""
    files = regular_files(corpus)
    picks = [files[k] for k in range(50, len(files), 100)]
    os.makedirs(stash, exist_ok=True)
    with open(os.path.join(stash, ".list"), "wb") as lst:
        for rel, _ in picks:
            lst.write(os.fsencode(rel) + b"\0")
    for rel, _ in picks:
        d = os.path.join(stash, "files", os.path.dirname(rel))
        os.makedirs(d, exist_ok=True)
        shutil.copy2(os.path.join(corpus, rel), os.path.join(stash, "files", rel), follow_symlinks=False)
    open(os.path.join(stash, ".complete"), "w").close()
    nb = 0
    for k, (rel, size) in enumerate(picks):
        p = os.path.join(corpus, rel)
        if k % 2 == 0 and size >= 2 * len(MUT_OVERWRITE):
            with open(p, "r+b") as f:
                f.seek(size // 2); f.write(MUT_OVERWRITE)
            nb += len(MUT_OVERWRITE)
        else:
            with open(p, "ab") as f:
                f.write(MUT_APPEND)
            nb += len(MUT_APPEND)
    print(f"  mutated {len(picks)} of {len(files)} files ({nb} bytes written)", file=sys.stderr)

def revert(corpus, stash):
    if not os.path.exists(os.path.join(stash, ".complete")):
        return  # mutation never started editing; nothing to undo
    with open(os.path.join(stash, ".list"), "rb") as lst:
        rels = [os.fsdecode(r) for r in lst.read().split(b"\0") if r]
    for rel in rels:
        src = os.path.join(stash, "files", rel)
        dst = os.path.join(corpus, rel)
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo, 1 << 20)
        shutil.copystat(src, dst)
    print(f"  reverted {len(rels)} files", file=sys.stderr)

STEPS = ["init", "backup1", "backup2", "backup3", "restore", "check", "stream1", "stream2", "stream_restore",
         "ms_init", "ms_backup1", "ms_grow", "ms_backup2", "ms_check", "ms_restore"]
TITLES = {
    "init": "init",
    "backup1": "first backup (directory corpus)",
    "backup2": "unchanged second backup",
    "backup3": "backup after editing 1 % of the files",
    "restore": "restore latest to tmpfs (+ diff -r verify, untimed)",
    "stream1": "stream backup (dump on stdin)",
    "stream2": "edited-stream backup",
    "stream_restore": "stream restore (dump to tmpfs file, + cmp verify, untimed)",
    "check": "check, all data (--read-data; bupstash has no check)",
    "ms_init": "many-small: init",
    "ms_backup1": "many-small: first backup of the tree",
    "ms_grow": "many-small: new data (the grow corpus) into that repository",
    "ms_backup2": "many-small: unchanged backup of the tree",
    "ms_check": "many-small: check (structure; bupstash has no check)",
    "ms_restore": "many-small: restore the tree to tmpfs (+ diff -r verify, untimed)",
}
WALKED = ("backup2", "ms_backup2")

def fnum(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"

def markdown(best_by_step, tools, path):
    """One markdown table of the run: best wall s / peak RSS MB per tool and step, the fastest peer / cairn ratio
    and whether the issue-11 target (cairn at >= 1.25x the fastest peer) is met; then repository sizes."""
    peers_all = [t for t in tools if t not in ("cairn", "cairn-base")]
    cols = ["cairn"] + (["cairn-base"] if "cairn-base" in tools else []) + peers_all
    lines = ["| step | " + " | ".join(cols) + " | fastest peer / cairn | >= 1.25x |",
             "|---|" + "---|" * (len(cols) + 2)]
    for step in STEPS:
        best = best_by_step.get(step)
        if not best or step in ("init", "ms_init"):
            continue
        cells = []
        for t in cols:
            b = best.get(t)
            cells.append("—" if not b or b["wall"] is None else f"{b['wall']:.2f} s / {b['rss']:.0f} MB")
        peers = [t for t in peers_all if t in best and best[t]["wall"] is not None]
        cw = best.get("cairn", {}).get("wall")
        ratio, met = "", ""
        if cw and peers:
            bp = min(peers, key=lambda p: best[p]["wall"])
            r = best[bp]["wall"] / cw
            ratio, met = f"{r:.2f} ({bp})", ("yes" if r >= 1.25 else "no")
        title = TITLES[step].split(" (")[0]
        if step in WALKED and best.get("statwalk", {}).get("wall"):
            title += f" (stat walk {best['statwalk']['wall']:.2f} s)"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {ratio} | {met} |")
    lines.append("")
    lines.append("| repository MB after | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for step, what in (("backup1", "first backup"), ("backup3", "+ growth by the 1 % edit"),
                       ("stream1", "+ growth by the dump"), ("stream2", "+ growth by the edited dump"),
                       ("ms_backup1", "many-small first backup"), ("ms_grow", "+ growth by the new data")):
        best = best_by_step.get(step)
        if not best:
            continue
        key = "repo" if step in ("backup1", "ms_backup1") else "delta"
        cells = [("—" if not best.get(t) or best[t][key] is None else f"{best[t][key]:.1f}") for t in cols]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| CPU s (user+sys) | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for step in ("backup1", "restore", "stream1", "ms_backup1", "ms_backup2"):
        best = best_by_step.get(step)
        if not best:
            continue
        cells = [("—" if not best.get(t) or best[t]["cpu"] is None else f"{best[t]['cpu']:.2f}") for t in cols]
        lines.append(f"| {TITLES[step].split(' (')[0]} | " + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

def report(tsv, tools, md=None):
    rows = []
    with open(tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    tools = tools.split()
    failures = [r for r in rows if r["status"] not in ("ok",)]
    out = []
    best_by_step = {}
    for step in STEPS:
        srows = [r for r in rows if r["step"] == step]
        if not srows:
            continue
        out.append("")
        out.append(f"== {step}: {TITLES[step]}")
        out.append(f"{'tool':<18}{'wall s':>9}{'(median)':>10}{'cpu s':>9}{'rss MB':>9}{'repo MB':>10}"
                   f"{'+repo MB':>10}  {'ok/runs':<12}{'peer/cairn'}")
        best = {}
        names = [t for t in tools] + (["statwalk"] if step in WALKED else [])
        for t in names:
            rs = [r for r in srows if r["tool"] == t]
            if not rs:
                continue
            good = [r for r in rs if r["status"] == "ok"]
            if good:
                walls = [float(r["wall_s"]) for r in good]
                best[t] = dict(
                    wall=min(walls), med=statistics.median(walls),
                    cpu=min(float(r["cpu_s"]) for r in good),
                    rss=max(int(r["maxrss_kb"]) for r in good) / 1024,
                    repo=(int(good[-1]["repo_bytes"]) / 1e6) if good[-1]["repo_bytes"] not in ("", "-") else None,
                    delta=(int(good[-1]["repo_delta_bytes"]) / 1e6) if good[-1]["repo_delta_bytes"] not in ("", "-") else None,
                    n=len(good), runs=len(rs))
            else:
                best[t] = dict(wall=None, med=None, cpu=None, rss=None, repo=None, delta=None, n=0, runs=len(rs))
        best_by_step[step] = best
        peers = [t for t in best if t not in ("cairn", "cairn-base", "statwalk") and best[t]["wall"] is not None]
        cw = best.get("cairn", {}).get("wall")
        for t, b in best.items():
            ratio = ""
            if cw:
                if t == "cairn" and peers:
                    bp = min(peers, key=lambda p: best[p]["wall"])
                    ratio = f"{best[bp]['wall'] / cw:.2f}x vs {bp}"
                elif t in peers or (t == "cairn-base" and b["wall"] is not None):
                    ratio = f"{b['wall'] / cw:.2f}x"
            label = "stat walk (find)" if t == "statwalk" else t
            status = f"{b['n']}/{b['runs']}"
            if b["n"] < b["runs"]:
                status += " FAILED"
            out.append(f"{label:<18}{fnum(b['wall']):>9}{'(' + fnum(b['med']) + ')':>10}{fnum(b['cpu']):>9}"
                       f"{fnum(b['rss'], 0):>9}{fnum(b['repo'], 1):>10}{fnum(b['delta'], 1):>10}  {status:<12}{ratio}")
        sw = best.get("statwalk", {}).get("wall")
        if step in WALKED and sw and cw:
            out.append(f"  cairn / stat walk: {cw / sw:.2f}x (target <= 2x)")
    out.append("")
    out.append("wall = best of the rounds, (median); cpu = user+sys, best; rss = peak over rounds;")
    out.append("repo = du -sb of the repository after the step (last good round), +repo = growth by the step;")
    out.append("peer/cairn = peer wall / cairn wall (>1: cairn faster); on cairn's row, against the fastest peer.")
    out.append("ms_* = the many-small workload (its own repositories).")
    if failures:
        out.append("")
        out.append("!!!!!!!! FAILURES !!!!!!!!")
        for r in failures:
            out.append(f"FAILED: round {r['round']} {r['tool']} {r['step']}: {r['status']} {r['note']}")
    print("\n".join(out))
    if md:
        markdown(best_by_step, tools, md)
    return 1 if failures else 0

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plan":
        plan(args[0], int(args[1]), int(args[2]), args[3:])
    elif cmd == "make-dump":
        make_dump(args[0], int(args[1]), args[2], args[3])
    elif cmd == "edit-dump":
        edit_dump(args[0], args[1], int(args[2]))
    elif cmd == "mutate":
        mutate(args[0], args[1])
    elif cmd == "revert":
        revert(args[0], args[1])
    elif cmd == "report":
        sys.exit(report(args[0], args[1], args[2] if len(args) > 2 else None))
    else:
        sys.exit(f"unknown helper command {cmd}")
PY
helper() { "$PY" "$HELPER" "$@"; }

# ---------------------------------------------------------------- corpus
fingerprint() {  # cheap identity of a tree: paths, types, sizes, mtimes
  (cd "$1" && find . -printf '%P\t%y\t%s\t%T@\n' | sort | md5sum | cut -d' ' -f1)
}

# Undo an interrupted mutation from an earlier run.
if [[ -d $STASH ]]; then
  if [[ -d $CORPUS ]]; then
    note "undoing an interrupted 1 % mutation in $CORPUS"
    helper revert "$CORPUS" "$STASH" || die "could not revert $CORPUS from $STASH; delete both and rerun"
  fi
  safe_rm "$STASH"
fi

build_corpus() {  # DEST MB
  local dest=$1 mb=$2 sysroot
  sysroot=${CAIRN_BENCH_SYSROOT:-$(rustc --print sysroot 2>/dev/null)}
  [[ -n $sysroot && -d $sysroot ]] || die "no Rust toolchain found (rustc --print sysroot); set CAIRN_BENCH_SYSROOT"
  note "building corpus $dest (~${mb} MB) from $sysroot, /usr/include, /usr/share/doc, ..."
  safe_rm "$dest" "$dest.ok" "$DIR/lists"
  local full=$(( mb > 1900 ? mb : 1900 ))
  local plan
  plan=$(helper plan "$DIR/lists" "$((mb * 1000000))" "$((full * 1000000))" \
    "rust-toolchain=$sysroot" "usr-include=/usr/include" "usr-share-doc=/usr/share/doc" \
    "usr-share-locale=/usr/share/locale" "usr-lib-gcc=/usr/lib/gcc" "usr-lib-python3=/usr/lib/python3" \
    "usr-lib-python3.11=/usr/lib/python3.11" "usr-share-perl=/usr/share/perl" "usr-share-vim=/usr/share/vim" \
    "usr-share-i18n=/usr/share/i18n" "usr-share-man=/usr/share/man") || die "corpus plan failed"
  mkdir -p "$dest.tmp"
  local name root list
  while IFS=$'\t' read -r name root list; do
    mkdir -p "$dest.tmp/$name"
    tar -C "$root" --null --no-recursion -T "$list" -cf - 2>>"$LOGS/corpus.log" |
      tar -C "$dest.tmp/$name" -xpf - 2>>"$LOGS/corpus.log" || die "copying $root failed (see $LOGS/corpus.log)"
  done <<<"$plan"
  mv "$dest.tmp" "$dest"
  safe_rm "$DIR/lists"
  fingerprint "$dest" >"$dest.ok"
}

ensure_corpus() {  # DEST MB: build, or rebuild when the fingerprint no longer matches
  if [[ -d $1.tmp ]]; then safe_rm "$1.tmp"; fi
  if [[ ! -f $1.ok || ! -d $1 ]]; then
    build_corpus "$1" "$2"
  elif [[ $(fingerprint "$1") != $(cat "$1.ok") ]]; then
    note "corpus $1 changed since it was built; rebuilding"
    build_corpus "$1" "$2"
  fi
}

# The many-small tree: generated by gen-many-small.sh, kept with its fingerprint like the corpus.
ensure_tree() {
  local fp
  if [[ -d $TREE.tmp ]]; then safe_rm "$TREE.tmp"; fi
  if [[ -f $TREE.ok && -d $TREE ]]; then
    fp=$(fingerprint "$TREE")
    [[ $fp == $(cat "$TREE.ok") ]] && return
    note "many-small tree $TREE changed since it was generated; regenerating"
  fi
  safe_rm "$TREE" "$TREE.ok"
  note "generating the many-small tree $TREE ($MS_DIRS x $MS_FILES files of ~70 bytes, seed 1)"
  nice -n 5 "$SCRIPT_DIR/gen-many-small.sh" "$TREE" "$MS_DIRS" "$MS_FILES" 1 >"$LOGS/gen-many-small.log" 2>&1 ||
    die "gen-many-small.sh failed (see $LOGS/gen-many-small.log)"
  fingerprint "$TREE" >"$TREE.ok"
}

C_BYTES=0; D2_BYTES=0; T_FILES=0; T_BYTES=0
if [[ -n ${WANT[corpus]:-}${WANT[dump]:-} ]]; then
ensure_corpus "$CORPUS" "$CORPUS_MB"
read -r C_FILES C_BYTES C_SMALL C_LARGE C_DIRS C_LINKS < <(
  find "$CORPUS" -printf '%y %s\n' | awk '$1=="f"{f++; b+=$2; if($2<4096)s++; if($2>=16777216)l++}
    $1=="d"{d++} $1=="l"{n++} END{print f+0, b+0, s+0, l+0, d+0, n+0}')
note "corpus: $C_FILES files ($C_SMALL under 4 KiB, $C_LARGE of 16 MiB+), $((C_BYTES / 1000000)) MB, $C_DIRS dirs, $C_LINKS symlinks"
fi

# ---------------------------------------------------------------- dump
if [[ -n ${WANT[dump]:-} ]]; then
if [[ ! -s $DUMP ]]; then
  note "building $DUMP (~${DUMP_MB} MB sqlite3 .dump of the corpus's text files)"
  helper make-dump "$CORPUS" "$((DUMP_MB * 1000000))" "$DIR/dump-build.db" "$DUMP.tmp" || die "dump build failed"
  mv "$DUMP.tmp" "$DUMP"
  rm -f "$DUMP2"
fi
if [[ ! -s $DUMP2 || $DUMP2 -ot $DUMP || ! -f $DUMP2.edits-$STREAM_EDITS ]]; then
  note "building $DUMP2"
  rm -f "$DUMP2".edits-*
  helper edit-dump "$DUMP" "$DUMP2" "$STREAM_EDITS" || die "dump edit failed"
  touch "$DUMP2.edits-$STREAM_EDITS"
fi
D_BYTES=$(stat -c %s "$DUMP"); D2_BYTES=$(stat -c %s "$DUMP2")
note "dump: $D_BYTES bytes, edited: $D2_BYTES bytes"
fi

# ---------------------------------------------------------------- many-small
if [[ -n ${WANT[many-small]:-} ]]; then
  ensure_corpus "$GROW" "$GROW_MB"
  G_BYTES=$(find "$GROW" -type f -printf '%s\n' | awk '{b+=$1} END{print b+0}')
  ensure_tree
  read -r T_FILES T_BYTES < <(find "$TREE" -type f -printf '%s\n' | awk '{f++; b+=$1} END{print f+0, b+0}')
  note "many-small: $TREE: $T_FILES files, $T_BYTES bytes ($(du -sm "$TREE" | cut -f1) MB on disk); new data: $GROW ($G_BYTES bytes)"
fi

if [[ ${CAIRN_BENCH_PREPARE_ONLY:-0} == 1 ]]; then
  note "CAIRN_BENCH_PREPARE_ONLY=1: the data of the chosen workloads is ready under $DIR"
  exit 0
fi

# ---------------------------------------------------------------- tmpfs
SHM_RUN=
MOUNTED_TMPFS=
need_mb=$(( (C_BYTES + D2_BYTES) * 12 / 10 / 1000000 + 256 ))
# a restored many-small tree takes a page (4 KiB) and an inode (~1 KiB) per file on tmpfs
ms_mb=$(( T_FILES * 5 / 1000 + T_BYTES / 1000000 + 256 ))
(( ms_mb > need_mb )) && need_mb=$ms_mb
if [[ $(stat -f -c %T "$TMPFS_BASE" 2>/dev/null) == tmpfs ]] &&
   (( $(df -Pm "$TMPFS_BASE" | awk 'NR==2{print $4}') > need_mb )); then
  SHM_RUN=$TMPFS_BASE/cairn-bench.$$
  mkdir -p "$SHM_RUN"
else
  SHM_RUN=$DIR/tmpfs
  mkdir -p "$SHM_RUN"
  if mount -t tmpfs -o "size=${need_mb}m" cairn-bench "$SHM_RUN" 2>>"$LOGS/install.log"; then
    MOUNTED_TMPFS=$SHM_RUN
  else
    note "WARNING: no tmpfs with ${need_mb} MB free; restoring to disk under $SHM_RUN"
  fi
fi
SHM_RUN=$(realpath -s "$SHM_RUN")

MUTATED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ $MUTATED == 1 ]]; then helper revert "$CORPUS" "$STASH" && safe_rm "$STASH"; fi
  if [[ -n $MOUNTED_TMPFS ]]; then umount "$MOUNTED_TMPFS" 2>/dev/null; rmdir "$MOUNTED_TMPFS" 2>/dev/null
  elif [[ -n $SHM_RUN ]]; then safe_rm "$SHM_RUN"; fi
  [[ $KEEP == 1 ]] || safe_rm "$SCRATCH"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
ACTIVE=()
declare -A VERSION

# Password and repository settings: ours only.
unset CAIRN_REPOSITORY CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND CAIRN_CACHE_DIR CAIRN_NEW_PASSWORD
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR \
      RESTIC_COMPRESSION RESTIC_PACK_SIZE
unset BUPSTASH_KEY_COMMAND BUPSTASH_REPOSITORY_COMMAND BUPSTASH_SEND_LOG BUPSTASH_QUERY_CACHE
unset RUSTIC_REPOSITORY RUSTIC_PASSWORD RUSTIC_PASSWORD_FILE RUSTIC_PASSWORD_COMMAND RUSTIC_CACHE_DIR \
      RUSTIC_NO_CACHE RUSTIC_USE_PROFILE RUSTIC_LOG_LEVEL RUSTIC_LOG_FILE
export CAIRN_PASSWORD=cairn-bench-password
export RESTIC_PASSWORD=cairn-bench-password
export BUPSTASH_KEY=$SCRATCH/bupstash/bupstash.key
export BUPSTASH_REPOSITORY=$SCRATCH/bupstash/repo
export BUPSTASH_QUERY_CACHE=$SCRATCH/bupstash/cache/query.qcache
# rustic reads its password from a file (--password-file); the file lives on the private tmpfs dir, not in the scratch dir
RUSTIC_PW=$SHM_RUN/rustic.password
( umask 077; printf 'cairn-bench-password\n' >"$RUSTIC_PW" )

for t in $TOOLS; do
  case "$t" in
    cairn)
      if [[ -n ${CAIRN_BIN:-} ]]; then
        CAIRN=$CAIRN_BIN
      else
        note "building cairn: cargo build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR, nice 19)"
        if (cd "$REPO_ROOT" && nice -n 19 cargo build --release >>"$LOGS/cairn-build.log" 2>&1); then
          CAIRN=$CARGO_TARGET_DIR/release/cairn
        else
          CAIRN=
          note "SKIP cairn: cargo build --release failed (see $LOGS/cairn-build.log)"
        fi
      fi
      if [[ -n $CAIRN ]]; then
        if [[ ! -x $CAIRN ]]; then
          note "SKIP cairn: binary $CAIRN does not exist or is not executable"
        elif ! "$CAIRN" --help >/dev/null 2>&1; then
          note "SKIP cairn: '$CAIRN --help' failed"
        else
          VERSION[cairn]=$("$CAIRN" --version 2>/dev/null | head -n1); VERSION[cairn]=${VERSION[cairn]:-"cairn ($CAIRN)"}
          ACTIVE+=(cairn)
        fi
      fi
      ;;
    restic)
      command -v restic >/dev/null || apt_install restic || true
      if command -v restic >/dev/null; then
        VERSION[restic]=$(restic version | head -n1); ACTIVE+=(restic)
      else
        note "SKIP restic: not installed and apt-get install restic failed"
      fi
      ;;
    bupstash)
      if ! command -v bupstash >/dev/null && [[ $DO_INSTALL == 1 ]]; then
        apt_install libsodium-dev pkg-config || note "libsodium-dev/pkg-config install failed"
        note "cargo install bupstash --locked (nice 19; takes a few minutes)"
        nice -n 19 cargo install bupstash --locked --target-dir "$DIR/cargo-install-target" \
          >>"$LOGS/install.log" 2>&1 || note "cargo install bupstash failed (see $LOGS/install.log)"
        safe_rm "$DIR/cargo-install-target"
        hash -r
      fi
      if command -v bupstash >/dev/null; then
        VERSION[bupstash]=$(bupstash version 2>/dev/null | head -n1); ACTIVE+=(bupstash)
      else
        note "SKIP bupstash: not installed"
      fi
      ;;
    rustic)
      # rustic is installed like bupstash: cargo install when missing, skipped with a note when that fails.
      # Default features off: the TUI, webdav, jq, prometheus and opentelemetry front ends do not touch the backup
      # path and only lengthen the build.
      if ! command -v rustic >/dev/null && [[ $DO_INSTALL == 1 ]]; then
        note "cargo install rustic-rs --locked --no-default-features (nice 19; a long build)"
        nice -n 19 cargo install rustic-rs --locked --no-default-features --target-dir "$DIR/cargo-install-target-rustic" \
          >>"$LOGS/install.log" 2>&1 || note "cargo install rustic-rs failed (see $LOGS/install.log)"
        safe_rm "$DIR/cargo-install-target-rustic"
        hash -r
      fi
      if command -v rustic >/dev/null; then
        VERSION[rustic]=$(rustic --version 2>/dev/null | head -n1); ACTIVE+=(rustic)
      else
        note "SKIP rustic: not installed"
      fi
      ;;
    cairn-base)
      # An older cairn binary (CAIRN_BASE_BIN), run on the same data in the same rounds: a before/after comparison.
      if [[ -n ${CAIRN_BASE_BIN:-} && -x ${CAIRN_BASE_BIN} ]]; then
        CAIRN_BASE=$CAIRN_BASE_BIN; VERSION[cairn-base]="base: $CAIRN_BASE_BIN${CAIRN_BASE_BACKUP_ARGS:+ (backup $CAIRN_BASE_BACKUP_ARGS)}"
        ACTIVE+=(cairn-base)
      else
        note "SKIP cairn-base: set CAIRN_BASE_BIN to an executable cairn binary"
      fi
      ;;
    *) note "SKIP $t: unknown tool (known: cairn cairn-base restic rustic bupstash)" ;;
  esac
done
(( ${#ACTIVE[@]} > 0 )) || die "no tool to benchmark"

# Tool adapters. Each prints the command for one step; the step runner times it.
# Caches live in $SCRATCH/TOOL/cache, which is wiped with the repository every round.
cmd_for() {  # TOOL STEP -> sets CMD array, STDIN_FROM (file or -), STDOUT_TO (file)
  local t=$1 s=$2 R=$SCRATCH/$1/repo C=$SCRATCH/$1/cache
  STDIN_FROM=-; STDOUT_TO=$LOGS/r$ROUND.$s.$t.out
  local CAIRN=${CAIRN:-}
  # cairn-base runs the same steps as cairn with the older binary, its backups with CAIRN_BASE_BACKUP_ARGS (words)
  local XB=()
  if [[ $t == cairn-base ]]; then CAIRN=$CAIRN_BASE; t=cairn; read -ra XB <<<"${CAIRN_BASE_BACKUP_ARGS:-}"; fi
  # cairn's credential: the secret file init writes beside the repository (wiped with it every round), or the
  # password in CAIRN_PASSWORD
  local SECRET=${R%/repo}/cairn.secret CRED=() NEWCRED=()
  if [[ $CAIRN_CREDENTIAL == secret ]]; then CRED=(--password-file "$SECRET"); NEWCRED=(--new-secret-file "$SECRET"); fi
  # The many-small workload runs the same adapters on its own repository: ms_init is init, ms_backup1/2 back up
  # the tree, ms_grow backs up the new-data corpus, ms_check is the structure check, ms_restore restores the tree.
  local src=$CORPUS
  case "$s" in
    ms_init) s=init ;;
    ms_backup[12]) s=backup1; src=$TREE ;;
    ms_grow) s=grow; src=$GROW ;;
    ms_check) s=check_structure ;;
    ms_restore) s=restore ;;
  esac
  case "$t:$s" in
    # init too gets the per-round cache: cairn pins each location's repository id in its cache
    # (format-spec §9.2), and every round re-creates a repository at the same path.
    cairn:init)            CMD=("$CAIRN" -r "$R" --cache-dir "$C" init "${NEWCRED[@]}") ;;
    cairn:backup[123]|cairn:grow) CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" backup "${XB[@]}" "$src") ;;
    cairn:restore)         CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" restore latest --target "$TARGET") ;;
    cairn:check)           CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" check --read-data) ;;
    cairn:check_structure) CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" check) ;;
    cairn:stream1)         CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" backup "${XB[@]}" --stdin --stdin-filename dump.sql); STDIN_FROM=$DUMP ;;
    cairn:stream2)         CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" backup "${XB[@]}" --stdin --stdin-filename dump.sql); STDIN_FROM=$DUMP2 ;;
    cairn:stream_restore)  CMD=("$CAIRN" -r "$R" --cache-dir "$C" "${CRED[@]}" dump latest dump.sql); STDOUT_TO=$TARGET_FILE ;;

    restic:init)           CMD=(restic -r "$R" --cache-dir "$C" init --repository-version 2) ;;
    restic:backup[123]|restic:grow) CMD=(restic -r "$R" --cache-dir "$C" backup "$src") ;;
    restic:restore)        CMD=(restic -r "$R" --cache-dir "$C" restore latest --target "$TARGET") ;;
    restic:check)          CMD=(restic -r "$R" --cache-dir "$C" check --read-data) ;;
    restic:check_structure) CMD=(restic -r "$R" --cache-dir "$C" check) ;;
    restic:stream1)        CMD=(restic -r "$R" --cache-dir "$C" backup --stdin --stdin-filename dump.sql); STDIN_FROM=$DUMP ;;
    restic:stream2)        CMD=(restic -r "$R" --cache-dir "$C" backup --stdin --stdin-filename dump.sql); STDIN_FROM=$DUMP2 ;;
    restic:stream_restore) CMD=(restic -r "$R" --cache-dir "$C" dump latest /dump.sql); STDOUT_TO=$TARGET_FILE ;;

    # rustic (restic's format, its own CLI): password file, per-round cache dir, no progress bars.
    # A repeated stdin backup takes the previous stdin snapshot as its parent and can store the OLD content
    # (rustic issue #1793, still in 0.11.4); --force reads the stream in full, as restic always does.
    rustic:init)           CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress init) ;;
    rustic:backup[123]|rustic:grow) CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress backup "$src") ;;
    rustic:restore)        CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress restore latest "$TARGET") ;;
    rustic:check)          CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress check --read-data) ;;
    rustic:check_structure) CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress check) ;;
    rustic:stream1|rustic:stream2)
                           CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress backup --stdin-filename dump.sql --force -)
                           if [[ $s == stream1 ]]; then STDIN_FROM=$DUMP; else STDIN_FROM=$DUMP2; fi ;;
    rustic:stream_restore) CMD=(rustic -r "$R" --password-file "$RUSTIC_PW" --cache-dir "$C" --no-progress dump latest:dump.sql); STDOUT_TO=$TARGET_FILE ;;

    # bupstash: key file instead of a password; one send log per job (directory / stream / new data);
    # put prints the new item id on stdout, which later get/restore use (id=...). No check command.
    bupstash:init)         CMD=(sh -c 'bupstash new-key -o "$BUPSTASH_KEY" && exec bupstash init') ;;
    bupstash:backup[123])  CMD=(bupstash put --send-log "$C/dir.sendlog" "$src") ;;
    bupstash:grow)         CMD=(bupstash put --send-log "$C/grow.sendlog" "$src") ;;
    bupstash:restore)      CMD=(bupstash restore --into "$TARGET" "id=${BUP_ID[dir]}") ;;
    bupstash:stream1|bupstash:stream2)
                           CMD=(bupstash put --send-log "$C/stream.sendlog" name=dump.sql -)
                           if [[ $s == stream1 ]]; then STDIN_FROM=$DUMP; else STDIN_FROM=$DUMP2; fi ;;
    bupstash:stream_restore) CMD=(bupstash get "id=${BUP_ID[stream]}"); STDOUT_TO=$TARGET_FILE ;;
    *) die "no adapter for $t $s" ;;
  esac
}
# steps a tool has no command for (no row in the results)
has_step() {  # TOOL STEP
  case "$1:$2" in
    bupstash:check|bupstash:ms_check) return 1 ;;
  esac
  return 0
}
declare -A BUP_ID=([dir]=none [stream]=none [grow]=none)

# ---------------------------------------------------------------- running and recording
printf 'round\tstep\ttool\twall_s\tuser_s\tsys_s\tcpu_s\tmaxrss_kb\trepo_bytes\trepo_delta_bytes\texit\tstatus\tload1\tnote\n' >"$TSV"
declare -A REPO_PREV BROKEN
FAILED_ANY=0

record() {  # round step tool wall user sys maxrss repo delta exit status note
  local cpu
  cpu=$(awk -v u="$5" -v s="$6" 'BEGIN{printf "%.2f", u+s}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$cpu" "$7" "$8" "$9" \
    "${10}" "${11}" "${T_LOAD:-}" "${12}" >>"$TSV"
}

# Time one command: sets T_WALL T_USER T_SYS T_RSS T_RC.
timed() {  # stdin_file stdout_file log_file timefile cmd...
  local in=$1 out=$2 log=$3 tf=$4; shift 4
  T_LOAD=$(cut -d' ' -f1 /proc/loadavg)   # load average when the step started, for judging noise
  if [[ $in == - ]]; then
    /usr/bin/time -o "$tf" -f '%e %U %S %M' timeout "$STEP_TIMEOUT" "$@" </dev/null >"$out" 2>"$log"
    T_RC=$?
  else
    # a pipe, like a real dump; cat's own time is outside the measurement
    cat -- "$in" | /usr/bin/time -o "$tf" -f '%e %U %S %M' timeout "$STEP_TIMEOUT" "$@" >"$out" 2>"$log"
    T_RC=${PIPESTATUS[1]}
  fi
  read -r T_WALL T_USER T_SYS T_RSS < <(tail -n1 "$tf")
  [[ $T_WALL =~ ^[0-9.]+$ ]] || { T_WALL=0; T_USER=0; T_SYS=0; T_RSS=0; }
}

verify_tree() {  # restored-target source -> sets V_STATUS V_NOTE
  local target=$1 src=$2 root="" c probe
  probe=$(cd "$src" && find . -type f -print -quit)
  for c in "$target$src" "$target/$(basename "$src")" "$target"; do
    if [[ -f $c/$probe ]]; then root=$c; break; fi
  done
  if [[ -z $root ]]; then V_STATUS=FAILED; V_NOTE="restored tree not found under $target"; return; fi
  if diff -r --no-dereference "$src" "$root" >"$VLOG" 2>&1; then
    V_STATUS=ok; V_NOTE="diff -r identical"
    # metadata (not part of pass/fail): mode of everything, size+mtime of files
    local m
    m=$(diff <(cd "$src" && find . \( -type f -printf '%P f %m %s %T@\n' \) -o \( ! -type l -printf '%P %y %m\n' \) | sort) \
             <(cd "$root"   && find . \( -type f -printf '%P f %m %s %T@\n' \) -o \( ! -type l -printf '%P %y %m\n' \) | sort) |
        grep -c '^>')
    [[ $m == 0 ]] || V_NOTE="$V_NOTE; WARN $m entries differ in mode/mtime"
  else
    V_STATUS=FAILED; V_NOTE="diff -r: $(grep -c . "$VLOG") differences, first: $(head -n1 "$VLOG" | cut -c1-160)"
  fi
}

run_step() {  # tool step
  local t=$1 s=$2
  local base="$LOGS/r$ROUND.$s.$t"
  if [[ ${BROKEN[$t]:-0} == 1 ]]; then
    record "$ROUND" "$s" "$t" 0 0 0 0 - - - SKIPPED "an earlier step of this round failed"
    return
  fi
  TARGET=$SHM_RUN/restore-$t; TARGET_FILE=$SHM_RUN/dump-$t.sql
  if [[ $s == restore || $s == ms_restore ]]; then safe_rm "$TARGET"; mkdir -p "$TARGET"; fi
  cmd_for "$t" "$s"
  timed "$STDIN_FROM" "$STDOUT_TO" "$base.log" "$base.time" "${CMD[@]}"
  local status=ok note="" repo=- delta=-
  if [[ $T_RC != 0 ]]; then
    status=FAILED; note="exit $T_RC: $(tail -n3 "$base.log" | tr '\t\n' '  ' | cut -c1-200)"
    [[ $T_RC == 124 ]] && note="timeout after ${STEP_TIMEOUT}s"
  fi
  if [[ $t == bupstash && $status == ok ]]; then
    case "$s" in
      backup[123]|ms_backup[12]) BUP_ID[dir]=$(tail -n1 "$STDOUT_TO") ;;
      ms_grow)     BUP_ID[grow]=$(tail -n1 "$STDOUT_TO") ;;
      stream[12])  BUP_ID[stream]=$(tail -n1 "$STDOUT_TO") ;;
    esac
  fi
  if [[ $status == ok && ( $s == restore || $s == ms_restore ) ]]; then
    local vsrc=$CORPUS
    [[ $s == ms_restore ]] && vsrc=$TREE
    VLOG=$base.verify; verify_tree "$TARGET" "$vsrc"; status=$V_STATUS; note=$V_NOTE
    safe_rm "$TARGET"
  elif [[ $status == ok && $s == stream_restore ]]; then
    if cmp "$DUMP2" "$TARGET_FILE" >"$base.verify" 2>&1; then
      note="cmp identical to the edited dump"
    else
      status=FAILED
      if cmp -s "$DUMP" "$TARGET_FILE"; then note="cmp: got the FIRST (unedited) dump back, not the latest"
      else note="cmp: $(head -n1 "$base.verify" | cut -c1-160)"; fi
    fi
    safe_rm "$TARGET_FILE"
  fi
  if [[ -d $SCRATCH/$t/repo ]]; then
    repo=$(du -sb "$SCRATCH/$t/repo" | cut -f1)
    delta=$(( repo - ${REPO_PREV[$t]:-0} ))
    REPO_PREV[$t]=$repo
  fi
  record "$ROUND" "$s" "$t" "$T_WALL" "$T_USER" "$T_SYS" "$T_RSS" "$repo" "$delta" "$T_RC" "$status" "$note"
  if [[ $status == ok ]]; then
    printf '  %-9s %-15s %8ss  cpu %7ss  rss %6s MB  repo %8s MB  %s\n' "$t" "$s" "$T_WALL" \
      "$(awk -v u="$T_USER" -v s="$T_SYS" 'BEGIN{printf "%.2f", u+s}')" "$((T_RSS / 1024))" \
      "$(awk -v b="$repo" 'BEGIN{if (b=="-") print "-"; else printf "%.1f", b/1e6}')" "$note" >&2
  else
    FAILED_ANY=1
    printf '\n  !!!!!!!! FAILED: %s %s (round %s): %s\n  !!!!!!!! log: %s\n\n' "$t" "$s" "$ROUND" "$note" "$base.log" >&2
    [[ $s == init || $s == backup1 || $s == ms_init || $s == ms_backup1 ]] && BROKEN[$t]=1
  fi
}

# ---------------------------------------------------------------- header
{
  echo "cairn end-to-end benchmark, run $RUN_ID"
  echo "host: $(uname -srm), $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg), open files limit: $(ulimit -n)"
  echo "workloads: ${WORKLOADS}"
  [[ -n ${WANT[corpus]:-}${WANT[dump]:-} ]] &&
    echo "corpus: $CORPUS: $C_FILES files ($C_SMALL < 4 KiB, $C_LARGE >= 16 MiB), $C_BYTES bytes, $C_DIRS dirs, $C_LINKS symlinks"
  [[ -n ${WANT[dump]:-} ]] &&
    echo "dump: $DUMP: $D_BYTES bytes; edited: $D2_BYTES bytes ($STREAM_EDITS scattered edits + insert/overwrite/delete blocks)"
  [[ -n ${WANT[many-small]:-} ]] &&
    echo "many-small: $TREE: $T_FILES files ($MS_DIRS x $MS_FILES), $T_BYTES bytes; new data: $GROW: $G_BYTES bytes"
  echo "restore target: $SHM_RUN ($(stat -f -c %T "$SHM_RUN"))"
  echo "rounds: $ROUNDS; tools: ${ACTIVE[*]}; cairn credential: $CAIRN_CREDENTIAL"
  for t in "${ACTIVE[@]}"; do echo "  $t: ${VERSION[$t]}"; done
} | tee "$RUNDIR/meta.txt" >&2

# One step for every tool in ORDER that has a command for it.
step_all() {  # STEP
  local t
  for t in "${ORDER[@]}"; do
    has_step "$t" "$1" && run_step "$t" "$1"
  done
}

# Empty repositories and caches for every tool.
fresh_repos() {
  local t
  safe_rm "$SCRATCH"
  for t in "${ORDER[@]}"; do mkdir -p "$SCRATCH/$t/cache"; REPO_PREV[$t]=0; BROKEN[$t]=0; done
  BUP_ID=([dir]=none [stream]=none [grow]=none)
}

statwalk() {  # STEP SRC: the bare stat walk, the floor for an unchanged backup, recorded as tool "statwalk"
  timed - /dev/null "$LOGS/r$ROUND.$1.statwalk.log" "$LOGS/r$ROUND.$1.statwalk.time" \
    find "$2" -printf '%s %T@ %C@ %i\n'
  record "$ROUND" "$1" statwalk "$T_WALL" "$T_USER" "$T_SYS" "$T_RSS" - - "$T_RC" ok "find -printf stat walk"
}

# ---------------------------------------------------------------- warm-up
# Read every source file once, untimed, so the first tool of round 1 does not pay for a cold page cache (a one-round
# many-small run otherwise times the disk for whichever tool goes first: 154 s against 33 s warm, benches/README.md).
# The dumps are read whole by every tool anyway; they are warmed too.
warm() {
  local src
  for src in "$@"; do
    [[ -e $src ]] || continue
    note "warming the page cache: reading $src once (untimed)"
    find "$src" -type f -print0 | xargs -0 -r cat >/dev/null
  done
}
[[ -z ${WANT[corpus]:-} ]] || warm "$CORPUS"
[[ -z ${WANT[dump]:-} ]] || warm "$DUMP" "$DUMP2"
[[ -z ${WANT[many-small]:-} ]] || warm "$TREE"

# ---------------------------------------------------------------- rounds
for (( ROUND = 1; ROUND <= ROUNDS; ROUND++ )); do
  # rotate the order each round so no tool always runs first after the mutation, etc.
  ORDER=()
  n=${#ACTIVE[@]}
  for (( i = 0; i < n; i++ )); do ORDER+=("${ACTIVE[$(( (i + ROUND - 1) % n ))]}"); done
  note "round $ROUND/$ROUNDS, order: ${ORDER[*]}"

  if [[ -n ${WANT[corpus]:-}${WANT[dump]:-} ]]; then
    fresh_repos
    step_all init
  fi

  if [[ -n ${WANT[corpus]:-} ]]; then
    step_all backup1
    statwalk backup2 "$CORPUS"
    step_all backup2

    note "editing 1 % of the corpus files"
    MUTATED=1
    helper mutate "$CORPUS" "$STASH" || die "mutation failed"
    step_all backup3
    step_all restore
    helper revert "$CORPUS" "$STASH" || die "revert failed"
    safe_rm "$STASH"; MUTATED=0
    [[ $(fingerprint "$CORPUS") == $(cat "$CORPUS.ok") ]] || note "WARNING: corpus fingerprint differs after the revert"
    step_all check
  fi

  if [[ -n ${WANT[dump]:-} ]]; then
    for s in stream1 stream2 stream_restore; do step_all "$s"; done
  fi

  if [[ -n ${WANT[many-small]:-} ]]; then
    # its own repositories: the first backup of the tree, 200 MB (full scale) of real files added to that
    # repository, the unchanged tree again (against its stat walk), a structure check and a verified restore
    note "many-small workload: $T_FILES files"
    fresh_repos
    for s in ms_init ms_backup1 ms_grow; do step_all "$s"; done
    statwalk ms_backup2 "$TREE"
    for s in ms_backup2 ms_check ms_restore; do step_all "$s"; done
  fi

  [[ $KEEP == 1 && $ROUND == "$ROUNDS" ]] || safe_rm "$SCRATCH"
done

# ---------------------------------------------------------------- report
helper report "$TSV" "${ACTIVE[*]}" "$RUNDIR/table.md" | tee "$RUNDIR/report.txt"
REPORT_RC=${PIPESTATUS[0]}
echo
echo "raw results: $TSV   (total time ${SECONDS}s)"
echo "report:      $RUNDIR/report.txt   markdown: $RUNDIR/table.md   logs: $LOGS"
[[ $FAILED_ANY == 0 && $REPORT_RC == 0 ]] || exit 1
exit 0

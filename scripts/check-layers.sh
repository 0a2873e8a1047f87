#!/usr/bin/env bash
# Checks the library's layering (docs/architecture.md, src/lib.rs): the folder of a file under src/
# is its layer, bottom up format (1), codec (2), backend (3), repository (4), ops (5). Every
# `crate::` and `super::` path in code (comments and inline test modules aside) is resolved to the
# module it names, through the crate root's re-exports (`crate::id` is `format::id`), and the
# check fails on
#   - an upward edge: a module that uses a module of a higher layer;
#   - an import cycle between modules. A module's use of its own ancestors (a child using what
#     its folder's mod.rs holds, `super::Repository`) is how Rust shares code inside a folder and
#     is not an edge; everything else is, inside a folder and across folders.
# It prints each offending file, line and import. The binary (src/main.rs, src/cli/) is layer 6
# and links the library by its public paths; it is not checked here.
set -euo pipefail
cd "$(dirname "$0")/.."

files=$(find src -name '*.rs' ! -path 'src/cli/*' ! -name main.rs ! -name lib.rs | LC_ALL=C sort)

# shellcheck disable=SC2016
awk -v files="$files" '
function modpath(f,   m) {
    m = f; sub(/^src\//, "", m); sub(/\.rs$/, "", m); sub(/\/mod$/, "", m); gsub(/\//, "::", m)
    return m
}
function parent(m) {
    if (m !~ /::/) return ""
    sub(/::[^:]*$/, "", m)
    return m
}
function layer_of(m,   s) { split(m, s, "::"); return LAYER[s[1]] }
# The longest existing module that path `p` (without `crate::`) names, after the root aliases.
function resolve(p,   segs, n, i, cand, best, q) {
    n = split(p, segs, "::")
    if (!(segs[1] in MOD) && (segs[1] in ALIAS)) {
        q = ALIAS[segs[1]]
        for (i = 2; i <= n; i++) q = q "::" segs[i]
        n = split(q, segs, "::")
    }
    best = ""
    for (i = 1; i <= n; i++) {
        cand = (i == 1) ? segs[1] : cand "::" segs[i]
        if (cand in MOD) best = cand
    }
    return best
}
# Makes `path` (as written, starting with crate or super) absolute, without `crate::`.
function absolute(path, self,   base, rest) {
    if (path ~ /^crate(::|$)/) { sub(/^crate(::)?/, "", path); return path }
    base = self
    while (path ~ /^super(::|$)/) {
        base = parent(base)
        sub(/^super(::)?/, "", path)
    }
    if (path == "") return base
    return (base == "") ? path : base "::" path
}
function edge(file, lineno, written, self, target,   lt, ls, key) {
    if (target == "" || target == self) return
    lt = layer_of(target); ls = layer_of(self)
    if (lt > ls) {
        printf "upward import: %s:%d: %s uses %s (layer %d, %s) from layer %d (%s)\n", \
            file, lineno, written, target, lt, NAME[lt], ls, NAME[ls]
        bad = 1
    }
    # A module using its own ancestors is not an edge.
    if (index(self "::", target "::") == 1) return
    key = self SUBSEP target
    if (!(key in EDGE)) {
        EDGE[key] = file ":" lineno ": " written
        ADJ[self] = ADJ[self] " " target
    }
}
# Expands `prefix::{a, b::c, self}` (one level) and records each path.
function paths_of(stmt, file, lineno, self,   rest, m, prefix, inner, n, parts, i, p) {
    rest = stmt
    while (match(rest, /(crate|super)(::super)*(::[A-Za-z_0-9]+)*(::\{[^{}]*\})?/)) {
        m = substr(rest, RSTART, RLENGTH)
        rest = substr(rest, RSTART + RLENGTH)
        if (m ~ /\{/) {
            prefix = m; sub(/::\{.*$/, "", prefix)
            inner = m; sub(/^[^{]*\{/, "", inner); sub(/\}$/, "", inner)
            n = split(inner, parts, ",")
            for (i = 1; i <= n; i++) {
                p = parts[i]; gsub(/[ \t]/, "", p); sub(/ as .*/, "", p)
                if (p == "" || p == "*") { p = prefix }
                else if (p == "self") { p = prefix }
                else { p = prefix "::" p }
                edge(file, lineno, p, self, resolve(absolute(p, self)))
            }
        } else {
            edge(file, lineno, m, self, resolve(absolute(m, self)))
        }
    }
}
function dfs(u,   n, vs, i, v, j, cyc) {
    COLOR[u] = 1
    STACK[++SP] = u
    n = split(ADJ[u], vs, " ")
    for (i = 1; i <= n; i++) {
        v = vs[i]
        if (v == "") continue
        if (COLOR[v] == 1) {
            cyc = ""
            for (j = 1; j <= SP; j++) if (STACK[j] == v) break
            printf "import cycle:"
            for (; j <= SP; j++) printf " %s ->", STACK[j]
            printf " %s\n", v
            for (j = 1; j <= SP; j++) if (STACK[j] == v) break
            for (; j < SP; j++) printf "    %s\n", EDGE[STACK[j] SUBSEP STACK[j + 1]]
            printf "    %s\n", EDGE[u SUBSEP v]
            bad = 1
        } else if (COLOR[v] == 0) {
            dfs(v)
        }
    }
    SP--
    COLOR[u] = 2
}
BEGIN {
    LAYER["format"] = 1; LAYER["codec"] = 2; LAYER["backend"] = 3; LAYER["repository"] = 4; LAYER["ops"] = 5
    NAME[1] = "format"; NAME[2] = "codec"; NAME[3] = "backend"; NAME[4] = "repository"; NAME[5] = "ops"
    nf = split(files, F, "\n")
    for (i = 1; i <= nf; i++) {
        m = modpath(F[i])
        MOD[m] = F[i]
        split(m, s, "::")
        if (!(s[1] in LAYER)) {
            printf "unknown layer: %s is not under src/format, codec, backend, repository or ops\n", F[i]
            bad = 1
        }
    }
    # The crate root re-exports: `pub use format::{id, tree};` makes `crate::id` name `format::id`.
    while ((getline line < "src/lib.rs") > 0) {
        if (line !~ /^pub use [a-z_]+::/) continue
        sub(/^pub use /, "", line); sub(/;.*$/, "", line)
        prefix = line; sub(/::.*$/, "", prefix)
        rest = substr(line, length(prefix) + 3)
        gsub(/[{} ]/, "", rest)
        k = split(rest, items, ",")
        base = (prefix in MOD) ? prefix : ALIAS[prefix]
        for (j = 1; j <= k; j++) if (base != "") ALIAS[items[j]] = base "::" items[j]
    }
    for (i = 1; i <= nf; i++) {
        file = F[i]; self = modpath(file); lineno = 0; stmt = ""; start = 0
        while ((getline line < file) > 0) {
            lineno++
            if (line ~ /^mod tests \{/) break
            if (line ~ /^[ \t]*\/\//) continue
            if (stmt == "" && line ~ /^[ \t]*(pub(\([a-z]+\))? )?use /) {
                stmt = line; start = lineno
            } else if (stmt != "") {
                stmt = stmt " " line
            } else {
                paths_of(line, file, lineno, self)
                continue
            }
            if (stmt ~ /;/) { paths_of(stmt, file, start, self); stmt = "" }
        }
        close(file)
    }
    for (u in ADJ) if (COLOR[u] == 0) dfs(u)
    if (bad) { print "check-layers: FAILED (see src/lib.rs for the layers)"; exit 1 }
    print "check-layers: ok (" nf " files, no upward import, no cycle)"
}
'

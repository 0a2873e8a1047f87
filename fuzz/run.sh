#!/usr/bin/env bash
# Short fuzzing run of every decoder, for CI.
#
#   fuzz/run.sh [TARGET...]        (all targets when none is named)
#
# Needs rustup with a nightly toolchain; installs cargo-fuzz when it is missing. Each target is
# built once, then run for FUZZ_SECONDS (default 10) on a temporary corpus seeded from
# fuzz/seeds/<target>/. The build lives in CAIRN_FUZZ_TARGET (default
# ~/.cache/cairn-fuzz-target), so later runs reuse it. Prints one line per target and exits
# non-zero when any target crashed (the input is saved under fuzz/artifacts/<target>/).
set -uo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-10}"
export CARGO_TARGET_DIR="${CAIRN_FUZZ_TARGET:-$HOME/.cache/cairn-fuzz-target}"
all_targets=(pack_header blob index tree snapshot_trees snapshot config keyfile lease chunker layout cert ledger)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || exit 2
fi

start=$(date +%s)
echo "fuzz: building ${#targets[@]} targets in $CARGO_TARGET_DIR"
for t in "${targets[@]}"; do
    if ! cargo +nightly fuzz build "$t"; then
        echo "fuzz: build of $t failed" >&2
        exit 2
    fi
done
built=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    if [ -d "seeds/$t" ]; then cp seeds/"$t"/* "$corpus"/ 2>/dev/null; fi
    log="$work/$t.log"
    cargo +nightly fuzz run "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        summary+=("ok     $t: ${execs:-?} runs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l)")
    else
        failed+=("$t")
        crash=$(grep -oE 'artifact_prefix=[^;]*; Test unit written to [^ ]+' "$log" | sed 's/.*written to //' | tail -1)
        summary+=("FAILED $t: exit $rc${crash:+, input saved as $crash}")
        echo "---- $t: what failed, then the end of its log ----"
        grep -m1 -A4 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log"
        echo "..."
        tail -n 20 "$log"
    fi
done

echo "---- fuzz summary (build $((built - start))s, runs $(($(date +%s) - built))s) ----"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran without a crash"

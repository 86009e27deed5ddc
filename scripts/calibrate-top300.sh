#!/usr/bin/env bash
# Calibrates the static scanner against the real tarballs of the most-downloaded npm
# packages: fetches them (once, into a git-ignored cache under target/), scans each with
# a release build and summarises which would be held at the default threshold, and why.
#
# Usage: scripts/calibrate-top300.sh [COUNT] [--cli]
# Output: target/calibrate-top300/{packages.tsv,tarballs/,results.jsonl,summary.txt}
#         (with --cli also reports/NAME.json, the `airlock scan --json` output)
#
# This script is the only part of the scanner's tooling that touches the network; it is
# never run by `cargo test` or CI.
set -euo pipefail

count="${1:-300}"
repository_root="$(cd "$(dirname "$0")/.." && pwd)"
packages_list="${AIRLOCK_NPM_PACKAGES_TSV:-/work/.library/env/packages/npm.tsv}"
output_directory="$repository_root/target/calibrate-top300"
tarball_directory="$output_directory/tarballs"
report_directory="$output_directory/reports"
registry="${AIRLOCK_CALIBRATION_REGISTRY:-https://registry.npmjs.org}"
mkdir -p "$tarball_directory" "$report_directory"

# The list: name<TAB>version, most downloaded first.
# (awk, not head: head closing the pipe early would fail the pipeline under pipefail.)
tail -n +2 "$packages_list" | sort -t$'\t' -k3,3 -nr | awk -F'\t' -v count="$count" 'NR <= count { print $1 "\t" $2 }' \
    > "$output_directory/packages.tsv"

fetch_one() {
    local name="$1" version="$2" registry="$3" tarball_directory="$4"
    local base_name="${name##*/}"
    local file_name="${name//\//__}-$version.tgz"
    if [[ -s "$tarball_directory/$file_name" ]]; then return 0; fi
    if ! curl -fsSL --retry 3 -o "$tarball_directory/$file_name.part" \
        "$registry/$name/-/$base_name-$version.tgz"; then
        echo "fetch failed: $name@$version" >&2
        rm -f "$tarball_directory/$file_name.part"
        return 0
    fi
    mv "$tarball_directory/$file_name.part" "$tarball_directory/$file_name"
}
export -f fetch_one
export AIRLOCK_FETCH_REGISTRY="$registry" AIRLOCK_FETCH_DIRECTORY="$tarball_directory"
tr '\t' ' ' < "$output_directory/packages.tsv" \
    | xargs -P 8 -n 2 bash -c 'fetch_one "$0" "$1" "$AIRLOCK_FETCH_REGISTRY" "$AIRLOCK_FETCH_DIRECTORY"' \
    || true

# Scan. Default: one process (`scan_directory`, the same `scan_tarball` the CLI calls),
# so the timings measure the scanner and not process start-up. `--cli` runs the
# release `airlock scan --json` once per tarball instead, exercising the command.
mode="${2:-}"
if [[ "$mode" == "--cli" ]]; then
    (cd "$repository_root" && cargo build --release -p airlock-server --bin airlock)
    airlock="$repository_root/target/release/airlock"
    : > "$output_directory/results.jsonl"
    while read -r name version; do
        file_name="${name//\//__}-$version.tgz"
        [[ -s "$tarball_directory/$file_name" ]] || continue
        exit_code=0
        "$airlock" scan "$tarball_directory/$file_name" --json > "$report_directory/$file_name.json" || exit_code=$?
        python3 - "$report_directory/$file_name.json" "$file_name" "$exit_code" >> "$output_directory/results.jsonl" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
held_by = [f for f in report.get("findings", []) if f["severity"] in ("high", "critical")]
print(json.dumps({"tarball": sys.argv[2], "held": sys.argv[3] != "0", "verdict": report["verdict"], "held_by": held_by}))
PY
    done < <(tr '\t' ' ' < "$output_directory/packages.tsv")
else
    (cd "$repository_root" && cargo build --release -p airlock-scanner --example scan_directory)
    "$repository_root/target/release/examples/scan_directory" "$tarball_directory" high \
        > "$output_directory/results.jsonl"
fi

python3 - "$output_directory/results.jsonl" <<'PY' | tee "$output_directory/summary.txt"
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
held = [row for row in rows if row["held"]]
print(f"scanned: {len(rows)}")
print(f"held at the default threshold (high): {len(held)}")
times = [row["milliseconds"] for row in rows if "milliseconds" in row]
if times:
    total_bytes = sum(row.get("uncompressed_bytes") or 0 for row in rows)
    print(f"scan time per package: median {statistics.median(times):.2f} ms, mean {statistics.mean(times):.2f} ms, max {max(times):.1f} ms")
    print(f"throughput: {total_bytes / 1e6:.1f} MB unpacked in {sum(times) / 1000:.2f} s = {total_bytes / 1e6 / (sum(times) / 1000):.1f} MB/s")
    slowest = sorted(rows, key=lambda row: -row["milliseconds"])[:5]
    print("slowest: " + ", ".join(f'{row["tarball"]} {row["milliseconds"]:.0f} ms ({(row.get("uncompressed_bytes") or 0) / 1e6:.1f} MB)' for row in slowest))
for row in held:
    reasons = []
    if row["verdict"].get("status") == "unscannable":
        reasons.append("unscannable: " + row["verdict"].get("reason", ""))
    for finding in row["held_by"]:
        location = finding.get("location") or {}
        reasons.append(f'{finding["severity"]} {finding["rule"]} {location.get("file", "")}:{location.get("line", "")} {finding["message"][:160]}')
    print(f'HELD {row["tarball"]}:\n    ' + "\n    ".join(reasons))
PY

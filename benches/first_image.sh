#!/bin/sh
# First image (issue 14): process start to PNG of `sample --backend gpu` at batch 1, twice with
# every shader cache empty (ours, NVIDIA's, Mesa's: each fresh run gets new folders), then twice
# warm (the second fresh run's folders, now filled). Wall time is taken from outside the process
# (GNU date +%s%N) beside the binary's own --timings figures; the logs stay in the work folder.
#
#   sh benches/first_image.sh [SAMPLE_BINARY [more sample arguments, e.g. --weights DIR]]
#
# SAMPLE_BINARY defaults to target/release/examples/sample. DROP_CACHES=1 also empties the
# page cache before each fresh run (needs root), as on a fresh machine.
set -u
bin=${1:-target/release/examples/sample}
[ $# -gt 0 ] && shift
work=$(mktemp -d "${TMPDIR:-/tmp}/first_image.XXXXXX")

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# own LOG NAME: the milliseconds of one line of the binary's timings table.
own() {
    awk -v name="$2" '{ line = $0; sub(/^ +/, "", line) }
        index(line, name) == 1 && $NF == "ms" { print $(NF - 1); exit }' "$1"
}

# run LABEL CACHES [sample arguments]: one timed run with every cache under CACHES.
run() {
    label=$1
    caches=$2
    shift 2
    mkdir -p "$caches/xdg" "$caches/nvidia" "$caches/mesa"
    log="$work/$label.txt"
    start=$(now_ms)
    XDG_CACHE_HOME="$caches/xdg" \
        __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_PATH="$caches/nvidia" \
        MESA_SHADER_CACHE_DIR="$caches/mesa" \
        "$bin" --backend gpu --timings --out "$work/$label.png" "$@" > "$log" 2>&1
    rc=$?
    end=$(now_ms)
    printf '| %-6s | %7s | %7s | %7s | %7s | %7s | %7s | %9s | %7s | %s\n' "$label" "$((end - start))" \
        "$(own "$log" total)" "$(own "$log" 'weights read')" "$(own "$log" 'instance + adapter')" \
        "$(own "$log" device)" "$(own "$log" 'weights upload')" "$(own "$log" pipelines)" \
        "$(own "$log" sample)" "$rc"
}

fresh() {
    if [ "${DROP_CACHES:-0}" = 1 ]; then
        sync && echo 3 > /proc/sys/vm/drop_caches
    fi
}

echo "binary: $bin; logs: $work"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
fi
echo '| run    | wall ms | own ms  | weights | adapter | device  | upload  | pipelines | sample  | exit'
echo '|--------|---------|---------|---------|---------|---------|---------|-----------|---------|-----'
fresh
run fresh1 "$work/caches1" "$@"
fresh
run fresh2 "$work/caches2" "$@"
run warm1 "$work/caches2" "$@"
run warm2 "$work/caches2" "$@"
grep -h 'pipeline cache:' "$work"/*.txt | sed "s|$work|WORK|" | sort | uniq -c
for label in fresh1 warm2; do
    echo "== $label"
    sed -n '/^timings since/,$p' "$work/$label.txt"
done

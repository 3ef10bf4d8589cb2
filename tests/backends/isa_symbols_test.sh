#!/usr/bin/env bash
# The kernel objects of one instruction-set path (arguments: the path's name, then its object
# files) must not hand the linker a wider-than-baseline copy of shared code: every weak symbol
# outside the path's namespace (std:: templates, boreas::Error, ...) is merged with the other
# paths' copies and the baseline code's, and the linker keeps one at random. Such a symbol must
# hold no VEX/EVEX instruction (isa_prelude.hpp includes every header before raising the target).
# Also checks the path's own code does use its instructions (the target pragma took effect).
set -euo pipefail
isa=$1
shift
failures=0
own_vex=0
for object in "$@"; do
    while read -r symbol; do
        demangled=$(c++filt <<<"$symbol")
        case "$demangled" in *"::${isa}::"*) continue ;; esac
        if objdump -d --no-show-raw-insn --disassemble="$symbol" "$object" |
            grep -qP '^\s+[0-9a-f]+:\s+v'; then
            echo "FAIL: $(basename "$object"): shared weak symbol compiled for $isa: $demangled"
            failures=$((failures + 1))
        fi
    done < <(nm --defined-only "$object" | awk '$2 ~ /^[WVu]$/ {print $3}')
    vex=$(objdump -d --no-show-raw-insn "$object" | grep -cP '^\s+[0-9a-f]+:\s+v' || true)
    own_vex=$((own_vex + vex))
done
if [[ $isa == generic ]]; then
    [[ $own_vex -eq 0 ]] || { echo "FAIL: the generic path holds $own_vex VEX instructions"; exit 1; }
else
    [[ $own_vex -gt 0 ]] || { echo "FAIL: the $isa path holds no VEX instruction"; exit 1; }
fi
[[ $failures -eq 0 ]] || exit 1
echo "ok: $isa: $# objects, no shared weak symbol above the baseline, $own_vex VEX instructions of its own"

#!/usr/bin/env bash
# No module calls back into one that calls it: the graph of calls between
# daemon/ modules, read from the symbols of the built objects (nm), has no
# cycle. A call is a module's undefined symbol defined by another module
# (inline functions and macros in headers are not calls). Prints the cycle
# and the calls that make it when there is one.
# Usage: module_calls.sh INCUBATORD SOURCE_DIR
set -euo pipefail
bin=$1
lib=$(dirname "$(readlink -f "$bin")")/libincubatord_core.a
command -v nm >/dev/null || { echo "no nm: skipped"; exit 77; }
[ -f "$lib" ] || { echo "no $lib" >&2; exit 1; }

nm -A "$lib" | /usr/bin/python3 -c '
import sys
defs, uses = {}, {}
for line in sys.stdin:
    head, _, rest = line.rpartition(":")
    module = head.rpartition(":")[2].removesuffix(".o").removesuffix(".c")
    parts = rest.split()
    if len(parts) == 3 and parts[1] in "TDRBC":
        defs[parts[2]] = module
    elif len(parts) == 2 and parts[0] == "U":
        uses.setdefault(module, set()).add(parts[1])
calls = {m: {} for m in set(defs.values()) | set(uses)}
for m, symbols in uses.items():
    for s in symbols:
        if defs.get(s, m) != m:
            calls[m].setdefault(defs[s], []).append(s)

# Depth-first search for a back edge, in a stable order.
state, path = {}, []
def visit(m):
    state[m] = "open"
    path.append(m)
    for n in sorted(calls[m]):
        if state.get(n) == "open":
            cycle = path[path.index(n):] + [n]
            print("a cycle of calls between modules:", " -> ".join(cycle))
            for a, b in zip(cycle, cycle[1:]):
                print(f"  {a} calls {b}:", " ".join(sorted(calls[a][b])))
            sys.exit(1)
        if n not in state:
            visit(n)
    path.pop()
    state[m] = "done"
for m in sorted(calls):
    if m not in state:
        visit(m)
edges = sum(len(v) for v in calls.values())
print(f"{len(calls)} modules, {edges} calls between them, no cycle")
'

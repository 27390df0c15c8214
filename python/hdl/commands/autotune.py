"""hdl autotune: the convolution algorithms measured on this machine (hdl.autotune), listed or forgotten."""
from __future__ import annotations

from hdl.commands.options import print_json


def add(sub):
    a = sub.add_parser("autotune", help="list (or --clear) the convolution algorithms measured on this machine")
    a.add_argument("--clear", action="store_true", help="delete this machine's file of measured choices")
    a.add_argument("--json", action="store_true", help="every choice, machine-readable")
    a.set_defaults(run=run, show=show)


def run(args):
    from hdl import autotune

    path = autotune.cache_path()
    existed = path.exists()
    if args.clear:
        autotune.clear(cache_file=True)
        return {"path": str(path), "cleared": existed, "machine": autotune.machine(), "entries": []}
    autotune.clear()
    autotune.load(path)
    entries = autotune.entries()
    autotune.clear()
    return {"path": str(path), "exists": existed, "enabled": autotune.enabled(), "machine": autotune.machine(),
            "entries": entries}


def show(args, s):
    if args.json:
        return print_json(s)
    m = s["machine"]
    print(f"machine: {m['cpu']}, {m['isa']}, hdl {m['hdl']}")
    if "cleared" in s:
        print(f"{s['path']}: {'deleted' if s['cleared'] else 'there was none'}")
        return
    if not s["enabled"]:
        print("HDL_AUTOTUNE=0: convolutions measure nothing in this environment (the shape rules decide)")
    print(f"{s['path']}: {len(s['entries'])} choices" + ("" if s["exists"] else " (no file yet)"))
    counts: dict[tuple[str, str], int] = {}
    for e in s["entries"]:
        counts[e["pass"], e["algorithm"]] = counts.get((e["pass"], e["algorithm"]), 0) + 1
    for (name, algorithm), n in sorted(counts.items()):
        print(f"  {name}: {algorithm} {n}")

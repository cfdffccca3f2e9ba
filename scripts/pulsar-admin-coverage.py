#!/usr/bin/env python3
"""Coverage of Pulsar's admin REST API v2 by Magnetar.

Compares the operations of docs/pulsar-admin-operations.tsv (Pulsar's published description, the
groups tools automate) with the operations of Magnetar's OpenAPI description, and prints per group
how many are routed and every operation that is not.

    scripts/pulsar-admin-coverage.py                      # runs `cargo run -q -p magnetar -- openapi`
    scripts/pulsar-admin-coverage.py --openapi FILE       # a saved description (services/api/openapi.json)
    scripts/pulsar-admin-coverage.py --doc docs/pulsar-compatibility.md
        # also checks the document: every operation it marks `supported` or `differs` is routed,
        # every operation that is not routed is listed with a reason, every listed operation exists
    scripts/pulsar-admin-coverage.py --doc docs/pulsar-compatibility.md --groups clusters,brokers
        # the same, but only operations of these groups must be listed (listed rows are always checked)
    scripts/pulsar-admin-coverage.py --markdown GROUP     # a table skeleton of one group

Paths match whatever the parameters are named (`{subName}` and `{subscription}` are the same
segment); Pulsar's `{topic-domain}` also matches Magnetar's literal `persistent`, the one domain
Magnetar serves. Exit status 1 when a --doc check fails.
"""

import argparse
import json
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "pulsar-admin-operations.tsv"
GROUPS = ["tenants", "namespaces", "persistent topic", "clusters", "brokers", "lookup", "schemas"]
METHODS = {"get", "put", "post", "delete", "patch", "head"}
# A parameter of Pulsar's path that Magnetar serves with one literal value.
LITERAL_PARAMS = {"topic-domain": {"persistent"}}
DOC_STATUSES = {"supported", "differs", "not yet", "not planned"}


def segments(path):
    return [s for s in path.split("/") if s]


def is_param(segment):
    return segment.startswith("{") and segment.endswith("}")


def matches(pulsar_path, magnetar_path):
    a, b = segments(pulsar_path), segments(magnetar_path)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if is_param(x) and is_param(y):
            continue
        if is_param(x) and y in LITERAL_PARAMS.get(x[1:-1], ()):
            continue
        if x != y:
            return False
    return True


def load_reference(path=REFERENCE):
    ops = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("group\t"):
            continue
        group, method, p = line.split("\t")
        ops.append((group, method.upper(), p))
    return ops


def load_openapi(path):
    if path:
        text = Path(path).read_text()
    else:
        text = subprocess.run(
            ["cargo", "run", "-q", "-p", "magnetar", "--", "openapi"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    doc = json.loads(text)
    return [(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS]


def routed(op, magnetar_ops):
    _, method, path = op
    return any(m == method and matches(path, p) for m, p in magnetar_ops)


def coverage(reference, magnetar_ops):
    """group -> (routed ops, missing ops), in GROUPS order."""
    out = OrderedDict((g, ([], [])) for g in GROUPS)
    for op in reference:
        out[op[0]][0 if routed(op, magnetar_ops) else 1].append(op)
    return out


def report(cov):
    lines = []
    total = sum(len(r) + len(m) for r, m in cov.values())
    done = sum(len(r) for r, _ in cov.values())
    lines.append(f"Pulsar admin v2 operations routed by Magnetar: {done}/{total} ({100.0 * done / total:.1f} %)")
    for group, (r, m) in cov.items():
        lines.append(f"  {group:<17} {len(r):>3}/{len(r) + len(m)}")
    for group, (_, m) in cov.items():
        if m:
            lines.append(f"\nnot routed, {group}:")
            lines.extend(f"  {method:<6} {path}" for _, method, path in m)
    return "\n".join(lines)


ROW = re.compile(r"^\|\s*(GET|PUT|POST|DELETE|PATCH|HEAD)\s*\|\s*`?([^|`]+)`?\s*\|\s*([^|]+?)\s*\|\s*(.*?)\s*\|\s*$")


def doc_rows(path):
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        m = ROW.match(line)
        if m:
            rows.append((n, m.group(1), m.group(2).strip(), m.group(3).strip().strip("*").lower(), m.group(4)))
    return rows


def check_doc(path, reference, magnetar_ops, groups=None):
    problems = []
    rows = doc_rows(path)
    listed = {}
    for n, method, p, status, note in rows:
        key = (method, p)
        op = next((o for o in reference if o[1] == method and o[2] == p), None)
        if op is None:
            problems.append(f"{path}:{n}: {method} {p} is not an operation of the reference list")
            continue
        if status not in DOC_STATUSES:
            problems.append(f"{path}:{n}: {method} {p}: status `{status}` is not one of {sorted(DOC_STATUSES)}")
        if key in listed:
            problems.append(f"{path}:{n}: {method} {p} is listed twice (also line {listed[key]})")
        listed[key] = n
        is_routed = routed(op, magnetar_ops)
        if status in ("supported", "differs") and not is_routed:
            problems.append(f"{path}:{n}: {method} {p} is marked {status} but is not routed")
        if status in ("not yet", "not planned") and is_routed:
            problems.append(f"{path}:{n}: {method} {p} is marked {status} but is routed")
        if status in ("differs", "not yet", "not planned") and not note.strip(" -"):
            problems.append(f"{path}:{n}: {method} {p} is marked {status} without a reason")
    for op in reference:
        if groups is not None and op[0] not in groups:
            continue
        if not routed(op, magnetar_ops) and (op[1], op[2]) not in listed:
            problems.append(f"{path}: {op[1]} {op[2]} ({op[0]}) is not routed and not listed with a reason")
    return problems


def markdown(group, reference, magnetar_ops):
    lines = ["| method | path | status | note |", "|---|---|---|---|"]
    for op in reference:
        if op[0] == group:
            status = "supported" if routed(op, magnetar_ops) else "not yet"
            lines.append(f"| {op[1]} | `{op[2]}` | {status} |  |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openapi", help="Magnetar's description (default: generate it with cargo)")
    ap.add_argument("--reference", default=str(REFERENCE))
    ap.add_argument("--doc", help="check this compatibility document against the coverage")
    ap.add_argument("--groups", help="with --doc: comma-separated groups whose unrouted operations must be listed")
    ap.add_argument("--markdown", metavar="GROUP", help="print a table skeleton of one group")
    args = ap.parse_args()
    reference = load_reference(Path(args.reference))
    magnetar_ops = load_openapi(args.openapi)
    if args.markdown:
        print(markdown(args.markdown, reference, magnetar_ops))
        return 0
    print(report(coverage(reference, magnetar_ops)))
    if args.doc:
        groups = None
        if args.groups:
            groups = [g.strip() for g in args.groups.split(",") if g.strip()]
            unknown = [g for g in groups if g not in GROUPS]
            if unknown:
                print(f"unknown group(s) {unknown}; groups are {GROUPS}", file=sys.stderr)
                return 2
        problems = check_doc(args.doc, reference, magnetar_ops, groups)
        if problems:
            print(f"\n{len(problems)} problem(s) in {args.doc}:", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            return 1
        print(f"\n{args.doc}: every supported operation is routed, every other one is listed with its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())

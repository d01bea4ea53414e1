#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""`nft -j list table ...` on stdin -> a stable form on stdout, for golden files
and for comparing two tables: no metainfo, no handles; each chain followed by
its rules (kept in their order), chains and sets by name, set elements
sorted; sorted keys, indented."""
import json
import sys


def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k != "handle"}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o


def key(item):
    kind, body = next(iter(item.items()))
    if kind == "table":
        return (0, "", 0)
    if kind == "chain":
        return (1, body["name"], 0)
    if kind == "rule":
        return (1, body["chain"], 1)
    return (2, body.get("name", ""), 0)


def sort_elements(item):
    body = next(iter(item.values()))
    if isinstance(body, dict) and isinstance(body.get("elem"), list):
        body["elem"].sort(key=lambda e: json.dumps(e, sort_keys=True))
    return item


doc = json.load(sys.stdin)
items = [sort_elements(strip(i)) for i in doc["nftables"] if "metainfo" not in i]
items.sort(key=key)  # stable: rules keep their order within a chain
json.dump(items, sys.stdout, indent=2, sort_keys=True)
sys.stdout.write("\n")

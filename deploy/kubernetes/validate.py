#!/usr/bin/python3
"""Checks Kubernetes manifests against the API types of the official Python client
(python3-kubernetes: classes generated from the Kubernetes OpenAPI schema). Every key must be a
field of its type (recursively), every required field present, every scalar of its type.
No cluster is needed. Usage: validate.py FILE.yaml...  Exit 1 with one line per problem."""
import re
import sys

import kubernetes.client as k8s
import yaml

KINDS = {("batch/v1", "Job"): "V1Job"}
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def check(value, typ, where, problems):
    if typ in SCALARS:
        if typ == "str" and isinstance(value, (int, float)) and where.endswith(("cpu", "memory")):
            return  # quantities may be numbers
        if not isinstance(value, SCALARS[typ]) or (typ == "int" and isinstance(value, bool)):
            problems.append(f"{where}: expected {typ}, got {type(value).__name__}")
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{where}[{i}]", problems)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a map")
            return
        for k, v in value.items():
            check(v, m.group(1), f"{where}.{k}", problems)
        return
    cls = getattr(k8s, typ)
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object ({typ})")
        return
    by_json = {j: p for p, j in cls.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            problems.append(f"{where}.{k}: not a field of {typ}")
            continue
        check(v, cls.openapi_types[by_json[k]], f"{where}.{k}", problems)
    # Required fields: the generated constructor raises on a missing one.
    try:
        cls(**{p: object() for p, j in cls.attribute_map.items() if j in value}, local_vars_configuration=k8s.Configuration())
    except ValueError as e:
        problems.append(f"{where}: {e}")
    except TypeError:
        pass


def main(files):
    problems = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        for i, d in enumerate(docs):
            key = (d.get("apiVersion"), d.get("kind"))
            if key not in KINDS:
                problems.append(f"{f}#{i}: unexpected {key}")
                continue
            check(d, KINDS[key], f"{f}#{i}", problems)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

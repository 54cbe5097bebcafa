#!/usr/bin/env python3
"""Renders wd-api's OpenAPI document as the reference part of docs/api.md.

    scripts/api-doc.py OPENAPI_JSON DOC_MD          rewrite the generated part
    scripts/api-doc.py --check OPENAPI_JSON DOC_MD  exit 1 when it is stale

OPENAPI_JSON is a file or an http:// URL (a running wd-api's /openapi.json).
Only the text between the BEGIN/END markers is generated; the rest of the
file is written by hand."""

import json
import sys
import urllib.request

BEGIN = "<!-- BEGIN GENERATED REFERENCE (scripts/api-doc.py) -->"
END = "<!-- END GENERATED REFERENCE -->"


def load(source):
    if source.startswith("http://") or source.startswith("https://"):
        with urllib.request.urlopen(source, timeout=30) as res:
            return json.load(res)
    with open(source, encoding="utf-8") as f:
        return json.load(f)


def type_text(schema):
    t = schema.get("type", "any")
    if t == "array":
        t = "array of " + schema.get("items", {}).get("type", "any")
    extra = []
    if "pattern" in schema:
        extra.append("ObjectId" if "24" in schema["pattern"] else schema["pattern"])
    if "format" in schema:
        extra.append(schema["format"])
    if "minLength" in schema or "maxLength" in schema:
        extra.append("length %s..%s" % (schema.get("minLength", 0), schema.get("maxLength", "")))
    if "minimum" in schema:
        extra.append("%s..%s" % (schema["minimum"], schema["maximum"]))
    if "enum" in schema:
        extra.append("one of " + ", ".join("`%s`" % v for v in schema["enum"]))
    if schema.get("nullable"):
        extra.append("nullable")
    return t + (" (" + "; ".join(extra) + ")" if extra else "")


def cell(text):
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render(doc):
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ops.append((op.get("tags", ["Other"])[0], path, method.upper(), op))
    tags = []
    for tag, _, _, _ in ops:
        if tag not in tags:
            tags.append(tag)
    out = [BEGIN, "", "## Reference", "",
           "%d routes. Every field below is checked before the handler runs; "
           "unknown fields are refused." % len(ops), ""]
    out.append("| Method | Path | Summary | Access |")
    out.append("|---|---|---|---|")
    for tag, path, method, op in ops:
        access = "public" if op.get("security") == [] else (
            "%s %s" % (op.get("x-access", {}).get("resource") or "any caller",
                       op.get("x-access", {}).get("action", "")))
        out.append("| %s | `%s` | %s | %s |" % (method, path, cell(op.get("summary")), access))
    out.append("")
    for tag in tags:
        out.append("### %s" % tag)
        out.append("")
        for t, path, method, op in ops:
            if t != tag:
                continue
            out.append("#### %s %s" % (method, path))
            out.append("")
            out.append("%s%s" % (cell(op.get("summary")),
                                 " (WildDuck: `%s`)" % op["operationId"] if "operationId" in op else ""))
            out.append("")
            rows = []
            for p in op.get("parameters", []):
                rows.append((p["name"], p["in"], p.get("required", False), p.get("schema", {})))
            body = op.get("requestBody", {}).get("content", {})
            schema = body.get("application/json", {}).get("schema", {})
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                rows.append((name, "body", name in required, prop))
            if "message/rfc822" in body:
                out.append("Body: the raw message (`Content-Type: message/rfc822`)%s." %
                           (", or JSON" if "application/json" in body else ""))
                out.append("")
            if rows:
                out.append("| Field | In | Required | Type | Description |")
                out.append("|---|---|---|---|---|")
                for name, where, req, sch in rows:
                    out.append("| `%s` | %s | %s | %s | %s |" % (
                        name, where, "yes" if req else "", cell(type_text(sch)),
                        cell(sch.get("description"))))
                out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    check = args and args[0] == "--check"
    if check:
        args = args[1:]
    if len(args) != 2:
        print(__doc__)
        return 2
    doc = load(args[0])
    with open(args[1], encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        print("%s has no generated-reference markers" % args[1])
        return 1
    head = text[:text.index(BEGIN)]
    tail = text[text.index(END) + len(END) + 1:]
    new = head + render(doc) + tail
    if check:
        if new != text:
            print("%s is stale: run scripts/api-doc.py <wd-api>/openapi.json %s" % (args[1], args[1]))
            return 1
        return 0
    with open(args[1], "w", encoding="utf-8") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())

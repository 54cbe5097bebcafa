"""wd-api's framework over real HTTP: routing, errors, access tokens, CORS,
request limits, hostile JSON against every route of /openapi.json, and the
EventSource stream fed by real LMTP deliveries through wd-server."""

import hashlib
import hmac
import json
import os
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, EventStream, Server, Stack, skip_without_stack  # noqa: E402

MESSAGE = ("From: Sender <sender@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
           "Message-ID: <{subject}@example.org>\r\n\r\nHello {subject}.\r\n")


def create_user(stack, name):
    out = stack.run_wdctl("user", "create", name, "--password", "secret-" + name,
                          "--address", name + "@example.com")
    return out.strip().split()[-1]


def lmtp_deliver(port, to, subject):
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        lmtp.sendmail("sender@example.org", [to], MESSAGE.format(to=to, subject=subject).encode())


def routing_and_meta(check, c):
    res = c.get("/health")
    check.status(res, 200, "health")
    check(res.json.get("success") is True, "health success")
    res = c.get("/no/such/thing")
    check.status(res, 404, "unknown path")
    check(res.json.get("code") == "ResourceNotFound", "404 code", repr(res))
    check.status(c.post("/health", {}), 405, "wrong method")
    check.status(c.request("PATCH", "/health"), 405, "unknown method")
    res = c.get("/openapi.json")
    check.status(res, 200, "openapi")
    doc = res.json
    check(doc.get("openapi", "").startswith("3."), "openapi version")
    check("/users/{user}/updates" in doc.get("paths", {}), "openapi lists updates")
    methods = c.get("/api-methods").json.get("methods", [])
    check(len(methods) >= 3 and all("path" in m for m in methods), "api-methods")
    # every route is in the document with its method
    for m in methods:
        path = "/".join("{%s}" % p[1:] if p.startswith(":") else p for p in m["path"].split("/"))
        check(m["method"].lower() in doc["paths"].get(path, {}), "openapi has route",
              m["method"] + " " + m["path"])
    # docs/api.md's reference is what the server says it checks
    src = os.environ.get("WD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    res = subprocess.run([sys.executable, os.path.join(src, "scripts", "api-doc.py"), "--check",
                          "http://127.0.0.1:%d/openapi.json" % c.port,
                          os.path.join(src, "docs", "api.md")], capture_output=True, text=True)
    check(res.returncode == 0, "docs/api.md matches /openapi.json", res.stdout + res.stderr)
    res = c.get("/users/me/updates")
    check.status(res, 400, "me without a user token")
    res = c.get("/users/zzzzzzzzzzzzzzzzzzzzzzzz/updates")
    check.status(res, 400, "malformed ObjectId")
    check("user" in res.json.get("details", {}), "details name the field", repr(res))
    res = c.get("/users/000000000000000000000000/updates")
    check.status(res, 404, "unknown user")
    check(res.json.get("code") == "UserNotFound", "UserNotFound", repr(res))
    res = c.get("/health", query={"unexpected": "1"})
    check(res.status in (200, 400), "unknown query key on a route without fields")


def sample_value(schema):
    t = schema.get("type")
    if t == "string":
        if "pattern" in schema:
            return "0123456789abcdef01234567"
        return "x"
    if t == "integer":
        return 1
    if t == "boolean":
        return True
    if t == "array":
        return ["x"]
    if t == "object":
        return {}
    return "x"


def wrong_value(schema):
    t = schema.get("type")
    if t == "string":
        return {"$gt": ""}
    if t == "integer":
        return "not a number"
    if t == "boolean":
        return {"x": 1}
    if t == "array":
        return {"not": "an array"}
    if t == "object":
        return ["not", "an", "object"]
    return None


def snapshot(c, user_ids):
    """What a refused request must not change: every user's data the API shows."""
    out = {}
    for uid in user_ids:
        for path in ("/users/%s" % uid, "/users/%s/mailboxes" % uid, "/users/%s/addresses" % uid,
                     "/users/%s/filters" % uid, "/users/%s/asps" % uid):
            res = c.get(path)
            body = res.json if res.body[:1] == b"{" else res.body
            if isinstance(body, dict):
                body.pop("limits", None)  # counters with TTLs tick on their own
            out[path] = (res.status, json.dumps(body, sort_keys=True))
    out["/users"] = c.get("/users").body
    return out


def hostile_input(check, api, c, user_ids):
    """Every POST/PUT route: deep nesting, a huge string, wrong types for each
    documented field, unknown keys, non-object JSON and invalid UTF-8; every
    route: invalid ObjectIds in the path. Always 4xx, never 5xx, and nothing
    changes."""
    doc = c.get("/openapi.json").json
    before = snapshot(c, user_ids)
    uid = user_ids[0]
    tried = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {}):
                continue  # a stream answers 200 and stays open: covered by updates_stream
            url = path.replace("{user}", uid)
            for p in op.get("parameters", []):
                if p["in"] == "path" and p["name"] != "user":
                    url = url.replace("{%s}" % p["name"], sample_value(p.get("schema", {})) if
                                      p.get("schema", {}).get("type") != "integer" else "1")
            bodies = []
            if method in ("post", "put"):
                schema = (op.get("requestBody", {}).get("content", {})
                          .get("application/json", {}).get("schema", {}))
                props = schema.get("properties", {})
                deep = "[" * 5000 + "]" * 5000
                bodies += [deep, '{"a":' * 100 + "1" + "}" * 100, "[1,2,3]", "\"str\"", "nul",
                           '{"x": "\xff"}'.encode("latin-1"), '{"a":1,"a":2}',
                           {"unknownKey": 1}, {"x" * 300: "y" * 70000}]
                for name, prop in props.items():
                    wrong = wrong_value(prop)
                    if wrong is not None:
                        bodies.append({name: wrong})
                    if prop.get("type") == "string" and prop.get("maxLength"):
                        bodies.append({name: "z" * (prop["maxLength"] + 1)})
            for body in bodies:
                res = c.request(method.upper(), url, body=body)
                tried += 1
                check(400 <= res.status < 500, "hostile input answered 4xx",
                      "%s %s %r -> %r" % (method, url, str(body)[:80], res))
            # a path with an invalid ObjectId in every id position
            for p in op.get("parameters", []):
                if p["in"] == "path" and p.get("schema", {}).get("pattern"):
                    bad = path.replace("{%s}" % p["name"], "not-an-id")
                    for q in op.get("parameters", []):
                        if q["in"] == "path" and q["name"] != p["name"]:
                            bad = bad.replace("{%s}" % q["name"], uid if q["name"] == "user" else "1")
                    res = c.request(method.upper(), bad, body={} if method in ("post", "put") else None)
                    tried += 1
                    check(400 <= res.status < 500, "invalid ObjectId answered 4xx",
                          "%s %s -> %r" % (method, bad, res))
    check(tried > 20, "hostile requests sent", str(tried))
    check(c.get("/health").status == 200, "server alive after hostile input")
    after = snapshot(c, user_ids)
    for key in before:
        check(before[key] == after[key], "nothing changed by refused requests", key)


def limits_and_cors(check, api_bin, stack):
    api = ApiServer(api_bin, stack, "--api.maxJsonBytes=2048", "--api.rateLimit.requests=40",
                    "--api.rateLimit.window=3600", "--api.cors.origin=https://webmail.example")
    try:
        c = api.client()
        res = c.post("/users", {"username": "u" * 10, "name": "n" * 5000})
        check.status(res, 413, "JSON body over api.maxJsonBytes")
        res = c.request("OPTIONS", "/users")
        check.status(res, 204, "CORS preflight")
        check(res.headers.get("Access-Control-Allow-Origin") == "https://webmail.example",
              "CORS origin on preflight", repr(res.headers))
        res = c.get("/health")
        check(res.headers.get("Access-Control-Allow-Origin") == "https://webmail.example",
              "CORS origin on answers")
        statuses = [c.get("/health").status for _ in range(45)]
        check(429 in statuses, "rate limit reached", str(statuses))
        res = c.get("/health")
        check(res.status == 429 and res.json.get("code") == "RateLimitedError", "429 shape",
              repr(res))
    finally:
        api.stop()


def redis_hgetall(url, key):
    """HGETALL through redis-cli (the stack's Redis URL: redis://host:port/db)."""
    rest = url.split("://", 1)[1]
    hostport, db = (rest.split("/", 1) + ["0"])[:2]
    host, port = hostport.rsplit(":", 1)
    out = subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", db or "0", "--raw",
                          "HGETALL", key], capture_output=True, text=True, timeout=10).stdout
    items = out.split("\n")[:-1]
    return dict(zip(items[0::2], items[1::2]))


def user_tokens(check, api_bin, stack, uid):
    """Tokens as WildDuck keeps them (tn:token:<sha256>, HMAC signature), with
    a sliding TTL and a hard lifetime."""
    secret = "token-test-secret"
    api = ApiServer(api_bin, stack, "--api.accessControl.enabled=true",
                    "--api.accessControl.secret=" + secret, "--api.accessControl.tokenTTL=2",
                    "--api.accessControl.tokenLifetime=5", "--api.accessToken=root-token")
    try:
        root = api.client("root-token")
        res = root.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                          "token": True})
        check.status(res, 200, "token issued")
        token = res.json.get("token", "")
        check(len(token) == 40 and all(ch in "0123456789abcdef" for ch in token), "40 hex token")
        data = redis_hgetall(stack.redis, "tn:token:" + hashlib.sha256(token.encode()).hexdigest())
        check(data.get("user") == uid and data.get("role") == "user" and data.get("ttl") == "2",
              "token hash fields", repr(data))
        sign = json.dumps({"token": token, "user": uid, "authVersion": int(data.get("authVersion", "0")),
                           "role": "user"}, separators=(",", ":"))
        check(data.get("s") == hmac.new(secret.encode(), sign.encode(), hashlib.sha256).hexdigest(),
              "signature as WildDuck computes it")
        user = api.client(token)
        start = time.time()
        ok = []
        while time.time() - start < 4.0:  # used every 0.5 s: the TTL slides
            ok.append(user.get("/users/me").status)
            time.sleep(0.5)
        check(set(ok) == {200}, "sliding TTL keeps a used token", repr(ok))
        while time.time() - start < 5.5:
            time.sleep(0.5)
            user.get("/users/me")
        check.status(user.get("/users/me"), 403, "token past its lifetime")
        res = root.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                          "token": True})
        idle = api.client(res.json.get("token"))
        check.status(idle.get("/users/me"), 200, "fresh token")
        time.sleep(3)
        check.status(idle.get("/users/me"), 403, "token idle past its TTL")
    finally:
        api.stop()


def root_token(check, api_bin, stack, uid):
    api = ApiServer(api_bin, stack, "--api.accessToken=root-secret-token")
    try:
        anon = api.client()
        res = anon.get("/api-methods")
        check.status(res, 403, "no token when api.accessToken is set")
        check(res.json.get("code") == "InvalidToken", "InvalidToken", repr(res))
        check.status(api.client("wrong").get("/api-methods"), 403, "wrong token")
        check.status(api.client("root-secret-token").get("/api-methods"), 200, "root token header")
        check.status(anon.get("/api-methods", query={"accessToken": "root-secret-token"}), 200,
                     "root token in query")
        check.status(anon.get("/api-methods",
                              headers={"Authorization": "Bearer root-secret-token"}), 200,
                     "root token as Bearer")
        check.status(anon.get("/health"), 200, "public route without token")
        check.status(anon.get("/openapi.json"), 200, "openapi without token")
        # a user token that was never issued
        check.status(api.client("0123456789abcdef0123456789abcdef01234567").get("/api-methods"),
                     403, "unknown 40-hex token")
    finally:
        api.stop()


def updates_stream(check, c, api, server, uid, address):
    stream = EventStream(api.port, "/users/%s/updates" % uid)
    check(stream.status == 200, "updates stream opened", str(stream.status))
    check(stream.headers.get("Content-Type", "").startswith("text/event-stream"),
          "event-stream content type")
    first = stream.next_event(5)
    check(first.get("comment", "").startswith("idling"), "greeting comment", repr(first))
    delays = []
    last_id = None
    for i in range(3):
        start = time.time()
        lmtp_deliver(server.ports["lmtp"], address, "push%d" % i)
        ev = stream.wait_for(lambda e: e.get("data", {}).get("command") == "EXISTS", 10)
        delays.append(time.time() - start)
        check(ev["data"].get("mailbox") and ev["data"].get("uid") == i + 1, "EXISTS event data",
              repr(ev))
        check("_id" not in ev["data"] and "user" not in ev["data"] and "modseq" not in ev["data"],
              "hidden journal keys", repr(ev))
        check(len(ev.get("id", "")) == 24, "event id", repr(ev))
        last_id = ev["id"]
        counters = stream.wait_for(lambda e: e.get("data", {}).get("command") == "COUNTERS", 5)
        check(counters["data"].get("total") == i + 1 and counters["data"].get("unseen") == i + 1,
              "COUNTERS event", repr(counters))
    print("LMTP delivery → EventSource EXISTS: %s s" % ", ".join("%.3f" % d for d in delays))
    check(max(delays) <= 2.0, "event within 2 seconds of the LMTP reply", repr(delays))
    stream.close()
    # resume: what happened while away arrives after Last-Event-ID
    lmtp_deliver(server.ports["lmtp"], address, "while-away")
    resumed = EventStream(api.port, "/users/%s/updates" % uid, last_event_id=last_id)
    ev = resumed.wait_for(lambda e: "data" in e, 5)
    check(ev["data"].get("command") == "EXISTS" and ev["data"].get("uid") == 4,
          "Last-Event-ID resumes after the last event", repr(ev))
    resumed.close()
    for _ in range(30):  # the hub refreshes the flag every second
        res = c.get("/health")
        if res.json.get("subscribed") is True:
            break
        time.sleep(0.2)
    check(res.json.get("subscribed") is True, "hub subscribed to wd_events",
          repr(res) + "".join(l for l in api.log if "notify" in l))


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    uid = create_user(stack, "alice")
    uid2 = create_user(stack, "bob")
    api = ApiServer(wd_api, stack)
    server = Server(wd_server, stack, "--lmtp.enabled=true")
    try:
        c = api.client()
        routing_and_meta(check, c)
        updates_stream(check, c, api, server, uid, "alice@example.com")
        hostile_input(check, api, c, [uid, uid2])
    finally:
        server.stop()
        code = api.stop()
        check(code == 0, "wd-api exit code", str(code))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    root_token(check, wd_api, stack, uid)
    user_tokens(check, wd_api, stack, uid)
    limits_and_cors(check, wd_api, stack)
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

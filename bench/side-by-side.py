#!/usr/bin/python3
"""Side-by-side benchmark: wd-server, Dovecot with our plugins, stock Dovecot (Maildir) and
WildDuck (npm) on one machine, in one run, with the same users and mail.

    /usr/bin/python3 bench/side-by-side.py [--scenario LIST] [--repeat R] [--duration S] ...

What it does, in order:
  1. starts a private data stack (scripts/stack.sh with WD_STACK_DIR/WD_MONGO_PORT/
     WD_REDIS_PORT; defaults var/stack-sidebyside, 27691, 6691) and, on loopback ports in
     21000-21999: wd-server (plain IMAP with LOGIN, POP3, LMTP), Dovecot with our plugins
     on the same database, stock Dovecot with Maildir, WildDuck 1.46.15 on the same
     FerretDB (bench/baselines/*.sh with WD_BENCH_VAR=<stack dir>/bench, so their state
     is private too; --no-wildduck leaves WildDuck out). Extra wd-server instances are
     started by the scenarios that need them (a second one for notify, a TLS one for idle);
  2. fills users user1..userU (password --password) with the same --messages corpus
     (bench/baselines/fill.py, IMAP APPEND) on each server, once per state directory
     (fill-<server>.json remembers it; --refill appends again);
  3. runs each scenario; for every load point the servers take turns, interleaved
     (A B C D A B C D ... for --repeat rounds), so that a change in machine load hits
     all of them alike; a result is the median of the rounds with the min-max spread,
     and the ratio of medians to the reference server (--reference, default wd-server);
  4. prints a Markdown table per scenario and writes bench/results/<date>-<scenario>.json
     (every round's figures, the medians, ratios and the machine's state) for plot.py;
  5. stops everything it started (--keep-running leaves the servers up).

Scenarios (--scenario, comma list, default all):
  imap-meta   FETCH FLAGS/ENVELOPE, STORE, SEARCH mix at --clients (1,10,100; --with-1000)
  imap-full   wd-load's default mix (adds BODY[], partial, APPEND, EXPUNGE, NOOP)
  lmtp        1-connection delivery at 2k/20k/200k/2m (--sizes) plus bench/raw-insert's
              baselines: raw-doc (one {raw} document per message with libmongoc) and
              raw-store (libwdstore's wd_store_message_add in-process)
  idle        memory per idle IDLE connection at --idle-counts (1000; 10000 possible,
              --with-50k adds 50000): PSS of the server's whole process tree (Dovecot
              forks a process per session), plain and TLS, wd-server and both Dovecots
  notify      APPEND on wd-server A, EXISTS seen by an IDLE client on B (a second
              wd-server, and Dovecot with our plugins), with and without
              --notify-background imap clients on A
  storage     bytes on disk after the fill: FerretDB's SQLite file of each database and
              the collections' sizes (messages, attachments.files/chunks) vs Maildir

Figures come from the machine this runs on; on a shared machine they say little in absolute
terms: compare the ratios, and look at the spread. Needs root for the Dovecots. Python 3
standard library only (/usr/bin/python3); plots are bench/plot.py's job.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ALL_SCENARIOS = ("storage", "imap-meta", "imap-full", "lmtp", "idle", "notify")
META_MIX = "fetch-flags=40,fetch-envelope=20,store=20,search=20"
FULL_MIX = ("fetch-flags=40,fetch-envelope=20,fetch-body=10,fetch-partial=5,store=10,"
            "search=10,append=3,expunge=1,noop=1,idle=0")

# Loopback ports of this runner (21000-21999).
PORTS = {
    "wd": {"imap": 21143, "pop3": 21110, "lmtp": 21024},
    "wd-b": {"imap": 21144},
    "wd-tls": {"imap": 21993},
    "wd-idle": {"imap": 21145},
    "dvwd": {"imap": 21343, "pop3": 21310, "lmtp": 21324},
    "maildir": {"imap": 21243, "imaps": 21293, "pop3": 21210, "pop3s": 21295, "lmtp": 21224},
    "wildduck": {"imap": 21043, "imaps": 21093, "pop3": 21010, "lmtp": 21025, "api": 21080},
}


def relocate_ports(base):
    """--port-base: every port of PORTS moved to base, base+1, ... (in a stable order), so
    that two runners (or a runner and someone's tests) can share the machine."""
    n = base
    for server in sorted(PORTS):
        for proto in sorted(PORTS[server]):
            PORTS[server][proto] = n
            n += 1


def log(msg):
    print("side-by-side: " + msg, file=sys.stderr, flush=True)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port, seconds, proc=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if port_open(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def run(cmd, env=None, check=True, timeout=None, capture=True):
    r = subprocess.run(cmd, env=env, timeout=timeout, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                   (r.stderr or "")[-2000:]))
    return r


# ---------- memory of a process tree ----------

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_pids(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_memory_kb(root):
    """(PSS, RSS, process count) of root and all its descendants, in KiB."""
    pss = rss = n = 0
    for pid in tree_pids(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            n += 1
        except OSError:
            pass
    return pss, rss, n


class MemorySampler(threading.Thread):
    """Samples tree_memory_kb(root) twice a second; keeps the peak PSS sample."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.stop_flag, self.peak = root, threading.Event(), (0, 0, 0)

    def run(self):
        while not self.stop_flag.is_set():
            m = tree_memory_kb(self.root)
            if m[0] > self.peak[0]:
                self.peak = m
            self.stop_flag.wait(0.5)


# ---------- machine state ----------

def machine():
    info = {"nproc": os.cpu_count(), "loadavg": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_mb"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    info["kernel"] = os.uname().release
    return info


# ---------- servers ----------

class Runner:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.wdload_bin = os.path.join(self.build, "bench", "wd-load")
        self.stack_dir = os.path.abspath(args.stack_dir)
        self.var = os.path.join(self.stack_dir, "bench")   # WD_BENCH_VAR for the baselines
        self.work = os.path.join(self.stack_dir, "sidebyside")
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ, WD_STACK_DIR=self.stack_dir,
                        WD_MONGO_PORT=str(args.mongo_port), WD_REDIS_PORT=str(args.redis_port),
                        WD_BENCH_VAR=self.var, WD_BUILD_DIR=self.build, WD_BENCH_DB="wdbench_ours")
        self.procs = {}        # name -> Popen of the wd-server instances we started
        self.started = []      # baseline scripts to stop at the end
        self.servers = {}      # label -> {"imap": port, "lmtp": port, "pid": fn}

    # data stack
    def stack(self):
        out = run([os.path.join(REPO, "scripts", "stack.sh"), "start"], env=self.env).stdout
        for line in out.splitlines():
            k, _, v = line.partition("=")
            if k.startswith("WD_"):
                self.env[k] = v
        self.mongo_ours = "mongodb://127.0.0.1:%d/wdbench_ours" % self.a.mongo_port
        self.redis = "redis://127.0.0.1:%d/3" % self.a.redis_port
        self.sqlite = self.env["WD_FERRETDB_SQLITE"]

    def tls_files(self):
        crt, key = os.path.join(self.work, "server.crt"), os.path.join(self.work, "server.key")
        if not os.path.exists(crt):
            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                 "-subj", "/CN=localhost", "-keyout", key, "-out", crt])
        return crt, key

    def start_wd(self, name, imap_port, tls=False, pop3_port=0, lmtp_port=0, log_level="warn"):
        if name in self.procs and self.procs[name].poll() is None:
            return
        if port_open(imap_port):
            raise RuntimeError("port %d is in use" % imap_port)
        crt, key = self.tls_files()
        conf = os.path.join(self.work, "empty.toml")
        open(conf, "a").close()
        cmd = [os.path.join(self.build, "server", "wd-server"), "--config=" + conf,
               "--dbs.mongo=" + self.mongo_ours, "--dbs.redis=" + self.redis,
               "--dbs.ferretdbSqlite=" + self.sqlite, "--tls.cert=" + crt, "--tls.key=" + key,
               "--log.level=" + log_level, "--imap.host=127.0.0.1", "--imap.port=%d" % imap_port,
               "--imap.maxConnections=200000", "--pop3.host=127.0.0.1",
               "--pop3.port=%d" % pop3_port]
        if not tls:
            cmd += ["--imap.secure=false", "--imap.insecureAuth=true", "--pop3.secure=false"]
        if lmtp_port:
            cmd += ["--lmtp.enabled=true", "--lmtp.host=127.0.0.1", "--lmtp.port=%d" % lmtp_port]
        logf = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=REPO)
        self.procs[name] = p
        if not wait_port(imap_port, 60, p):
            raise RuntimeError("%s did not open port %d (log %s)" % (name, imap_port, logf.name))
        log("%s started (pid %d, IMAP%s :%d)" % (name, p.pid, "S" if tls else "", imap_port))

    def baseline(self, script, env_extra, action="start"):
        env = dict(self.env, **env_extra)
        # to a file, not a pipe: the daemons the script starts inherit its stdout/stderr
        path = os.path.join(self.work, "%s-%s.log" % (script.split(".")[0], action))
        with open(path, "w") as out:
            r = subprocess.run([os.path.join(HERE, "baselines", script), action], env=env,
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               timeout=600)
        text = open(path).read()
        if action == "start":
            if r.returncode != 0:
                raise RuntimeError("%s start: %s" % (script, text[-2000:]))
            self.started.append((script, env_extra))
        return text

    def start_all(self):
        self.stack()
        p = PORTS
        self.start_wd("wd-server", p["wd"]["imap"], pop3_port=p["wd"]["pop3"],
                      lmtp_port=p["wd"]["lmtp"])
        self.servers["wd-server"] = dict(imap=p["wd"]["imap"], lmtp=p["wd"]["lmtp"],
                                         pid=lambda: self.procs["wd-server"].pid, kind="ours")
        if not self.a.no_dovecot:
            max_conn = "200000"
            self.baseline("dovecot-wildduck.sh", {
                "DVWD_IMAP_PORT": str(p["dvwd"]["imap"]), "DVWD_POP3_PORT": str(p["dvwd"]["pop3"]),
                "DVWD_LMTP_PORT": str(p["dvwd"]["lmtp"]), "DVWD_MAX_CONN": max_conn})
            self.servers["dovecot+plugins"] = dict(
                imap=p["dvwd"]["imap"], lmtp=p["dvwd"]["lmtp"], kind=None,
                pid=lambda: int(open(os.path.join(self.var, "dovecot-wildduck", "wrapper.pid")).read()))
            self.baseline("dovecot-maildir.sh", {
                "DOVECOT_IMAP_PORT": str(p["maildir"]["imap"]),
                "DOVECOT_IMAPS_PORT": str(p["maildir"]["imaps"]),
                "DOVECOT_POP3_PORT": str(p["maildir"]["pop3"]),
                "DOVECOT_POP3S_PORT": str(p["maildir"]["pop3s"]),
                "DOVECOT_LMTP_PORT": str(p["maildir"]["lmtp"]), "DOVECOT_MAX_CONN": max_conn,
                "DOVECOT_PASSWORD": self.a.password, "DOVECOT_USERS": "0"})
            self.servers["dovecot-maildir"] = dict(
                imap=p["maildir"]["imap"], imaps=p["maildir"]["imaps"], lmtp=p["maildir"]["lmtp"],
                kind="dovecot-maildir",
                pid=lambda: int(open(os.path.join(self.var, "dovecot-maildir", "run", "master.pid")).read()))
        if not self.a.no_wildduck:
            self.copy_wildduck_modules()
            self.baseline("wildduck.sh", {
                "WILDDUCK_IMAP_PORT": str(p["wildduck"]["imap"]),
                "WILDDUCK_IMAPS_PORT": str(p["wildduck"]["imaps"]),
                "WILDDUCK_POP3_PORT": str(p["wildduck"]["pop3"]),
                "WILDDUCK_LMTP_PORT": str(p["wildduck"]["lmtp"]),
                "WILDDUCK_API_PORT": str(p["wildduck"]["api"]), "WILDDUCK_MAX_CONN": "200000"})
            self.servers["wildduck"] = dict(
                imap=p["wildduck"]["imap"], lmtp=p["wildduck"]["lmtp"], kind="wildduck",
                pid=lambda: int(open(os.path.join(self.var, "wildduck", "run", "wildduck.pid")).read()))

    def copy_wildduck_modules(self):
        """Reuse an npm install of the shared var/bench (a copy: wildduck.sh checks its cwd)."""
        mine = os.path.join(self.var, "wildduck")
        shared = os.path.join(REPO, "var", "bench", "wildduck")
        if os.path.isdir(os.path.join(mine, "node_modules")) or not os.path.isdir(
                os.path.join(shared, "node_modules")):
            return
        os.makedirs(mine, exist_ok=True)
        log("copying WildDuck's node_modules from var/bench/wildduck")
        for name in ("package.json", "package-lock.json"):
            if os.path.exists(os.path.join(shared, name)):
                shutil.copy2(os.path.join(shared, name), mine)
        shutil.copytree(os.path.join(shared, "node_modules"), os.path.join(mine, "node_modules"),
                        symlinks=True)

    def stop_all(self):
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            log("%s stopped" % name)
        for script, env_extra in reversed(self.started):
            text = self.baseline(script, env_extra, action="stop")
            log("%s stop: %s" % (script, " ".join(text.strip().splitlines()[-1:])))
        self.started = []
        if not self.a.keep_stack:
            run([os.path.join(REPO, "scripts", "stack.sh"), "stop"], env=self.env, check=False)

    # ---------- fill ----------
    def fill(self):
        plan = [("wd-server", "ours")]
        if "dovecot-maildir" in self.servers:
            plan.append(("dovecot-maildir", "dovecot-maildir"))
        if "wildduck" in self.servers:
            plan.append(("wildduck", "wildduck"))
        self.fill_info = {}
        for label, kind in plan:
            mark = os.path.join(self.work, "fill-%s.json" % label)
            if os.path.exists(mark) and not self.a.refill:
                self.fill_info[label] = json.load(open(mark))
                continue
            cmd = [sys.executable, os.path.join(HERE, "baselines", "fill.py"), "--kind", kind,
                   "--imap-port", str(self.servers[label]["imap"]), "--users", str(self.a.users),
                   "--messages", str(self.a.messages), "--password", self.a.password,
                   "--build", self.build, "--api-port", str(PORTS["wildduck"]["api"])]
            log("filling %s: %d users x %d messages" % (label, self.a.users, self.a.messages))
            out = run(cmd, env=self.env, timeout=3600).stdout.strip().splitlines()[-1]
            info = json.loads(out)
            # users without mail for the notify background clients
            extra = max(notify_backgrounds(self.a))
            if kind == "ours" and extra + 1 > self.a.users:
                run([sys.executable, os.path.join(HERE, "baselines", "fill.py"), "--kind", kind,
                     "--imap-port", str(self.servers[label]["imap"]), "--first-user",
                     str(self.a.users + 1), "--users", str(extra + 1 - self.a.users), "--no-mail",
                     "--password", self.a.password, "--build", self.build], env=self.env,
                    timeout=1800)
            json.dump(info, open(mark, "w"))
            self.fill_info[label] = info
            log("filled %s: %s" % (label, out))
        # Dovecot with our plugins reads wd-server's database: the same mail
        if "dovecot+plugins" in self.servers:
            self.fill_info["dovecot+plugins"] = self.fill_info["wd-server"]

    # ---------- wd-load ----------
    def wdload(self, mode, args, timeout):
        fd, path = tempfile.mkstemp(suffix=".json", dir=self.work)
        os.close(fd)
        cmd = [self.wdload_bin, mode] + args + ["--json", path]
        try:
            r = run(cmd, check=False, timeout=timeout)
            try:
                data = json.load(open(path))
            except (OSError, ValueError):
                data = {"error": "no JSON", "stderr": (r.stderr or "")[-500:]}
            data["exit"] = r.returncode
            return data
        except subprocess.TimeoutExpired:
            return {"error": "wd-load timed out after %d s" % timeout, "exit": -1}
        finally:
            os.unlink(path)


# ---------- statistics ----------

def summary(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def ratio(a, b):
    if not a or not b or not b.get("median"):
        return None
    return a["median"] / b["median"]


def fmt(v, digits=1):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return "%.0f" % v
    return ("%%.%df" % digits) % v


def fmt_spread(s, digits=1):
    if s is None:
        return "–"
    return "%s (%s–%s)" % (fmt(s["median"], digits), fmt(s["min"], digits), fmt(s["max"], digits))


def write_result(args, scenario, payload):
    os.makedirs(args.results, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d")
    path = os.path.join(args.results, "%s-%s.json" % (stamp, scenario))
    json.dump(payload, open(path, "w"), indent=1, sort_keys=True)
    log("wrote " + path)
    return path


def interleave(rounds, points, servers, one):
    """For each point: rounds x (each server in turn). Returns {point: {server: [results]}}."""
    out = {}
    for point in points:
        out[point] = {s: [] for s in servers}
        for r in range(rounds):
            for s in servers:
                res = one(point, s, r)
                out[point][s].append(res)
    return out


# ---------- scenarios ----------

def scenario_imap(R, name, mix):
    a = R.a
    clients = [int(c) for c in a.clients.split(",")]
    if a.with_1000 and 1000 not in clients:
        clients.append(1000)
    servers = [s for s in R.servers]
    timeout = a.duration + a.warmup + 600

    def one(c, s, r):
        log("%s: %s, %d clients, round %d" % (name, s, c, r + 1))
        d = R.wdload("imap", ["--port", str(R.servers[s]["imap"]), "--clients", str(c),
                              "--user-prefix", "user", "--users", str(a.users),
                              "--password", a.password, "--warmup", str(a.warmup),
                              "--duration", str(a.duration), "--timeout", "120", "--mix", mix,
                              "--seed", str(r + 1)], timeout)
        tot = d.get("total") or {}
        return {"ops_per_s": tot.get("ops_per_s"), "p50_ms": tot.get("p50_ms"),
                "p99_ms": tot.get("p99_ms"),
                "failures": sum(tot.get(k, 0) for k in ("no", "bad", "timeouts", "errors")),
                "exit": d.get("exit"), "ops": d.get("ops"), "error": d.get("error")}

    raw = interleave(a.repeat, clients, servers, one)
    rows, table = [], []
    for c in clients:
        ref = summary([x["ops_per_s"] for x in raw[c].get(a.reference, [])])
        for s in servers:
            ops = summary([x["ops_per_s"] for x in raw[c][s]])
            p50 = summary([x["p50_ms"] for x in raw[c][s]])
            p99 = summary([x["p99_ms"] for x in raw[c][s]])
            fails = sum(x["failures"] or 0 for x in raw[c][s])
            rows.append({"clients": c, "server": s, "ops_per_s": ops, "p50_ms": p50, "p99_ms": p99,
                         "failures": fails, "ratio_to_reference": ratio(ops, ref)})
            table.append("| %d | %s | %s | %s | %s | %s | %d |" % (
                c, s, fmt_spread(ops), fmt(ratio(ops, ref), 2), fmt_spread(p50),
                fmt_spread(p99), fails))
    md = ["| clients | server | ops/s median (min–max) | × %s | p50 ms | p99 ms | failed ops |"
          % a.reference, "|---:|---|---|---:|---|---|---:|"] + table
    return {"mix": mix, "clients": clients, "rows": rows, "rounds": raw}, md


def scenario_lmtp(R):
    a = R.a
    sizes = a.sizes.split(",")
    servers = [s for s in R.servers] + ["raw-store", "raw-doc"]

    def one(size, s, r):
        log("lmtp: %s, %s, round %d" % (s, size, r + 1))
        if s in ("raw-store", "raw-doc"):
            fd, path = tempfile.mkstemp(suffix=".json", dir=R.work)
            os.close(fd)
            rr = run([os.path.join(R.build, "bench", "raw-insert"), "--mongo", R.mongo_ours,
                      "--redis", R.redis, "--ferretdb-sqlite", R.sqlite, "--size", size,
                      "--duration", str(a.duration), "--mode",
                      "store" if s == "raw-store" else "raw", "--json", path], check=False,
                     timeout=a.duration + 300)
            try:
                d = json.load(open(path))
            except (OSError, ValueError):
                d = {"error": (rr.stderr or "")[-300:]}
            os.unlink(path)
            return {"messages_per_s": d.get("messages_per_s"), "mb_per_s": d.get("mb_per_s"),
                    "p50_ms": d.get("p50_ms"), "p99_ms": d.get("p99_ms"), "failures": 0 if d.get("ok") else 1,
                    "error": d.get("error")}
        d = R.wdload("lmtp", ["--port", str(R.servers[s]["lmtp"]), "--clients", "1",
                              "--rcpt", "user%d@bench.test", "--users", str(a.users),
                              "--size-mix", "%s=1" % size, "--duration", str(a.duration),
                              "--timeout", "120"], a.duration + 300)
        msg = (d.get("ops") or {}).get("message") or (d.get("total") or {})
        return {"messages_per_s": d.get("messages_per_s"), "mb_per_s": d.get("mb_per_s"),
                "p50_ms": msg.get("p50_ms"), "p99_ms": msg.get("p99_ms"),
                "failures": sum(msg.get(k, 0) for k in ("no", "bad", "timeouts", "errors")),
                "codes": d.get("codes"), "error": d.get("error"), "exit": d.get("exit")}

    raw = interleave(a.repeat, sizes, servers, one)
    rows, table = [], []
    for size in sizes:
        ref = summary([x["messages_per_s"] for x in raw[size][a.reference]]) if a.reference in raw[size] else None
        rstore = summary([x["messages_per_s"] for x in raw[size]["raw-store"]])
        rdoc = summary([x["messages_per_s"] for x in raw[size]["raw-doc"]])
        for s in servers:
            mps = summary([x["messages_per_s"] for x in raw[size][s]])
            mbs = summary([x["mb_per_s"] for x in raw[size][s]])
            p50 = summary([x["p50_ms"] for x in raw[size][s]])
            fails = sum(x["failures"] or 0 for x in raw[size][s])
            rows.append({"size": size, "server": s, "messages_per_s": mps, "mb_per_s": mbs,
                         "p50_ms": p50, "failures": fails, "ratio_to_reference": ratio(mps, ref),
                         "ratio_to_raw_store": ratio(mps, rstore), "ratio_to_raw_doc": ratio(mps, rdoc)})
            table.append("| %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                size, s, fmt_spread(mps), fmt(mbs and mbs["median"], 2), fmt(ratio(mps, ref), 2),
                fmt(ratio(mps, rstore), 2), fmt(ratio(mps, rdoc), 3), fmt_spread(p50), fails))
    md = ["| size | server | msg/s median (min–max) | MB/s | × %s | × raw-store | × raw-doc | p50 ms | failed |"
          % a.reference, "|---|---|---|---:|---:|---:|---:|---|---:|"] + table
    return {"sizes": sizes, "connections": 1, "rows": rows, "rounds": raw}, md


def scenario_idle(R):
    a = R.a
    counts = [int(c) for c in a.idle_counts.split(",")]
    if a.with_50k and 50000 not in counts:
        counts.append(50000)
    crt, key = R.tls_files()
    # fresh instances: the main wd-server's heap already holds what earlier scenarios
    # freed, and new sessions would fit into it without growing RSS/PSS
    R.start_wd("wd-server-idle", PORTS["wd-idle"]["imap"])
    R.start_wd("wd-server-tls", PORTS["wd-tls"]["imap"], tls=True)
    targets = [("wd-server", "plain", PORTS["wd-idle"]["imap"], lambda: R.procs["wd-server-idle"].pid),
               ("wd-server", "tls", PORTS["wd-tls"]["imap"], lambda: R.procs["wd-server-tls"].pid)]
    if "dovecot+plugins" in R.servers:
        targets.append(("dovecot+plugins", "plain", R.servers["dovecot+plugins"]["imap"],
                        R.servers["dovecot+plugins"]["pid"]))
    if "dovecot-maildir" in R.servers:
        targets += [("dovecot-maildir", "plain", R.servers["dovecot-maildir"]["imap"],
                     R.servers["dovecot-maildir"]["pid"]),
                    ("dovecot-maildir", "tls", R.servers["dovecot-maildir"]["imaps"],
                     R.servers["dovecot-maildir"]["pid"])]
    labels = ["%s/%s" % (t[0], t[1]) for t in targets]
    by_label = dict(zip(labels, targets))

    def one(n, label, r):
        server, mode, port, pidfn = by_label[label]
        root = pidfn()
        time.sleep(1)
        before = tree_memory_kb(root)
        sampler = MemorySampler(root)
        sampler.start()
        log("idle: %s, %d connections, round %d (PSS before %d KiB)" % (label, n, r + 1, before[0]))
        args = ["--port", str(port), "--clients", str(n), "--rate", str(a.idle_rate),
                "--hold", str(a.idle_hold), "--user-prefix", "user", "--users", str(a.users),
                "--password", a.password, "--timeout", "300", "--server-pid", str(root)]
        if n > 20000:
            args += ["--source-ips", "4"]
        if mode == "tls":
            args.append("--tls")
        d = R.wdload("idle", args, n / max(1, a.idle_rate) + a.idle_hold + 900)
        sampler.stop_flag.set()
        sampler.join()
        held = d.get("held") or 0
        peak = sampler.peak
        per = (peak[0] - before[0]) * 1024.0 / held if held else None
        time.sleep(2)   # let the server drop the closed sessions before the next target
        return {"held": held, "failed": d.get("failed"), "ramp_s": d.get("ramp_s"),
                "pss_kb_before": before[0], "pss_kb_peak": peak[0], "processes_peak": peak[2],
                "rss_kb_peak": peak[1], "bytes_per_conn_pss": per,
                "bytes_per_conn_wdload_rss": d.get("bytes_per_conn"), "error": d.get("error"),
                "exit": d.get("exit")}

    raw = interleave(a.idle_repeat, counts, labels, one)
    rows, table = [], []
    for n in counts:
        for label in labels:
            per = summary([x["bytes_per_conn_pss"] for x in raw[n][label]])
            held = min((x["held"] for x in raw[n][label]), default=0)
            procs = max((x["processes_peak"] for x in raw[n][label]), default=0)
            ramp = summary([x["ramp_s"] for x in raw[n][label]])
            rows.append({"connections": n, "server": label, "bytes_per_conn": per, "held_min": held,
                         "processes_peak": procs, "ramp_s": ramp})
            table.append("| %d | %s | %s | %d | %d | %s |" % (
                n, label, fmt_spread(per and {k: (v / 1024.0 if k != "n" else v) for k, v in per.items()}),
                held, procs, fmt_spread(ramp)))
    md = ["| connections | server | KiB per connection (PSS, min–max) | held (min) | processes | ramp s |",
          "|---:|---|---|---:|---:|---|"] + table
    return {"counts": counts, "rows": rows, "rounds": raw,
            "method": "PSS summed over the server's process tree, peak during the hold minus before"}, md


def notify_backgrounds(a):
    """The background loads of the notify scenario: 0 and each of --notify-background."""
    counts = [int(x) for x in str(a.notify_background).split(",") if x.strip()]
    return [0] + [c for c in counts if c > 0]


# B's debug line per IDLE read (server/imap/cmd-idle.c): where the time from the wake
# (the wd_events message) to the written responses went.
IDLE_TIMING = re.compile(r"IDLE (journal|mailbox) read: queued ([0-9.]+) ms, database ([0-9.]+) ms, "
                         r"Redis ([0-9.]+) ms, read ([0-9.]+) ms, sent ([0-9.]+) ms after the wake")


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def idle_components(log_path, offset):
    """p50/p99 of each IDLE read component B logged after `offset` of its log."""
    parts = {"queued": [], "database": [], "redis": [], "read": [], "wake_to_sent": []}
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for m in IDLE_TIMING.finditer(text):
        for key, val in zip(("queued", "database", "redis", "read", "wake_to_sent"), m.groups()[1:]):
            parts[key].append(float(val))
    if not parts["read"]:
        return None
    return {k: {"p50_ms": percentile(v, 0.5), "p99_ms": percentile(v, 0.99), "n": len(v)}
            for k, v in parts.items()}


def notify_backgrounds(a):
    """The background loads of the notify scenario: 0 and each of --notify-background."""
    counts = [int(x) for x in str(a.notify_background).split(",") if x.strip()]
    return [0] + [c for c in counts if c > 0]


def scenario_notify(R):
    a = R.a
    # B logs at debug level: its IDLE reads say where their time went
    R.start_wd("wd-server-b", PORTS["wd-b"]["imap"], log_level="debug")
    b_log = os.path.join(R.work, "wd-server-b.log")
    pairs = [("wd-server → wd-server", PORTS["wd-b"]["imap"])]
    if "dovecot+plugins" in R.servers:
        pairs.append(("wd-server → dovecot+plugins", R.servers["dovecot+plugins"]["imap"]))
    backgrounds = notify_backgrounds(a)
    labels = [p[0] for p in pairs]
    ports = dict(pairs)
    # the notify user's id: wd-load times B's EXISTS from the wd_events message naming it
    listed = run([os.path.join(R.build, "tools", "wdctl"), "--config=" + os.path.join(R.work, "empty.toml"),
                  "--dbs.mongo=" + R.mongo_ours, "--dbs.redis=" + R.redis, "user", "list"],
                 env=R.env).stdout.split()
    user_id = listed[listed.index("user1") - 1] if "user1" in listed else None

    def one(bg, label, r):
        log("notify: %s, %d background clients, round %d" % (label, bg, r + 1))
        users = max(a.users, bg + 1)
        offset = os.path.getsize(b_log) if os.path.exists(b_log) else 0
        load = os.getloadavg()
        d = R.wdload("notify", ["--port-a", str(R.servers["wd-server"]["imap"]),
                                "--port-b", str(ports[label]), "--user-prefix", "user",
                                "--users", str(users), "--password", a.password,
                                "--count", str(a.notify_count), "--timeout", "120",
                                "--background-clients", str(bg), "--mix", a.notify_mix]
                     + (["--events-port", str(a.redis_port), "--events-user", user_id] if user_id else []),
                     a.notify_count * 2 + 900)
        ops = d.get("ops") or {}
        return {"from_ok": ops.get("from-ok"), "from_send": ops.get("from-send"),
                "from_publish": ops.get("from-publish"),
                "exists_first": (ops.get("exists-first") or {}).get("count"),
                "append": ops.get("append"), "rounds": d.get("rounds"),
                "loadavg_before": load, "loadavg_after": os.getloadavg(),
                "b_components": idle_components(b_log, offset) if label.endswith("wd-server") else None,
                "error": d.get("error") or None, "exit": d.get("exit")}

    raw = interleave(a.repeat, backgrounds, labels, one)
    rows, table = [], []
    for bg in backgrounds:
        for label in labels:
            res = raw[bg][label]
            get = lambda key, pct: summary([(x[key] or {}).get(pct) for x in res if x.get(key)])
            comp = lambda key, pct: summary([((x.get("b_components") or {}).get(key) or {}).get(pct)
                                             for x in res])
            row = {"background": bg, "pair": label,
                   "from_ok": {p: get("from_ok", p) for p in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
                   "from_send": {p: get("from_send", p) for p in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
                   "from_publish": {p: get("from_publish", p) for p in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
                   "exists_first": sum((x.get("exists_first") or 0) for x in res),
                   "b_components": {k: {p: comp(k, p) for p in ("p50_ms", "p99_ms")}
                                    for k in ("queued", "database", "redis", "read", "wake_to_sent")},
                   "loadavg": summary([x["loadavg_after"][0] for x in res]),
                   "timeouts": sum(((x.get("from_ok") or {}).get("timeouts") or 0) for x in res),
                   "errors": [x["error"] for x in res if x.get("error")]}
            rows.append(row)
            f, c, fp = row["from_ok"], row["b_components"], row["from_publish"]
            table.append("| %s | %d | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                label, bg, fmt_spread(f["p50_ms"]), fmt_spread(f["p90_ms"]), fmt_spread(f["p99_ms"]),
                fmt_spread(f["max_ms"]), row["exists_first"], fmt_spread(fp["p50_ms"]),
                fmt_spread(fp["p99_ms"]), fmt_spread(row["from_send"]["p99_ms"]),
                fmt(c["queued"]["p99_ms"] and c["queued"]["p99_ms"]["median"], 2),
                fmt(c["database"]["p99_ms"] and c["database"]["p99_ms"]["median"], 2),
                fmt(c["wake_to_sent"]["p99_ms"] and c["wake_to_sent"]["p99_ms"]["median"], 2),
                fmt(row["loadavg"] and row["loadavg"]["median"], 1), row["timeouts"]))
    md = ["| A → B | background clients on A | from-OK p50 ms | p90 ms | p99 ms | max ms | EXISTS before OK "
          "| from-publish p50 ms | from-publish p99 ms | from-send p99 ms "
          "| B queued p99 ms | B database p99 ms | B wake→sent p99 ms | load avg | timeouts |",
          "|---|---:|---|---|---|---|---:|---|---|---|---:|---:|---:|---:|---:|"] + table
    return {"count": a.notify_count, "mix": a.notify_mix, "rows": rows, "rounds": raw}, md


def sqlite_bytes(dirpath, db):
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(dirpath, db + ".sqlite" + suffix)
        if os.path.exists(p):
            total += os.path.getsize(p)
    return total


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def apparent_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def scenario_storage(R):
    rows, table = [], []
    raw_bytes = R.fill_info.get("wd-server", {}).get("bytes")
    # FerretDB keeps each database in one SQLite file; checkpoint the WAL first is not
    # possible from outside without a writer lock, so count file + WAL.
    entries = [("wd-server / dovecot+plugins (wdbench_ours, FerretDB SQLite)",
                sqlite_bytes(R.sqlite, "wdbench_ours"), None, R.fill_info.get("wd-server"))]
    if "wildduck" in R.servers:
        entries.append(("wildduck (wdbench_wildduck, FerretDB SQLite)",
                        sqlite_bytes(R.sqlite, "wdbench_wildduck"), None, R.fill_info.get("wildduck")))
    if "dovecot-maildir" in R.servers:
        mail = os.path.join(R.var, "dovecot-maildir", "mail")
        entries.append(("dovecot-maildir (Maildir, du)", du_bytes(mail), apparent_bytes(mail),
                        R.fill_info.get("dovecot-maildir")))
    for label, disk, apparent, info in entries:
        raw = (info or {}).get("bytes")
        rows.append({"store": label, "disk_bytes": disk, "apparent_bytes": apparent,
                     "raw_bytes": raw, "messages": (info or {}).get("messages"),
                     "ratio_to_raw": disk / raw if raw else None})
        table.append("| %s | %d | %s | %s | %s | %s |" % (
            label, (info or {}).get("messages") or 0, fmt(raw / 1e6 if raw else None, 1),
            fmt(disk / 1e6, 1), fmt(apparent / 1e6 if apparent else None, 1),
            fmt(disk / raw if raw else None, 2)))
    md = ["| store | messages | raw MB (sum of message sizes) | MB on disk | MB apparent | disk / raw |",
          "|---|---:|---:|---:|---:|---:|"] + table
    return {"rows": rows, "raw_bytes": raw_bytes,
            "note": "the SQLite file also holds every other collection (users, mailboxes, journal, "
                    "indexes); the other scenarios add mail, so this is measured right after the fill"}, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="all", help="comma list of %s, or all" % ",".join(ALL_SCENARIOS))
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds per load point")
    ap.add_argument("--duration", type=float, default=10, help="seconds measured per run")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--clients", default="1,10,100")
    ap.add_argument("--with-1000", action="store_true", help="imap scenarios also at 1000 clients")
    ap.add_argument("--sizes", default="2k,20k,200k,2m")
    ap.add_argument("--idle-counts", default="1000", help="e.g. 1000,10000")
    ap.add_argument("--with-50k", action="store_true")
    ap.add_argument("--idle-rate", type=int, default=200, help="connections opened per second")
    ap.add_argument("--idle-hold", type=int, default=10)
    ap.add_argument("--idle-repeat", type=int, default=1)
    ap.add_argument("--notify-count", type=int, default=100)
    ap.add_argument("--notify-background", default="10",
                    help="comma list of background imap client counts on A (0 is always run)")
    ap.add_argument("--notify-mix", default=META_MIX,
                    help="the background clients' wd-load mix (default: the metadata mix)")
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--password", default="benchpass1")
    ap.add_argument("--refill", action="store_true")
    ap.add_argument("--reference", default="wd-server")
    ap.add_argument("--no-wildduck", action="store_true")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--stack-dir", default=os.environ.get("WD_STACK_DIR", os.path.join(REPO, "var", "stack-sidebyside")))
    ap.add_argument("--mongo-port", type=int, default=int(os.environ.get("WD_MONGO_PORT", 27691)))
    ap.add_argument("--redis-port", type=int, default=int(os.environ.get("WD_REDIS_PORT", 6691)))
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--port-base", type=int, default=0,
                    help="loopback ports from here on (%d of them) instead of 21000-21999"
                    % sum(len(v) for v in PORTS.values()))
    ap.add_argument("--keep-running", action="store_true", help="leave the servers up at the end")
    ap.add_argument("--keep-stack", action="store_true", help="leave FerretDB/Redis up at the end")
    a = ap.parse_args()
    scenarios = ALL_SCENARIOS if a.scenario == "all" else tuple(a.scenario.split(","))
    for s in scenarios:
        if s not in ALL_SCENARIOS:
            ap.error("unknown scenario %r" % s)
    if os.geteuid() != 0 and not a.no_dovecot:
        ap.error("the Dovecot baselines need root (or --no-dovecot)")
    if not os.access(os.path.join(a.build, "bench", "wd-load"), os.X_OK):
        ap.error("no %s/bench/wd-load: build first (ninja -C %s)" % (a.build, a.build))

    if a.port_base:
        relocate_ports(a.port_base)
    R = Runner(a)
    status = 0
    try:
        R.start_all()
        R.fill()
        for s in scenarios:
            t0 = time.time()
            m0 = machine()
            if s == "imap-meta":
                data, md = scenario_imap(R, s, META_MIX)
            elif s == "imap-full":
                data, md = scenario_imap(R, s, FULL_MIX)
            elif s == "lmtp":
                data, md = scenario_lmtp(R)
            elif s == "idle":
                data, md = scenario_idle(R)
            elif s == "notify":
                data, md = scenario_notify(R)
            else:
                data, md = scenario_storage(R)
            data.update({"scenario": s, "machine_before": m0, "machine_after": machine(),
                         "seconds": round(time.time() - t0, 1), "repeat": a.repeat,
                         "duration": a.duration, "reference": a.reference,
                         "servers": sorted(R.servers), "markdown": md,
                         "date": datetime.datetime.now().isoformat(timespec="seconds"),
                         "users": a.users, "messages_per_user": a.messages})
            write_result(a, s, data)
            print("\n### %s (load %.1f → %.1f)\n" % (s, m0["loadavg"][0], data["machine_after"]["loadavg"][0]))
            print("\n".join(md), flush=True)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        log("error: %s" % e)
        status = 1
    except KeyboardInterrupt:
        status = 130
    finally:
        if not a.keep_running:
            R.stop_all()
    return status


if __name__ == "__main__":
    sys.exit(main())

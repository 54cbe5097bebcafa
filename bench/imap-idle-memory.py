#!/usr/bin/env python3
"""bench/imap-idle-memory.py — wd-server's memory per idle IMAP IDLE connection
at 1,000 / 10,000 / 50,000 connections, plain and TLS.

    WD_MONGO_URL=mongodb://127.0.0.1:P/x WD_REDIS_URL=redis://127.0.0.1:Q/3 \\
    [WD_FERRETDB_SQLITE=...] bench/imap-idle-memory.py --build BUILD \\
        [--counts 1000,10000,50000] [--modes plain,tls] [--instances K] [--json FILE]

For each count and mode, K (or more, see Limits) fresh wd-server instances, instance j
on database DB<j> (--db, default wdidle) and port --port + 2j (+1 for TLS), so no heap
left over from other work is reused and logins of different instances do not queue on
one SQLite write lock. Then:
  1. a warm-up of 10 sessions (5 a second) per instance that log in, SELECT, IDLE and
     close, so one-time allocations (TLS context, database pools, worker stacks) are
     not counted;
  2. each server's VmRSS, PSS (/proc/PID/smaps_rollup) and glibc's bytes in use
     (malloc_stats() called through gdb; immune to the reuse of memory freed before);
  3. wd-load idle per instance: its share of the N connections, each LOGIN, SELECT
     INBOX, IDLE, ramped at --rate per second in all, spread over users
     idle<j>u1.. (--per-user connections each; above 15, imap.maxConnections is raised
     to it) and over 127.0.0.2.. source addresses above --per-source connections;
  4. once every connection got "+ idling" (or failed), wait until every server is
     quiet — its CPU time grows by less than --quiet (2 %) of a core over 2 s, so no
     worker job is left queued or running — and its RSS is stable, then read the
     three figures again; (after - before) / held, summed over the instances, is the
     figure per connection. With --deadline S the sample is taken after S seconds
     even if logins are still in flight (the row says so);
  5. SIGUSR1 ends wd-load's hold; its JSON (held, failed, setup latency) goes into
     the row.

Logins: the users come from BUILD/bench/idle-users (created on first use), whose
application-specific password is a PBKDF2-SHA256 hash of 1,000 iterations instead
of 100,000: a successful master-password login upgrades a cheap master hash to the
full cost (see idle-users.c). The benchmark measures idle memory, not hashing.

Limits: RLIMIT_NOFILE is raised to fs.nr_open for this process (wd-server and
wd-load inherit it) or, where that is refused (no CAP_SYS_RESOURCE), to the hard
limit; each instance takes at most that limit - 200 connections, so a larger count
gets more instances. imap.maxConnectionsPerIp=0: all clients are on loopback.

Prints one line per run and writes everything as JSON (--json). Nothing here is
pass/fail."""

import argparse
import datetime
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

ASP_PASSWORD = "idlebenchpassabc"
HZ = os.sysconf("SC_CLK_TCK")


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def heap_in_use(pid, log_path):
    """glibc's bytes in use (all arenas and mmapped chunks): malloc_stats() called in the
    server through gdb, which prints to the server's stderr (its log)"""
    offset = os.path.getsize(log_path)
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)malloc_stats()"],
                   capture_output=True, timeout=120)
    time.sleep(0.2)
    with open(log_path) as f:
        f.seek(offset)
        found = re.findall(r"in use bytes\s*=\s*(\d+)", f.read())
    return int(found[-1]) if found else -1


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def raise_nofile():
    want = int(open("/proc/sys/fs/nr_open").read())
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Bench:
    def __init__(self, a):
        self.a = a
        self.mongo_base = os.environ["WD_MONGO_URL"].rsplit("/", 1)[0] + "/"
        self.redis = os.environ["WD_REDIS_URL"]
        self.tmp = tempfile.mkdtemp(prefix="imap-idle-")
        self.cert = os.path.join(self.tmp, "server.crt")
        self.key = os.path.join(self.tmp, "server.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        self.conf = os.path.join(self.tmp, "empty.toml")
        open(self.conf, "w").close()

    def tool(self, name):
        return os.path.join(self.a.build, "bench", name)

    def mongo(self, j):
        return self.mongo_base + "%s%d" % (self.a.db, j)

    def users(self, j, prefix, count):
        """PREFIX1..PREFIXcount exist, each with a cheap app password and a small INBOX"""
        t = time.time()
        jobs = self.a.provision_jobs
        per = math.ceil(count / jobs)
        procs = [subprocess.Popen([self.tool("idle-users"), self.mongo(j), self.redis, prefix,
                                   str(1 + i * per), str(min(per, count - i * per)),
                                   ASP_PASSWORD, str(self.a.messages)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for i in range(jobs) if i * per < count]
        created = 0
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit("idle-users failed")
            created += json.loads(out.strip().splitlines()[-1])["created"]
        log("%s: users %s1..%d present (%d created) in %.0f s" % (self.mongo(j), prefix, count, created,
                                                               time.time() - t))

    def clear_leases(self):
        """per-user connection leases left in Redis by an earlier instance"""
        m = re.match(r"redis://([^:/]+):(\d+)(?:/(\d+))?", self.redis)
        cli = ["redis-cli", "-h", m.group(1), "-p", m.group(2), "-n", m.group(3) or "0"]
        keys = subprocess.run(cli + ["--scan", "--pattern", "wdc:lease:imap:*"],
                              capture_output=True, text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(cli + ["del"] + keys[i:i + 500], capture_output=True)

    def start_server(self, j, port, tls, log_path):
        # wd-server's listener sets SO_REUSEPORT: a leftover server on the port would
        # silently take half of the connections
        if subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                          text=True).stdout.strip():
            raise SystemExit("port %d is in use" % port)
        args = [os.path.join(self.a.build, "server", "wd-server"), "--config=" + self.conf,
                "--dbs.mongo=" + self.mongo(j), "--dbs.redis=" + self.redis,
                "--workers.threads=%d" % self.a.threads,
                "--imap.host=127.0.0.1", "--imap.port=%d" % port,
                "--imap.secure=%s" % str(tls).lower(), "--imap.starttls=false",
                "--imap.insecureAuth=true", "--imap.maxConnectionsPerIp=0",
                "--pop3.enabled=false", "--lmtp.enabled=false", "--tls.cert=" + self.cert,
                "--tls.key=" + self.key, "--log.level=warning"]
        if self.a.per_user > 15:
            # WildDuck's default per-user limit is 15
            args.append("--imap.maxConnections=%d" % self.a.per_user)
        if os.environ.get("WD_FERRETDB_SQLITE"):
            args.append("--dbs.ferretdbSqlite=" + os.environ["WD_FERRETDB_SQLITE"])
        args += self.a.server_arg
        logf = open(log_path, "w")
        env = dict(os.environ)
        if self.a.malloc_arena_max:
            env["MALLOC_ARENA_MAX"] = str(self.a.malloc_arena_max)
        proc = subprocess.Popen(args, stderr=logf, stdout=logf, env=env)
        logf.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit("wd-server exited: see %s" % log_path)
            if subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                              capture_output=True, text=True).stdout.strip():
                return proc
            time.sleep(0.2)
        raise SystemExit("wd-server did not listen")

    def wd_load(self, inst, n, hold, rate, json_path=None):
        users = max(1, math.ceil(n / self.a.per_user))
        args = [self.tool("wd-load"), "idle", "--port", str(inst["port"]),
                "--clients", str(n), "--rate", str(rate), "--hold", str(hold),
                "--user-prefix", inst["prefix"], "--users", str(users),
                "--password", ASP_PASSWORD, "--timeout", str(self.a.timeout), "--server-pid",
                str(inst["proc"].pid)]
        if n > self.a.per_source:
            args += ["--source-ips", str(math.ceil(n / self.a.per_source))]
        if inst["tls"]:
            args.append("--tls")
        if json_path:
            args += ["--json", json_path]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def quiet(self, pids):
        """wait until the servers use < --quiet of a core each for 2 s and their RSS is
        stable: no worker job queued or running"""
        t = time.time()
        last = [status_kib(p, "VmRSS") for p in pids]
        while True:
            c0 = [cpu_ticks(p) for p in pids]
            time.sleep(2)
            busy = max((cpu_ticks(p) - c) / HZ / 2 for p, c in zip(pids, c0))
            rss = [status_kib(p, "VmRSS") for p in pids]
            stable = all(abs(r - l) <= max(64, l // 500) for r, l in zip(rss, last))
            if busy < self.a.quiet and stable:
                return time.time() - t, busy
            if time.time() - t > self.a.quiet_max:
                return time.time() - t, busy
            last = rss

    def one(self, n, tls):
        label = "TLS" if tls else "plain"
        k = max(self.a.instances, math.ceil(n / self.per_instance))
        shares = [n // k + (1 if j < n % k else 0) for j in range(k)]
        self.clear_leases()
        insts = []
        try:
            for j in range(self.a.first_instance, self.a.first_instance + k):
                port = self.a.port + 2 * j + int(tls)
                log_path = os.path.join(self.tmp, "wd-server-%d-%s-%d.log" % (n, label, j))
                insts.append({"port": port, "tls": tls, "prefix": "idle%du" % j, "log": log_path,
                              "proc": self.start_server(j, port, tls, log_path), "n": shares[j - self.a.first_instance]})
            for inst in insts:
                warm = self.wd_load(inst, 10, 1, 5)
                warm.communicate(timeout=600)
            time.sleep(2)
            pids = [i["proc"].pid for i in insts]
            self.quiet(pids)
            for inst in insts:
                pid = inst["proc"].pid
                inst["before"] = {"rss_kib": status_kib(pid, "VmRSS"), "pss_kib": pss_kib(pid),
                                  "heap_bytes": heap_in_use(pid, inst["log"])}
            t0 = time.time()
            for j, inst in enumerate(insts):
                inst["json"] = os.path.join(self.tmp, "wd-load-%d-%s-%d.json" % (n, label, j))
                inst["load"] = self.wd_load(inst, inst["n"], 7200, self.a.rate / k, inst["json"])
                inst["ramp"] = threading.Event()
                inst["stderr"] = []
                threading.Thread(target=self.follow, args=(inst,), daemon=True).start()
                threading.Thread(target=inst["load"].stdout.read, daemon=True).start()
            deadline = t0 + self.a.deadline if self.a.deadline else None
            cut = False
            for inst in insts:
                while not inst["ramp"].wait(1):  # (a bare wait() ignores Ctrl-C)
                    if deadline and time.time() > deadline:
                        cut = True
                        break
                if cut:
                    break
            ramp_s = time.time() - t0
            if cut:
                # sampled with what is held now; logins still in flight are counted in
                # the servers' memory but not in "held"
                log("deadline: sampling before every connection is set up")
            load_at_ramp = loadavg()
            quiet_s, busy = self.quiet(pids) if not cut else (0, None)
            for inst in insts:
                pid = inst["proc"].pid
                inst["after"] = {"rss_kib": status_kib(pid, "VmRSS"), "pss_kib": pss_kib(pid),
                                 "hwm_kib": status_kib(pid, "VmHWM"),
                                 "fds": len(os.listdir("/proc/%d/fd" % pid)),
                                 "heap_bytes": heap_in_use(pid, inst["log"])}
                inst["client_rss_kib"] = status_kib(inst["load"].pid, "VmRSS")
            for inst in insts:
                inst["load"].send_signal(signal.SIGUSR1)
            for inst in insts:
                inst["load"].wait(timeout=600)
                inst["result"] = (json.load(open(inst["json"]))
                                  if os.path.exists(inst["json"]) else {})
            held = sum(i["result"].get("held", 0) for i in insts)
            d_rss = sum(i["after"]["rss_kib"] - i["before"]["rss_kib"] for i in insts)
            d_pss = sum(i["after"]["pss_kib"] - i["before"]["pss_kib"] for i in insts)
            d_heap = sum(i["after"]["heap_bytes"] - i["before"]["heap_bytes"] for i in insts)
            row = {
                "connections": n, "mode": label, "held": held, "command": " ".join(sys.argv),
                "failed": sum(i["result"].get("failed", 0) for i in insts),
                "instances": k, "ramp_s": round(ramp_s, 1), "cut_at_deadline": cut, "quiet_wait_s": round(quiet_s, 1),
                "server_cpu_share_when_sampled": busy,
                "rss_bytes_per_conn": round(d_rss * 1024 / held) if held else None,
                "pss_bytes_per_conn": round(d_pss * 1024 / held) if held else None,
                "heap_bytes_per_conn": round(d_heap / held) if held else None,
                "loadavg_at_ramp_end": load_at_ramp,
                "per_instance": [{
                    "port": i["port"], "users": "%s1..%d" % (i["prefix"], math.ceil(
                        i["n"] / self.a.per_user)), "target": i["n"],
                    "held": i["result"].get("held"), "failed": i["result"].get("failed"),
                    "before": i["before"], "after": i["after"],
                    "client_rss_kib": i["client_rss_kib"],
                    "hold_end": [l for l in i["stderr"] if "hold ended" in l or
                                 "first error" in l],
                    "wd_load": i["result"]} for i in insts],
            }
            log("%s, %d connections on %d instance(s): held %d, +%d KiB RSS, +%d KiB PSS: "
                "%s B/conn RSS, %s B/conn PSS, %s B/conn malloc in use (ramp %.0f s, quiet after %.0f s, load %s)" % (
                    label, n, k, held, d_rss, d_pss, row["rss_bytes_per_conn"],
                    row["pss_bytes_per_conn"], row["heap_bytes_per_conn"], ramp_s, quiet_s, load_at_ramp))
            return row
        finally:
            for inst in insts:
                if "load" in inst and inst["load"].poll() is None:
                    inst["load"].kill()
                inst["proc"].send_signal(signal.SIGTERM)
            for inst in insts:
                try:
                    inst["proc"].wait(30)
                except subprocess.TimeoutExpired:
                    inst["proc"].kill()
                    inst["proc"].wait()

    def follow(self, inst):
        for line in inst["load"].stderr:
            line = line.strip()
            inst["stderr"].append(line)
            if self.a.verbose or "ramp done" in line:
                log("  wd-load :%d: %s" % (inst["port"], line))
            if "ramp done" in line:
                inst["ramp"].set()
        inst["ramp"].set()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--counts", default="1000,10000,50000")
    ap.add_argument("--modes", default="plain,tls")
    ap.add_argument("--db", default="wdidle", help="database name (users idle1..)")
    ap.add_argument("--per-user", type=int, default=12, help="connections per user")
    ap.add_argument("--messages", type=int, default=2, help="messages in each INBOX")
    ap.add_argument("--rate", type=int, default=250, help="connections opened per second")
    ap.add_argument("--port", type=int, default=31200, help="plain port; TLS is port + 1")
    ap.add_argument("--per-instance", type=int, default=1 << 30,
                    help="connections per wd-server (also capped by RLIMIT_NOFILE)")
    ap.add_argument("--instances", type=int, default=1,
                    help="wd-server instances (at least; more when RLIMIT_NOFILE requires), "
                         "each with its own database DB<j>")
    ap.add_argument("--first-instance", type=int, default=0,
                    help="number of the first instance (database DB<j>, port + 2j): runs side by side")
    ap.add_argument("--timeout", type=int, default=3600,
                    help="wd-load's per-command timeout: logins queue in the server")
    ap.add_argument("--malloc-arena-max", type=int, default=0,
                    help="MALLOC_ARENA_MAX for wd-server (glibc; 0: unset)")
    ap.add_argument("--deadline", type=float, default=0,
                    help="seconds: sample and stop even if not every connection is set up")
    ap.add_argument("--threads", type=int, default=8,
                    help="workers.threads of each wd-server (8, wd-server's default)")
    ap.add_argument("--provision-only", action="store_true", help="create the users, run nothing")
    ap.add_argument("--no-provision", action="store_true", help="the users exist already")
    ap.add_argument("--provision-jobs", type=int, default=2, help="idle-users processes per database")
    ap.add_argument("--per-source", type=int, default=25000,
                    help="connections per source address")
    ap.add_argument("--quiet", type=float, default=0.02, help="server CPU share counted as idle")
    ap.add_argument("--quiet-max", type=float, default=300)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="one more wd-server argument, e.g. --workers.heapTrimSeconds=0 (repeatable)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if not os.environ.get("WD_MONGO_URL") or not os.environ.get("WD_REDIS_URL"):
        ap.error("WD_MONGO_URL and WD_REDIS_URL are required")
    nofile = raise_nofile()
    counts = [int(c) for c in a.counts.split(",")]
    modes = [m.strip() for m in a.modes.split(",")]
    b = Bench(a)
    b.per_instance = min(a.per_instance, nofile - 200)
    log("RLIMIT_NOFILE %d: at most %d connections per wd-server; load average %s" % (
        nofile, b.per_instance, loadavg()))
    top = max(counts)
    k = max(a.instances, math.ceil(top / b.per_instance))
    threads = []
    for j in range(a.first_instance, a.first_instance + k if not a.no_provision else 0):
        share = math.ceil(max(n / max(a.instances, math.ceil(n / b.per_instance))
                              for n in counts if j - a.first_instance < max(a.instances, math.ceil(n / b.per_instance))))
        threads.append(threading.Thread(target=b.users, args=(j, "idle%du" % j,
                                                              math.ceil(share / a.per_user))))
        threads[-1].start()
    for t in threads:
        t.join()
    if a.provision_only:
        return
    rows = []
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        for n in counts:
            for m in modes:
                rows.append(b.one(n, m == "tls"))
                if a.json:
                    write(a, rows, started, nofile)
    finally:
        subprocess.run(["rm", "-rf", b.tmp])
    if a.json:
        write(a, rows, started, nofile)


def write(a, rows, started, nofile):
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    doc = {
        "scenario": "idle-scale", "started_utc": started.isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "machine": {"cpus": os.cpu_count(), "cpu": cpu,
                                                  "mem_total_kib": status_mem_total()},
        "rlimit_nofile": nofile, "loadavg_at_end": loadavg(), "per_user": a.per_user, "messages_per_inbox": a.messages,
        "login": "app password, PBKDF2-SHA256 1,000 iterations (bench/idle-users.c)",
        "workers_threads": a.threads, "malloc_arena_max": a.malloc_arena_max or None,
        "rows": rows,
    }
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def status_mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return -1


if __name__ == "__main__":
    main()

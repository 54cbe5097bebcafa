#!/usr/bin/env python3
"""smtpsink.py — a small SMTP server for tests that records what it receives.

A stand-in for the SMTP relay that wildduck-c's outbound sender (and
anything else under test) hands mail to. asyncio only, no aiosmtpd.

Command line:

  smtpsink.py --dir DIR [--host 127.0.0.1] [--port 0]
              [--reply STAGE=CODES]... [--starttls | --implicit-tls]
              [--cert FILE --key FILE] [--auth USER:PASS] [--size N]
              [--no-ehlo] [--no-8bitmime] [--no-smtputf8] [--max-size N]

  --dir DIR        where messages are recorded (created if missing).
  --host/--port    listening address; port 0 picks a free port.
  --reply STAGE=CODES
                   answer STAGE with these codes instead of success, one per
                   occurrence of the stage (counted over all connections), then
                   success again; a trailing "*" repeats the last code forever.
                   STAGE: greeting, ehlo, mail, rcpt, data (the 354 step),
                   message (the reply after the final dot).
                   CODES: SMTP codes (451, 550, ...), "hang" (never answer, keep
                   the connection open) or "close" (close without answering).
                   Examples: --reply message=451   (first message deferred)
                             --reply rcpt=550*     (every recipient refused)
                             --reply greeting=hang* (a silent server)
  --starttls       offer STARTTLS; --implicit-tls: TLS from the first byte.
                   Without --cert/--key a self-signed certificate for
                   "localhost" is made with the openssl command in DIR.
  --auth USER:PASS offer AUTH PLAIN and require it before MAIL FROM.
  --size N         announce SIZE N and refuse larger messages (552).
  --no-ehlo        answer EHLO with 502 (the client must fall back to HELO).
  --no-8bitmime / --no-smtputf8   do not announce these extensions.
  --max-size N     hard limit of a message (default 64 MiB), answered 552.

Output: once listening, one JSON line on stdout, then nothing:
  {"port": 12345, "pid": 678}

Records, for every message answered 250 after the final dot, in DIR:
  NNNNNN.eml   the message exactly as received (dot-unstuffed, without the
               terminating "."), line ends untouched;
  NNNNNN.json  {"seq", "helo", "mail_from", "mail_params", "rcpt_to": [...],
                "tls", "auth", "peer", "size", "bare_lf", "bare_cr"}
               written after the .eml (its presence means complete).
  events.jsonl one line per connection ({"stage": "connect", "code": 0, ...})
               and per transaction outcome, accepted or refused:
               {"stage", "code", "mail_from", "rcpt_to", "time"}.
bare_lf / bare_cr tell whether the data held an LF not preceded by CR or a
CR not followed by LF (a correct client never sends either).

The end of DATA is "\\r\\n.\\r\\n" only. Limits: 4096-byte command lines
(1 MiB message lines), 100
recipients, 300 s idle. SIGTERM/SIGINT end the process.
"""

import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time

LINE_MAX = 4096
RCPT_MAX = 100
IDLE_TIMEOUT = 300

SUCCESS = {"greeting": 220, "ehlo": 250, "mail": 250, "rcpt": 250, "data": 354, "message": 250}
TEXT = {
    220: "sink ready",
    250: "2.0.0 OK",
    354: "go ahead, end with <CRLF>.<CRLF>",
    421: "4.3.2 sink closing",
    450: "4.2.1 sink says later",
    451: "4.3.0 sink says try again",
    452: "4.3.1 sink is full",
    502: "5.5.1 not here",
    530: "5.7.0 authentication required",
    535: "5.7.8 bad credentials",
    550: "5.1.1 sink says no",
    552: "5.3.4 too big",
    553: "5.1.3 bad address",
    554: "5.7.1 sink refuses",
}


class Script:
    """The codes each stage answers, consumed in order."""

    def __init__(self, specs):
        self.codes = {}
        self.sticky = {}
        for spec in specs:
            stage, _, codes = spec.partition("=")
            if stage not in SUCCESS or not codes:
                raise SystemExit("bad --reply %r" % spec)
            sticky = codes.endswith("*")
            items = [c for c in codes.rstrip("*").split(",") if c]
            for c in items:
                if c not in ("hang", "close") and not (c.isdigit() and len(c) == 3):
                    raise SystemExit("bad code %r in --reply %r" % (c, spec))
            self.codes[stage] = items
            self.sticky[stage] = sticky

    def next(self, stage):
        items = self.codes.get(stage)
        if not items:
            return SUCCESS[stage]
        code = items[0]
        if len(items) > 1 or not self.sticky.get(stage):
            items.pop(0)
        return code if code in ("hang", "close") else int(code)


class Sink:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.script = Script(args.reply or [])
        self.seq = 0
        self.ssl = None
        if args.starttls or args.implicit_tls:
            cert, key = args.cert, args.key
            if not cert:
                cert = os.path.join(self.dir, "sink.crt")
                key = os.path.join(self.dir, "sink.key")
                if not os.path.exists(cert):
                    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                                    "-subj", "/CN=localhost", "-addext",
                                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                    "-keyout", key, "-out", cert],
                                   check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl.load_cert_chain(cert, key)

    def event(self, **kw):
        kw["time"] = time.time()
        with open(os.path.join(self.dir, "events.jsonl"), "a") as f:
            f.write(json.dumps(kw) + "\n")

    def record(self, session, data):
        self.seq += 1
        name = os.path.join(self.dir, "%06d" % self.seq)
        with open(name + ".eml.tmp", "wb") as f:
            f.write(data)
        os.rename(name + ".eml.tmp", name + ".eml")
        bare_lf = any(data[i] == 0x0A and (i == 0 or data[i - 1] != 0x0D)
                      for i in range(len(data)))
        bare_cr = any(data[i] == 0x0D and (i + 1 >= len(data) or data[i + 1] != 0x0A)
                      for i in range(len(data)))
        info = {
            "seq": self.seq, "helo": session["helo"], "mail_from": session["mail_from"],
            "mail_params": session["mail_params"], "rcpt_to": session["rcpt_to"],
            "tls": session["tls"], "auth": session["auth"], "peer": session["peer"],
            "size": len(data), "bare_lf": bare_lf, "bare_cr": bare_cr,
        }
        with open(name + ".json.tmp", "w") as f:
            json.dump(info, f)
        os.rename(name + ".json.tmp", name + ".json")

    def capabilities(self, session):
        caps = ["ENHANCEDSTATUSCODES"]
        if self.args.size:
            caps.append("SIZE %d" % self.args.size)
        else:
            caps.append("SIZE")
        if not self.args.no_8bitmime:
            caps.append("8BITMIME")
        if not self.args.no_smtputf8:
            caps.append("SMTPUTF8")
        if self.args.starttls and not session["tls"]:
            caps.append("STARTTLS")
        if self.args.auth:
            caps.append("AUTH PLAIN")
        return caps

    async def handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        session = {"helo": None, "mail_from": None, "mail_params": [], "rcpt_to": [],
                   "tls": bool(self.args.implicit_tls), "auth": None,
                   "peer": "%s:%s" % (peer[0], peer[1]) if peer else None}
        self.event(stage="connect", code=0, mail_from=None, rcpt_to=[])
        try:
            await self.session(reader, writer, session)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def reply(self, writer, code, text=None, lines=None):
        out = []
        for line in lines or []:
            out.append("%d-%s\r\n" % (code, line))
        out.append("%d %s\r\n" % (code, text if text is not None else TEXT.get(code, "sink")))
        writer.write("".join(out).encode())
        await writer.drain()

    async def scripted(self, writer, stage, lines=None):
        """Answer a stage as scripted: True when the answer was success."""
        code = self.script.next(stage)
        if code == "hang":
            await asyncio.sleep(3600)
            raise ConnectionError("hang over")
        if code == "close":
            raise ConnectionError("closed on purpose")
        await self.reply(writer, code, lines=lines if code == SUCCESS[stage] else None)
        return code == SUCCESS[stage], code

    async def readline(self, reader):
        line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
        if len(line) > LINE_MAX:
            raise ConnectionError("line too long")
        return line

    def reset(self, session):
        session["mail_from"] = None
        session["mail_params"] = []
        session["rcpt_to"] = []

    async def session(self, reader, writer, session):
        ok, _ = await self.scripted(writer, "greeting")
        if not ok:
            return
        while True:
            line = await self.readline(reader)
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                if self.args.no_ehlo:
                    await self.reply(writer, 502)
                    continue
                session["helo"] = arg
                self.reset(session)
                await self.ehlo(writer, session, arg)
            elif verb == "HELO":
                session["helo"] = arg
                self.reset(session)
                await self.reply(writer, 250, "sink")
            elif verb == "STARTTLS" and self.args.starttls and not session["tls"]:
                if reader._buffer:  # noqa: SLF001 - pipelined plaintext is refused
                    await self.reply(writer, 501, "5.5.1 no pipelining into STARTTLS")
                    continue
                await self.reply(writer, 220, "2.0.0 go ahead")
                await writer.start_tls(self.ssl)
                session["tls"] = True
                session["helo"] = None
                self.reset(session)
            elif verb == "AUTH" and self.args.auth:
                await self.auth(reader, writer, session, arg)
            elif verb == "MAIL":
                await self.mail(writer, session, arg)
            elif verb == "RCPT":
                await self.rcpt(writer, session, arg)
            elif verb == "DATA":
                await self.data(reader, writer, session)
            elif verb == "RSET":
                self.reset(session)
                await self.reply(writer, 250)
            elif verb == "NOOP":
                await self.reply(writer, 250)
            elif verb == "QUIT":
                await self.reply(writer, 221, "2.0.0 bye")
                return
            else:
                await self.reply(writer, 502)

    async def ehlo(self, writer, session, arg):
        code = self.script.next("ehlo")
        if code == "hang":
            await asyncio.sleep(3600)
            raise ConnectionError("hang over")
        if code == "close":
            raise ConnectionError("closed on purpose")
        if code != 250:
            await self.reply(writer, code)
            return
        caps = self.capabilities(session)
        await self.reply(writer, 250, caps[-1], lines=["sink greets " + arg] + caps[:-1])

    async def auth(self, reader, writer, session, arg):
        mech, _, initial = arg.partition(" ")
        if mech.upper() != "PLAIN":
            await self.reply(writer, 504, "5.5.4 PLAIN only")
            return
        if not initial:
            await self.reply(writer, 334, "")
            initial = (await self.readline(reader)).strip().decode("ascii", "replace")
        try:
            parts = base64.b64decode(initial, validate=True).split(b"\0")
            user, password = parts[1].decode(), parts[2].decode()
        except Exception:
            await self.reply(writer, 501, "5.5.2 bad base64")
            return
        want_user, _, want_pass = self.args.auth.partition(":")
        if user == want_user and password == want_pass:
            session["auth"] = user
            await self.reply(writer, 235, "2.7.0 authenticated")
        else:
            await self.reply(writer, 535)

    async def mail(self, writer, session, arg):
        if self.args.auth and not session["auth"]:
            await self.reply(writer, 530)
            return
        if session["helo"] is None:
            await self.reply(writer, 503, "5.5.1 EHLO first")
            return
        if not arg.upper().startswith("FROM:<") or ">" not in arg:
            await self.reply(writer, 501, "5.5.4 syntax: MAIL FROM:<address>")
            return
        address, _, params = arg[6:].partition(">")
        params = params.split()
        for p in params:
            if p.upper().startswith("SIZE=") and self.args.size and \
                    int(p[5:] or 0) > self.args.size:
                await self.reply(writer, 552)
                return
        ok, code = await self.scripted(writer, "mail")
        if ok:
            session["mail_from"] = address
            session["mail_params"] = params
        else:
            self.event(stage="mail", code=code, mail_from=address, rcpt_to=[])

    async def rcpt(self, writer, session, arg):
        if session["mail_from"] is None:
            await self.reply(writer, 503, "5.5.1 MAIL first")
            return
        if not arg.upper().startswith("TO:<") or not arg.endswith(">"):
            await self.reply(writer, 501, "5.5.4 syntax: RCPT TO:<address>")
            return
        if len(session["rcpt_to"]) >= RCPT_MAX:
            await self.reply(writer, 452, "4.5.3 too many recipients")
            return
        address = arg[4:-1]
        ok, code = await self.scripted(writer, "rcpt")
        if ok:
            session["rcpt_to"].append(address)
        else:
            self.event(stage="rcpt", code=code, mail_from=session["mail_from"],
                       rcpt_to=[address])

    async def data(self, reader, writer, session):
        if not session["rcpt_to"]:
            await self.reply(writer, 503, "5.5.1 RCPT first")
            return
        ok, code = await self.scripted(writer, "data")
        if not ok:
            self.event(stage="data", code=code, mail_from=session["mail_from"],
                       rcpt_to=session["rcpt_to"])
            self.reset(session)
            return
        chunks, size, too_big = [], 0, False
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
            if line == b".\r\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > self.args.max_size:
                too_big = True
                chunks = []
            elif not too_big:
                chunks.append(line)
        if too_big:
            await self.reply(writer, 552)
            self.event(stage="message", code=552, mail_from=session["mail_from"],
                       rcpt_to=session["rcpt_to"])
            self.reset(session)
            return
        ok, code = await self.scripted(writer, "message")
        self.event(stage="message", code=code, mail_from=session["mail_from"],
                   rcpt_to=session["rcpt_to"])
        if ok:
            self.record(session, b"".join(chunks))
        self.reset(session)


async def main():
    ap = argparse.ArgumentParser(description="SMTP sink for tests (see the module doc)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reply", action="append")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--no-ehlo", action="store_true")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--no-smtputf8", action="store_true")
    ap.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args)
    server = await asyncio.start_server(sink.handle, args.host, args.port, limit=1 << 20,
                                        ssl=sink.ssl if args.implicit_tls else None)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

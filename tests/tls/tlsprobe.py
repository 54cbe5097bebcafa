"""TLS probes for the tls suite: handshakes with pinned versions and
ciphers (python ssl on the system OpenSSL), openssl s_client runs, the
peer certificate's subject, and a permissive reference server on the same
OpenSSL that shows a probe can succeed at all (so that "refused by
wd-server" means something)."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients"))

VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def make_cert(directory, name, kind="rsa"):
    """A self-signed pair CN=name; returns (cert path, key path)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    algo = (["-newkey", "rsa:2048"] if kind == "rsa" else
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    subprocess.run(["openssl", "req", "-x509"] + algo + ["-nodes", "-days", "2", "-subj",
                    "/CN=" + name, "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def client_context(version=None, ciphers=None):
    """A client context that offers only `version` and `ciphers` (TLS 1.2
    names), at security level 0 so that the client does not refuse old
    things itself. Raises ssl.SSLError when the library cannot offer them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[version]
    ctx.set_ciphers((ciphers or "ALL:COMPLEMENTOFALL") + ":@SECLEVEL=0")
    return ctx


def starttls_prelude(sock, proto):
    """Reads the greeting and asks for TLS on a plain connection."""
    f = sock.makefile("rb")
    f.readline()
    if proto == "imap":
        sock.sendall(b"s1 STARTTLS\r\n")
        line = f.readline()
        if not line.startswith(b"s1 OK"):
            raise RuntimeError("STARTTLS refused: %r" % line)
    elif proto == "pop3":
        sock.sendall(b"STLS\r\n")
        line = f.readline()
        if not line.startswith(b"+OK"):
            raise RuntimeError("STLS refused: %r" % line)
    f.detach()


def handshake(port, ctx, starttls=None, timeout=10):
    """(True, version, cipher, subject CN) or (False, error text)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if starttls:
            starttls_prelude(raw, starttls)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        der = s.getpeercert(binary_form=True)
        cn = subject_cn(der) if der else None
        result = (True, s.version(), s.cipher()[0], cn)
        s.close()
        return result
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return (False, str(e))
    finally:
        raw.close()


def subject_cn(der):
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                         capture_output=True, text=True).stdout
    return out.strip().split("CN", 1)[-1].strip(" =")


def s_client(port, *args):
    """openssl s_client: (handshake done?, its output)."""
    res = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-servername", "localhost"] + list(args),
                         input="", capture_output=True, text=True, timeout=30)
    out = res.stdout + res.stderr
    done = res.returncode == 0 and "Cipher is (NONE)" not in out and \
        ("New, TLSv1" in out or "Protocol  :" in out or "Protocol :" in out)
    return done, out


class ReferenceServer:
    """A TLS server that accepts everything the local OpenSSL can do
    (TLS 1.0 up, every cipher, security level 0): a probe that fails here
    cannot be made by this client at all."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1
        self.ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                s = self.ctx.wrap_socket(conn, server_side=True)
                s.close()
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


def sighup(server, want, timeout=10):
    """SIGHUP to a server object with .proc and .log (imapserver.Server,
    apiserver.ApiServer); the log lines since, once one holds `want`, or
    None after `timeout`."""
    mark = len(server.log)
    server.proc.send_signal(signal.SIGHUP)
    end = time.time() + timeout
    while time.time() < end:
        if any(want in line for line in server.log[mark:]):
            return server.log[mark:]
        time.sleep(0.05)
    return None

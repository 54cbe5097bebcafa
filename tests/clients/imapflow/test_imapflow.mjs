// imapflow (the Node IMAP client by WildDuck's author) against wd-server.
//
// Run by test_imapflow.py, which starts wd-server (implicit TLS with a
// self-signed certificate, COMPRESS=DEFLATE enabled) and creates the user:
//
//   node test_imapflow.mjs PORT USER PASSWORD
//
// imapflow is loaded from WD_IMAPFLOW_MODULES (a node_modules folder). Every
// section below is one test; every assertion inside it prints one line
// ("  ok   what" or "  FAIL what"), a section prints "ok"/"FAIL" with its time,
// and the exit code is 1 when anything failed. WD_IMAPFLOW_VERBOSE=1 prints
// every client's protocol log. Each section creates the mailboxes it works
// on, except the last, which lists and searches what the others left.
//
// What is proved here, and how:
// - COMPRESS=DEFLATE in use: imapflow's own log shows the COMPRESS command
//   answered OK, and the bytes read from the TLS socket for a 1 MiB text
//   message are a small fraction of the bytes imapflow's parser received,
//   while the same fetch on a connection with compression disabled reads at
//   least the message size from the socket (the control for the method).
// - APPEND: APPENDUID uid/uidValidity against STATUS and SELECT, flags,
//   internal dates and sizes of five appends.
// - CONDSTORE/QRESYNC: HIGHESTMODSEQ on SELECT, STORE raising MODSEQ,
//   FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, SELECT (QRESYNC
//   ...) reporting VANISHED (EARLIER) and changed flags as imapflow events,
//   UID FETCH (CHANGEDSINCE VANISHED) on a stale and on a fresh session, and
//   QRESYNC with a wrong UIDVALIDITY reporting nothing.
// - IDLE: two idlers (QRESYNC and plain) receive exists, flags and expunge
//   events caused by another connection, each within a timeout.
// - MOVE/COPY: COPYUID's uidMap, the messages fetched in the target mailbox
//   byte-identical with their flags, gone from the source after MOVE.
// - a 5 MiB message with a 3.75 MiB binary attachment: BODY[] byte-identical,
//   download() of the whole message and of the attachment part (decoded),
//   BINARY[2], BODYSTRUCTURE, HEADER.FIELDS, TEXT, 2.MIME, 1 and partial
//   windows.
// - LIST special-use, LIST-STATUS, STATUS, SEARCH by flags, keyword, header,
//   subject, body, date, size, UID, OR and NOT; ESEARCH RETURN; GETQUOTA;
//   CREATE/RENAME/DELETE; a UTF-8 mailbox name seen by a session without
//   UTF8=ACCEPT (modified UTF-7), RFC 2047 ENVELOPE decoding and SEARCH
//   CHARSET UTF-8.

import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import path from 'node:path';

const [port, user, pass] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const modules = process.env.WD_IMAPFLOW_MODULES;
if (!port || !user || !pass || !modules) {
    console.error('usage: WD_IMAPFLOW_MODULES=<node_modules> node test_imapflow.mjs PORT USER PASSWORD');
    process.exit(2);
}
const require = createRequire(path.join(modules, 'noop.js'));
const { ImapFlow } = require('imapflow');
console.log(`imapflow ${require('imapflow/package.json').version}, node ${process.version}`);

const SECTION_TIMEOUT_MS = 30000;
const EVENT_TIMEOUT_MS = 10000;

/* ---------- assertions and sections ---------- */

let failedSections = [];
let passedSections = 0;
let checks = 0;

class CheckFailed extends Error {}

function check(cond, what, detail) {
    checks++;
    if (cond) {
        console.log(`  ok   ${what}`);
        return;
    }
    console.log(`  FAIL ${what}${detail !== undefined ? ': ' + show(detail) : ''}`);
    throw new CheckFailed(what);
}

function eq(got, want, what) {
    check(got === want, `${what} (${show(want)})`, { got, want });
}

function show(v) {
    return JSON.stringify(v, (k, x) => {
        if (typeof x === 'bigint') return x.toString() + 'n';
        if (x instanceof Set) return [...x];
        if (x instanceof Map) return [...x.entries()];
        if (x && x.type === 'Buffer' && Array.isArray(x.data)) return `<Buffer ${x.data.length} bytes>`;
        return x;
    });
}

// every client made by a section is logged out at its end, and its log is
// printed when the section fails
let sectionClients = [];

async function section(name, fn, timeoutMs = SECTION_TIMEOUT_MS) {
    const t0 = Date.now();
    console.log(`${name}:`);
    sectionClients = [];
    let timer;
    try {
        await Promise.race([
            fn(),
            new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
            })
        ]);
        passedSections++;
        console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (err) {
        failedSections.push(name);
        if (!(err instanceof CheckFailed)) console.log(`  FAIL ${err.stack || err}`);
        for (const c of sectionClients) {
            console.log(`  --- last log lines of ${c.name}:`);
            for (const line of c.logLines.slice(-25)) console.log('  | ' + line);
        }
        console.log(`FAIL ${name} (${Date.now() - t0} ms)`);
    } finally {
        clearTimeout(timer);
        if (process.env.WD_IMAPFLOW_VERBOSE) {
            for (const c of sectionClients) {
                console.log(`  --- log of ${c.name}:`);
                for (const line of c.logLines) console.log('  | ' + line);
            }
        }
        for (const c of sectionClients) {
            try {
                if (c.usable) await c.logout();
                else c.close();
            } catch (err) {
                /* already gone */
            }
        }
    }
}

/* ---------- clients ---------- */

// A logger that keeps imapflow's entries (commands and responses at debug
// level) so tests can prove what was negotiated and failures can show them.
function captureLogger(lines, watchers) {
    const keep = (level) => (obj) => {
        const text = typeof obj === 'string' ? obj : [obj.src, obj.msg, obj.comment].filter(Boolean).join(' ');
        lines.push(`${level} ${text}`);
        if (lines.length > 400) lines.shift();
        for (const w of [...watchers]) w(text);
    };
    return { trace: () => {}, debug: keep('debug'), info: keep('info'), warn: keep('warn'),
             error: keep('error'), fatal: keep('fatal') };
}

async function connect(name, options = {}) {
    const lines = [];
    const watchers = new Set();
    const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure: true,
        tls: { rejectUnauthorized: false },
        auth: { user, pass },
        qresync: true,
        logger: captureLogger(lines, watchers),
        connectionTimeout: 10000,
        greetingTimeout: 10000,
        ...options
    });
    client.name = name;
    client.logLines = lines;
    // resolves when a log entry matches re (e.g. the server's "+" to IDLE)
    client.waitLog = (re, ms = EVENT_TIMEOUT_MS) => new Promise((resolve, reject) => {
        if (lines.some((l) => re.test(l))) return resolve();
        const timer = setTimeout(() => {
            watchers.delete(w);
            reject(new Error(`${name}: no log entry ${re} within ${ms} ms`));
        }, ms);
        const w = (text) => {
            if (re.test(text)) {
                clearTimeout(timer);
                watchers.delete(w);
                resolve();
            }
        };
        watchers.add(w);
    });
    client.on('error', (err) => lines.push(`error event ${err.message}`));
    sectionClients.push(client);
    await client.connect();
    return client;
}

// Collects events of one kind; next(pred) resolves with the first event
// (seen already or later) that matches, or rejects after a timeout.
function collect(client, event) {
    const seen = [];
    const waiters = [];
    client.on(event, (data) => {
        seen.push(data);
        for (const w of [...waiters]) {
            if (w.pred(data)) {
                waiters.splice(waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                w.resolve(data);
            }
        }
    });
    return {
        seen,
        next(pred, ms = EVENT_TIMEOUT_MS) {
            const found = seen.find(pred);
            if (found) return Promise.resolve(found);
            return new Promise((resolve, reject) => {
                const w = { pred, resolve };
                w.timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`${client.name}: no matching '${event}' event within ${ms} ms; got ${show(seen)}`));
                }, ms);
                waiters.push(w);
            });
        }
    };
}

/* ---------- messages ---------- */

function textMessage(n, extra = {}) {
    const headers = [
        `From: Sender ${n} <sender${n}@example.com>`,
        `To: ${user}@example.com`,
        `Subject: ${extra.subject || 'imapflow message ' + n}`,
        `Message-ID: <imapflow-${n}-${crypto.randomBytes(4).toString('hex')}@example.com>`,
        `Date: Mon, 2 Mar 2026 10:${String(n % 60).padStart(2, '0')}:00 +0000`,
        `X-Test-Id: imapflow-${n}`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit'
    ];
    const body = extra.body || `body of message ${n}\r\n\u00e4\u00f6\u00fc line two\r\n`;
    return Buffer.from(headers.join('\r\n') + '\r\n\r\n' + body, 'utf8');
}

function bigMessage(attachment) {
    const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');
    return Buffer.from([
        'From: Big Sender <big@example.com>',
        `To: ${user}@example.com`,
        'Subject: five megabytes',
        'Message-ID: <imapflow-big@example.com>',
        'Date: Tue, 3 Mar 2026 09:00:00 +0000',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="imapflow-boundary-42"',
        '',
        'This is a multi-part message in MIME format.',
        '--imapflow-boundary-42',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 7bit',
        '',
        'The attachment is random bytes.',
        '--imapflow-boundary-42',
        'Content-Type: application/octet-stream; name="random.bin"',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="random.bin"',
        '',
        b64,
        '--imapflow-boundary-42--',
        ''
    ].join('\r\n'), 'latin1');
}

async function readStream(stream) {
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return Buffer.concat(chunks);
}

async function fetchAll(client, range, query, options) {
    const out = [];
    for await (const msg of client.fetch(range, query, options)) out.push(msg);
    return out;
}

const uidsOf = (msgs) => msgs.map((m) => m.uid).sort((a, b) => a - b);

/* ---------- sections ---------- */

await section('connect over implicit TLS, login, COMPRESS=DEFLATE in use', async () => {
    const c = await connect('compressed');
    check(c.secureConnection === true, 'the connection is TLS from the start (secure)');
    check(c.tls && /^TLSv1\.[23]$/.test(c.tls.version || ''), `${c.tls && c.tls.version} negotiated`, c.tls);
    check(!!c.authenticated, 'logged in', c.authenticated);
    check(c.capabilities.has('COMPRESS=DEFLATE'), 'COMPRESS=DEFLATE advertised after login');
    check(c.logLines.some((l) => /^debug c \S+ COMPRESS DEFLATE/.test(l)), 'imapflow sent COMPRESS DEFLATE');
    check(c.logLines.some((l) => /^debug s \S+ OK/.test(l) && /DEFLATE/i.test(l)),
          'the server answered COMPRESS with OK', c.logLines.filter((l) => /COMPRESS|DEFLATE/i.test(l)));
    check(c.enabled.has('CONDSTORE') && c.enabled.has('QRESYNC'), 'ENABLE CONDSTORE QRESYNC accepted', c.enabled);

    // 1 MiB of text: deflate shrinks it many times on the wire
    const body = 'a line of very compressible text for the deflate check\r\n'.repeat(19000);
    const raw = textMessage(1000, { subject: 'compressible', body });
    const appended = await c.append('INBOX', raw);
    check(appended && appended.uid > 0, 'compressible message appended', appended);
    await c.mailboxOpen('INBOX');

    const wire0 = c.socket.bytesRead;
    const parsed0 = c.stats().received;
    const msg = await c.fetchOne(appended.uid, { source: true }, { uid: true });
    const wire = c.socket.bytesRead - wire0;
    const parsed = c.stats().received - parsed0;
    check(msg.source.equals(raw), `BODY[] of ${raw.length} bytes identical`);
    console.log(`  info ${parsed} bytes inflated from ${wire} bytes read on the TLS socket`);
    check(parsed >= raw.length, 'the parser received at least the message size', parsed);
    check(wire * 10 < raw.length, 'the socket carried less than a tenth of it (deflate in use)', { wire, size: raw.length });

    // control: without COMPRESS the socket carries the whole message
    const plain = await connect('uncompressed', { disableCompression: true });
    check(!plain.logLines.some((l) => /^debug c \S+ COMPRESS/.test(l)), 'control connection did not send COMPRESS');
    await plain.mailboxOpen('INBOX');
    const p0 = plain.socket.bytesRead;
    const pmsg = await plain.fetchOne(appended.uid, { source: true }, { uid: true });
    const pwire = plain.socket.bytesRead - p0;
    check(pmsg.source.equals(raw), 'control connection: BODY[] identical');
    check(pwire >= raw.length, 'control connection: the socket carried the whole message', { pwire, size: raw.length });
    check(await c.messageDelete(String(appended.uid), { uid: true }), 'compressible message deleted');
});

await section('APPEND: APPENDUID against STATUS and SELECT, several appends', async () => {
    const c = await connect('append');
    check(await c.mailboxCreate('Appends').then((r) => r && r.created), 'CREATE Appends');
    const dates = [0, 1, 2, 3, 4].map((i) => new Date(Date.UTC(2025, 0, 10 + i, 8, 30, 15)));
    const flags = [[], ['\\Seen'], ['\\Flagged', '$Work'], ['\\Seen', '\\Answered'], ['\\Draft']];
    const raws = [0, 1, 2, 3, 4].map((i) => textMessage(i + 1));
    const res = [];
    for (let i = 0; i < 5; i++) res.push(await c.append('Appends', raws[i], flags[i], dates[i]));
    check(res.every((r) => r && r.destination === 'Appends'), 'five APPENDs succeeded', res);
    const uids = res.map((r) => r.uid);
    check(uids.every((u, i) => u === uids[0] + i) && uids[0] === 1, 'APPENDUID uids are 1..5', uids);
    const validity = res[0].uidValidity;
    check(typeof validity === 'bigint' && validity > 0n && res.every((r) => r.uidValidity === validity),
          'one APPENDUID uidValidity for all', res.map((r) => r.uidValidity));

    const st = await c.status('Appends', { messages: true, uidNext: true, uidValidity: true, unseen: true, highestModseq: true });
    eq(st.messages, 5, 'STATUS MESSAGES');
    eq(st.uidNext, 6, 'STATUS UIDNEXT');
    eq(st.uidValidity, validity, 'STATUS UIDVALIDITY equals APPENDUID');
    eq(st.unseen, 3, 'STATUS UNSEEN');
    check(typeof st.highestModseq === 'bigint' && st.highestModseq > 0n, 'STATUS HIGHESTMODSEQ', st);

    const box = await c.mailboxOpen('Appends');
    eq(box.uidValidity, validity, 'SELECT UIDVALIDITY equals APPENDUID');
    eq(box.exists, 5, 'SELECT EXISTS');
    eq(box.uidNext, 6, 'SELECT UIDNEXT');
    check(box.permanentFlags && box.permanentFlags.has('\\*'), 'PERMANENTFLAGS allows keywords', box.permanentFlags);

    const msgs = await fetchAll(c, '1:*', { uid: true, flags: true, internalDate: true, size: true, envelope: true, source: true });
    eq(msgs.length, 5, 'FETCH 1:* returns five messages');
    for (let i = 0; i < 5; i++) {
        const m = msgs[i];
        eq(m.uid, uids[i], `message ${i + 1} UID`);
        // \Recent: this is the first session to see the new messages
        check([...m.flags].sort().join(' ') === [...flags[i], '\\Recent'].sort().join(' '),
              `message ${i + 1} FLAGS ${show(flags[i])} and \\Recent`, m.flags);
        eq(m.internalDate.getTime(), dates[i].getTime(), `message ${i + 1} INTERNALDATE`);
        eq(m.size, raws[i].length, `message ${i + 1} RFC822.SIZE`);
        check(m.source.equals(raws[i]), `message ${i + 1} BODY[] byte-identical`);
        eq(m.envelope.subject, `imapflow message ${i + 1}`, `message ${i + 1} ENVELOPE subject`);
    }
    // APPEND into the selected mailbox: the new message shows up on NOOP
    const sixth = await c.append('Appends', textMessage(6));
    eq(sixth.uid, 6, 'APPEND into the selected mailbox: UID 6');
    await c.noop();
    eq(c.mailbox.exists, 6, 'the selected mailbox has six messages after NOOP');
});

// CONDSTORE (RFC 7162 §3.1) and QRESYNC (§3.2)
await section('CONDSTORE and QRESYNC', async () => {
    const c = await connect('qresync');
    await c.mailboxCreate('Sync');
    for (let i = 1; i <= 5; i++) await c.append('Sync', textMessage(100 + i));
    const box = await c.mailboxOpen('Sync');
    const hm0 = box.highestModseq;
    check(typeof hm0 === 'bigint' && hm0 > 0n, 'SELECT reports HIGHESTMODSEQ', box);

    const before = await fetchAll(c, '1:*', { uid: true, flags: true }, { uid: true });
    check(before.every((m) => typeof m.modseq === 'bigint' && m.modseq > 0n && m.modseq <= hm0),
          'FETCH MODSEQ of every message within HIGHESTMODSEQ', before.map((m) => m.modseq));

    check(await c.messageFlagsAdd('1', ['\\Flagged'], { uid: true }), 'STORE +FLAGS \\Flagged on UID 1');
    const m1 = await c.fetchOne('1', { uid: true, flags: true }, { uid: true });
    check(m1.flags.has('\\Flagged'), 'UID 1 is \\Flagged', m1.flags);
    check(m1.modseq > hm0, 'the change raised UID 1 MODSEQ above the old HIGHESTMODSEQ', { modseq: m1.modseq, hm0 });
    check(await c.messageFlagsAdd('2', ['\\Seen'], { uid: true }), 'STORE +FLAGS \\Seen on UID 2');
    const m2 = await c.fetchOne('2', { uid: true, flags: true }, { uid: true });
    check(m2.modseq > m1.modseq, 'a second change gets a higher MODSEQ', { m1: m1.modseq, m2: m2.modseq });

    const st = await c.status('Sync', { highestModseq: true });
    eq(st.highestModseq, m2.modseq, 'STATUS HIGHESTMODSEQ equals the last change');

    const changed = await fetchAll(c, '1:*', { uid: true, flags: true }, { uid: true, changedSince: hm0 });
    check(show(uidsOf(changed)) === '[1,2]', 'FETCH (CHANGEDSINCE old) returns exactly UIDs 1 and 2', uidsOf(changed));
    const none = await fetchAll(c, '1:*', { uid: true, flags: true }, { uid: true, changedSince: m2.modseq });
    eq(none.length, 0, 'FETCH (CHANGEDSINCE newest) returns nothing');

    // UNCHANGEDSINCE older than the message's MODSEQ: the store is refused
    await c.messageFlagsAdd('2', ['\\Answered'], { uid: true, unchangedSince: m1.modseq });
    const m2b = await c.fetchOne('2', { uid: true, flags: true }, { uid: true });
    check(!m2b.flags.has('\\Answered') && m2b.modseq === m2.modseq,
          'STORE (UNCHANGEDSINCE older) left UID 2 unchanged', { flags: m2b.flags, modseq: m2b.modseq });
    await c.messageFlagsAdd('3', ['\\Answered'], { uid: true, unchangedSince: m2.modseq });
    const m3 = await c.fetchOne('3', { uid: true, flags: true }, { uid: true });
    check(m3.flags.has('\\Answered'), 'STORE (UNCHANGEDSINCE current) applied on UID 3', m3.flags);

    // remember the state, let another session change things, resync with QRESYNC
    await c.noop();
    const known = { modseq: c.mailbox.highestModseq, validity: c.mailbox.uidValidity };
    await c.mailboxClose();

    const other = await connect('qresync-other');
    await other.mailboxOpen('Sync');
    check(await other.messageFlagsAdd('4', ['\\Seen', '$Done'], { uid: true }), 'other session: STORE +FLAGS on UID 4');
    check(await other.messageDelete('5', { uid: true }), 'other session: UID 5 deleted and expunged');
    check(await other.messageFlagsRemove('1', ['\\Flagged'], { uid: true }), 'other session: STORE -FLAGS on UID 1');
    await other.logout();

    const expunges = collect(c, 'expunge');
    const flagsEv = collect(c, 'flags');
    const reopened = await c.mailboxOpen('Sync', { changedSince: known.modseq, uidValidity: known.validity });
    eq(reopened.exists, 4, 'SELECT (QRESYNC) EXISTS');
    check(reopened.highestModseq > known.modseq, 'HIGHESTMODSEQ grew', { was: known.modseq, now: reopened.highestModseq });
    const gone = expunges.seen;
    check(gone.length === 1 && gone[0].uid === 5 && gone[0].vanished && gone[0].earlier,
          'VANISHED (EARLIER) 5 reported as an expunge event', gone);
    const byUid = new Map(flagsEv.seen.map((f) => [f.uid, f]));
    check(byUid.has(4) && byUid.get(4).flags.has('\\Seen') && byUid.get(4).flags.has('$Done'),
          'UID 4 new flags reported as a flags event', flagsEv.seen);
    check(byUid.has(1) && !byUid.get(1).flags.has('\\Flagged'), 'UID 1 removed flag reported', flagsEv.seen);
    check(!byUid.has(2) && !byUid.has(3) && !byUid.has(5), 'unchanged and expunged UIDs not reported as flags', [...byUid.keys()]);
    check(flagsEv.seen.every((f) => f.modseq > known.modseq), 'every reported change has MODSEQ above the known one', flagsEv.seen);
    const sm = await c.search({ modseq: known.modseq + 1n }, { uid: true });
    check(show(sm) === '[1,4]', 'SEARCH MODSEQ above the known one -> UIDs 1 and 4', sm);

    // FETCH (CHANGEDSINCE m VANISHED) on the selected mailbox after another
    // session flagged UID 2 and expunged UID 3
    const h1 = c.mailbox.highestModseq;
    const other2 = await connect('qresync-other2');
    await other2.mailboxOpen('Sync');
    check(await other2.messageFlagsAdd('2', ['$Later'], { uid: true }), 'other session: STORE +FLAGS $Later on UID 2');
    check(await other2.messageDelete('3', { uid: true }), 'other session: UID 3 expunged');
    await other2.logout();
    const expunges2 = collect(c, 'expunge');
    const fetched = await fetchAll(c, '1:*', { uid: true, flags: true }, { uid: true, changedSince: h1 });
    // UID FETCH ... VANISHED syncs the session first, so the flag change may
    // also arrive as an unsolicited FETCH before the command's own: imapflow
    // lists both; they must agree
    check(show([...new Set(uidsOf(fetched))]) === '[2]' && fetched.every((f) => f.flags.has('$Later')),
          'UID FETCH (CHANGEDSINCE VANISHED) returns UID 2 with $Later', fetched);
    // RFC 7162 §3.2.6: the UID FETCH itself reports UID 3 as vanished
    // (wd-server syncs the session first: "VANISHED 3" from the sync, then
    // the command's "VANISHED (EARLIER)", which may name it again)
    const seen2 = expunges2.seen.length;
    check(seen2 >= 1 && expunges2.seen.every((e) => e.uid === 3 && e.vanished),
          'UID 3 reported as VANISHED by the UID FETCH of a stale session', expunges2.seen);
    await c.noop();
    eq(expunges2.seen.length, seen2, 'the next NOOP reports nothing again');
    eq(c.mailbox.exists, 3, 'three messages left');
    // a fresh session: SELECT, then UID FETCH (CHANGEDSINCE VANISHED) (RFC 7162 §3.2.6)
    const fresh = await connect('qresync-fresh');
    await fresh.mailboxOpen('Sync');
    const expunges4 = collect(fresh, 'expunge');
    const fetched4 = await fetchAll(fresh, '1:*', { uid: true, flags: true }, { uid: true, changedSince: h1 });
    check(show(uidsOf(fetched4)) === '[2]', 'fresh session: UID FETCH (CHANGEDSINCE VANISHED) returns UID 2', fetched4);
    const gone4 = expunges4.seen.map((e) => e.uid).sort((x, y) => x - y);
    check(gone4.includes(3) && gone4.every((u) => u === 3 || u === 5) && expunges4.seen.every((e) => e.vanished && e.earlier),
          'fresh session: VANISHED (EARLIER) names UID 3 (and at most the older 5)', expunges4.seen);
    eq(fresh.mailbox.exists, 3, 'fresh session: VANISHED (EARLIER) did not change EXISTS');

    // QRESYNC with a UIDVALIDITY that does not match: a plain SELECT (RFC 7162 §3.2.5.1)
    const h2 = (await c.status('Sync', { highestModseq: true })).highestModseq;
    await c.mailboxClose();
    const expunges3 = collect(c, 'expunge');
    const flags3 = collect(c, 'flags');
    const plainOpen = await c.mailboxOpen('Sync', { changedSince: 1n, uidValidity: known.validity + 1n });
    eq(plainOpen.exists, 3, 'SELECT (QRESYNC wrong UIDVALIDITY) EXISTS');
    eq(plainOpen.highestModseq, h2, 'SELECT (QRESYNC wrong UIDVALIDITY) HIGHESTMODSEQ unchanged');
    check(expunges3.seen.length === 0 && flags3.seen.length === 0, 'no VANISHED and no FETCH for a wrong UIDVALIDITY',
          { expunges: expunges3.seen, flags: flags3.seen });
});

await section('IDLE: exists, flags and expunge events from another session', async () => {
    // one idler with QRESYNC (expunges come as VANISHED uid), one without (EXPUNGE seq)
    const idlerQ = await connect('idler-qresync');
    const idlerP = await connect('idler-plain', { qresync: false });
    check(!idlerP.enabled.has('QRESYNC'), 'the plain idler did not enable QRESYNC', idlerP.enabled);
    const boxQ = await idlerQ.mailboxOpen('INBOX');
    await idlerP.mailboxOpen('INBOX');
    const start = boxQ.exists;
    const startModseq = boxQ.highestModseq; // imapflow updates boxQ in place
    const evQ = { exists: collect(idlerQ, 'exists'), flags: collect(idlerQ, 'flags'), expunge: collect(idlerQ, 'expunge') };
    const evP = { exists: collect(idlerP, 'exists'), flags: collect(idlerP, 'flags'), expunge: collect(idlerP, 'expunge') };
    const idlingQ = idlerQ.idle();
    const idlingP = idlerP.idle();
    await idlerQ.waitLog(/Initiated IDLE/);
    await idlerP.waitLog(/Initiated IDLE/);
    check(idlerQ.idling && idlerP.idling, 'both idlers are in IDLE (server sent +)');

    const writer = await connect('writer');
    let t0 = Date.now();
    const app = await writer.append('INBOX', textMessage(200, { subject: 'idle wakeup' }));
    check(app && app.uid > 0, 'writer: APPEND to INBOX', app);
    const ex = await evQ.exists.next((e) => e.count === start + 1);
    console.log(`  info exists after ${Date.now() - t0} ms`);
    check(ex.prevCount === start, 'idler (QRESYNC): exists event count+1', ex);
    check(!!(await evP.exists.next((e) => e.count === start + 1)), 'idler (plain): exists event count+1');

    await writer.mailboxOpen('INBOX');
    t0 = Date.now();
    check(await writer.messageFlagsAdd(String(app.uid), ['\\Flagged', '$Idle'], { uid: true }), 'writer: STORE +FLAGS');
    const fl = await evQ.flags.next((e) => e.flags.has('\\Flagged'));
    console.log(`  info flags after ${Date.now() - t0} ms`);
    check(fl.uid === app.uid && fl.seq === start + 1 && fl.flags.has('$Idle'), 'idler (QRESYNC): flags event for the message', fl);
    check(typeof fl.modseq === 'bigint' && fl.modseq > startModseq, 'idler (QRESYNC): flags event carries the new MODSEQ', fl);
    const flp = await evP.flags.next((e) => e.flags.has('\\Flagged'));
    check(flp.seq === start + 1, 'idler (plain): flags event for the message', flp);

    t0 = Date.now();
    check(await writer.messageDelete(String(app.uid), { uid: true }), 'writer: UID EXPUNGE of the message');
    const exq = await evQ.expunge.next(() => true);
    console.log(`  info expunge after ${Date.now() - t0} ms`);
    check(exq.vanished === true && exq.uid === app.uid && !exq.earlier, 'idler (QRESYNC): VANISHED uid', exq);
    const exp = await evP.expunge.next(() => true);
    check(exp.vanished === false && exp.seq === start + 1, 'idler (plain): EXPUNGE seq', exp);

    // leaving IDLE: the next command ends it and the session is consistent
    const stillQ = await idlerQ.status('INBOX', { messages: true });
    eq(stillQ.messages, start, 'idler (QRESYNC): STATUS after IDLE');
    eq(idlerQ.mailbox.exists, start, 'idler (QRESYNC): mailbox count back to the start');
    eq(idlerP.mailbox.exists, start, 'idler (plain): mailbox count back to the start');
    await Promise.race([Promise.all([idlingQ, idlerP.noop(), idlingP]),
                        new Promise((_, rj) => setTimeout(() => rj(new Error('IDLE did not end')), EVENT_TIMEOUT_MS))]);
    check(!idlerQ.idling && !idlerP.idling, 'DONE ended IDLE on both');
});

await section('MOVE and COPY with COPYUID uidMap', async () => {
    const c = await connect('move');
    await c.mailboxCreate('MoveSrc');
    // as in WildDuck, CREATE does not make missing parents (RFC 3501 §6.3.3: SHOULD)
    await c.mailboxCreate('Archive');
    await c.mailboxCreate(['Archive', '2026']);
    const raws = [1, 2, 3, 4].map((i) => textMessage(300 + i));
    for (let i = 0; i < 4; i++) await c.append('MoveSrc', raws[i], i === 0 ? ['\\Flagged'] : ['\\Seen']);
    // a message already in the target so its UIDs differ from the source's
    await c.append('Archive/2026', textMessage(399));
    await c.mailboxOpen('MoveSrc');

    const moved = await c.messageMove('1:2', 'Archive/2026', { uid: true });
    check(moved && moved.uidMap instanceof Map && moved.uidMap.size === 2, 'MOVE returned a uidMap of two', moved);
    eq(moved.destination, 'Archive/2026', 'MOVE destination');
    check(show([...moved.uidMap.entries()]) === '[[1,2],[2,3]]', 'COPYUID maps 1->2, 2->3', moved.uidMap);
    const target = await c.status('Archive/2026', { uidValidity: true, messages: true });
    eq(moved.uidValidity, target.uidValidity, 'COPYUID uidValidity equals the target STATUS');
    eq(target.messages, 3, 'target has three messages');
    const left = await c.search({ all: true }, { uid: true });
    check(show(left) === '[3,4]', 'the source keeps only UIDs 3 and 4', left);
    eq(c.mailbox.exists, 2, 'the source reports two messages');

    const copied = await c.messageCopy('3:4', 'Archive/2026', { uid: true });
    check(copied && show([...copied.uidMap.entries()]) === '[[3,4],[4,5]]', 'COPY uidMap 3->4, 4->5', copied && copied.uidMap);
    eq((await c.search({ all: true }, { uid: true })).length, 2, 'COPY left the source as it was');

    await c.mailboxOpen('Archive/2026');
    const map = new Map([...moved.uidMap.entries(), ...copied.uidMap.entries()]);
    const got = await fetchAll(c, [...map.values()].join(','), { uid: true, flags: true, source: true }, { uid: true });
    eq(got.length, 4, 'the four mapped UIDs exist in the target');
    const gotByUid = new Map(got.map((m) => [m.uid, m]));
    for (const [src, dst] of map) {
        const m = gotByUid.get(dst);
        check(m && m.source.equals(raws[src - 1]), `target UID ${dst} is source UID ${src}, byte-identical`);
        const wantFlag = src === 1 ? '\\Flagged' : '\\Seen';
        check(m && m.flags.has(wantFlag), `target UID ${dst} kept ${wantFlag}`, m && m.flags);
    }
});

await section('5 MiB message with a binary attachment: source, download(), BINARY', async () => {
    const c = await connect('big');
    const attachment = crypto.randomBytes(Math.floor(3.75 * 1024 * 1024));
    const raw = bigMessage(attachment);
    console.log(`  info message ${raw.length} bytes, attachment ${attachment.length} bytes`);
    check(raw.length > 5 * 1024 * 1024, 'the message is over 5 MiB');
    await c.mailboxCreate('Big');
    let t0 = Date.now();
    const app = await c.append('Big', raw);
    console.log(`  info APPEND took ${Date.now() - t0} ms`);
    check(app && app.uid === 1, 'APPEND of the big message', app);
    await c.mailboxOpen('Big');

    t0 = Date.now();
    const msg = await c.fetchOne('1', { uid: true, size: true, source: true, bodyStructure: true }, { uid: true });
    console.log(`  info FETCH BODY[] took ${Date.now() - t0} ms`);
    eq(msg.size, raw.length, 'RFC822.SIZE');
    check(msg.source.length === raw.length && msg.source.equals(raw), 'BODY[] byte-identical', { got: msg.source.length, want: raw.length });

    const bs = msg.bodyStructure;
    eq(bs.type, 'multipart/mixed', 'BODYSTRUCTURE type');
    const part = bs.childNodes && bs.childNodes[1];
    check(part && part.part === '2' && part.type === 'application/octet-stream' && part.encoding === 'base64',
          'BODYSTRUCTURE part 2 is the base64 attachment', part);
    check(part.parameters && part.parameters.name === 'random.bin', 'part 2 name parameter', part && part.parameters);
    check(part.dispositionParameters && part.dispositionParameters.filename === 'random.bin', 'part 2 disposition filename', part);

    t0 = Date.now();
    const dl = await c.download('1', '2', { uid: true });
    const bytes = await readStream(dl.content);
    console.log(`  info download() of part 2 took ${Date.now() - t0} ms`);
    eq(dl.meta.contentType, 'application/octet-stream', 'download() meta contentType');
    eq(dl.meta.filename, 'random.bin', 'download() meta filename');
    check(bytes.equals(attachment), 'download() of part 2 decodes to the original bytes', { got: bytes.length, want: attachment.length });

    // the whole message in 1 MiB windows (imapflow's default of 64 KiB is used for part 2 above)
    const full = await readStream((await c.download('1', undefined, { uid: true, chunkSize: 1024 * 1024 })).content);
    check(full.equals(raw), 'download() of the whole message (1 MiB windows) byte-identical', { got: full.length, want: raw.length });
    const text = await readStream((await c.download('1', '1', { uid: true })).content);
    eq(text.toString('utf8'), 'The attachment is random bytes.', 'download() of part 1');

    // BINARY[2] (RFC 3516): the server decodes the base64 itself
    t0 = Date.now();
    const bin = await c.fetchOne('1', { uid: true, bodyParts: ['2'] }, { uid: true, binary: true });
    console.log(`  info FETCH BINARY[2] took ${Date.now() - t0} ms`);
    const binPart = bin.bodyParts && bin.bodyParts.get('2');
    check(binPart && binPart.equals(attachment), 'BINARY[2] equals the original bytes', binPart && binPart.length);
    // sections: HEADER.FIELDS, TEXT, a part's MIME header and body, a window of TEXT
    const sec = await c.fetchOne('1', {
        uid: true,
        headers: ['subject', 'message-id'],
        bodyParts: ['TEXT', '2.MIME', '1']
    }, { uid: true });
    eq(sec.headers && sec.headers.toString('latin1'),
       'Subject: five megabytes\r\nMessage-ID: <imapflow-big@example.com>\r\n\r\n', 'BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]');
    const bodyStart = raw.indexOf('\r\n\r\n') + 4;
    const textPart = sec.bodyParts && sec.bodyParts.get('text');
    check(textPart && textPart.equals(raw.subarray(bodyStart)), 'BODY[TEXT] is everything after the header', textPart && textPart.length);
    eq(sec.bodyParts.get('2.mime') && sec.bodyParts.get('2.mime').toString('latin1'),
       'Content-Type: application/octet-stream; name="random.bin"\r\nContent-Transfer-Encoding: base64\r\n' +
       'Content-Disposition: attachment; filename="random.bin"\r\n\r\n', 'BODY[2.MIME]');
    eq(sec.bodyParts.get('1') && sec.bodyParts.get('1').toString('latin1'), 'The attachment is random bytes.', 'BODY[1]');
    const win = await c.fetchOne('1', { uid: true, bodyParts: [{ key: 'TEXT', start: 100, maxLength: 200 }] }, { uid: true });
    const winPart = win.bodyParts && [...win.bodyParts.values()][0];
    check(winPart && winPart.equals(raw.subarray(bodyStart + 100, bodyStart + 300)), 'BODY[TEXT]<100.200>',
          win.bodyParts && [...win.bodyParts.keys()]);
    const partial = await c.fetchOne('1', { uid: true, source: { start: 1000, maxLength: 5000 } }, { uid: true });
    check(partial.source.equals(raw.subarray(1000, 6000)), 'BODY[]<1000.5000> is the right slice', partial.source.length);
}, 3 * SECTION_TIMEOUT_MS); // download() is ~90 partial FETCHes: slow under the sanitizers

await section('LIST special-use, STATUS, SEARCH, QUOTA, mailbox management', async () => {
    const c = await connect('misc');
    const list = await c.list({ statusQuery: { messages: true, unseen: true, uidNext: true } });
    const byPath = new Map(list.map((m) => [m.path, m]));
    const want = { INBOX: '\\Inbox', 'Sent Mail': '\\Sent', Drafts: '\\Drafts', Junk: '\\Junk', Trash: '\\Trash' };
    for (const [p, use] of Object.entries(want)) {
        check(byPath.has(p) && byPath.get(p).specialUse === use, `LIST: ${p} is ${use}`, byPath.get(p));
    }
    check(byPath.has('Archive') && byPath.has('Archive/2026') && byPath.get('Archive/2026').parentPath === 'Archive',
          'LIST: Archive/2026 under Archive', [...byPath.keys()]);
    check(byPath.get('Archive').flags.has('\\HasChildren'), 'LIST: Archive \\HasChildren', byPath.get('Archive').flags);
    const ap = byPath.get('Appends');
    check(ap && ap.status && ap.status.messages === 6 && ap.status.unseen === 4 && ap.status.uidNext === 7,
          'LIST-STATUS of Appends: 6 messages, 4 unseen, UIDNEXT 7', ap && ap.status);
    const tree = await c.listTree();
    check(tree.folders.some((f) => f.path === 'Archive' && f.folders.some((g) => g.path === 'Archive/2026')),
          'listTree nests Archive/2026');

    const st = await c.status('Appends', { messages: true, recent: true, unseen: true, uidNext: true, uidValidity: true });
    eq(st.messages, 6, 'STATUS Appends MESSAGES');
    eq(st.unseen, 4, 'STATUS Appends UNSEEN');

    await c.mailboxOpen('Appends');
    const searchIs = async (query, want, what, opts = { uid: true }) => {
        const got = await c.search(query, opts);
        check(show(got) === show(want), `${what} -> ${show(want)}`, got);
    };
    await searchIs({ flagged: true }, [3], 'SEARCH FLAGGED');
    await searchIs({ seen: false }, [1, 3, 5, 6], 'SEARCH UNSEEN');
    await searchIs({ answered: true, seen: true }, [4], 'SEARCH ANSWERED SEEN');
    await searchIs({ keyword: '$Work' }, [3], 'SEARCH KEYWORD $Work');
    await searchIs({ draft: true }, [5], 'SEARCH DRAFT');
    await searchIs({ header: { 'x-test-id': 'imapflow-2' } }, [2], 'SEARCH HEADER X-Test-Id');
    await searchIs({ subject: 'message 4' }, [4], 'SEARCH SUBJECT');
    await searchIs({ from: 'sender6@example.com' }, [6], 'SEARCH FROM');
    await searchIs({ body: 'message 3' }, [3], 'SEARCH BODY');
    await searchIs({ or: [{ flagged: true }, { draft: true }] }, [3, 5], 'SEARCH OR FLAGGED DRAFT');
    await searchIs({ not: { seen: true }, uid: '4:*' }, [5, 6], 'SEARCH NOT SEEN UID 4:*');
    await searchIs({ uid: '2:4', seen: true }, [2, 4], 'SEARCH UID 2:4 SEEN');
    await searchIs({ before: new Date(Date.UTC(2025, 0, 12)) }, [1, 2], 'SEARCH BEFORE (internal date)');
    await searchIs({ larger: 100000 }, [], 'SEARCH LARGER finds nothing');
    await searchIs({ seen: false }, [1, 3, 5, 6], 'SEARCH by sequence numbers', {});
    const es = await c.search({ seen: false }, { uid: true, returnOptions: ['min', 'max', 'count', 'all'] });
    check(es && es.count === 4 && es.min === 1 && es.max === 6 && es.all === '1,3,5:6', 'ESEARCH RETURN (MIN MAX COUNT ALL)', es);

    // UTF-8 mailbox names (UTF8=ACCEPT on this session, modified UTF-7 on one without)
    const intl = 'Ärchiv ✓ 日本';
    check((await c.mailboxCreate(intl)).created, `CREATE ${intl} (UTF8=ACCEPT)`);
    const intlMsg = Buffer.from('From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.com>\r\nTo: a@example.com\r\n' +
                                'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\nMIME-Version: 1.0\r\n' +
                                'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
                                'Schöne Grüße, 日本語のテキスト\r\n', 'utf8');
    const ia = await c.append(intl, intlMsg);
    check(ia && ia.uid === 1 && ia.destination === intl, 'APPEND into the UTF-8 named mailbox', ia);
    const legacy = await connect('utf7', { disableAutoEnable: true });
    check(!legacy.enabled.has('UTF8=ACCEPT'), 'the second session did not enable UTF8=ACCEPT', legacy.enabled);
    const legacyList = await legacy.list();
    check(legacyList.some((m) => m.path === intl), 'LIST in modified UTF-7 decodes to the same name',
          legacyList.map((m) => m.path));
    await legacy.mailboxOpen(intl);
    const im = await legacy.fetchOne('1', { envelope: true, source: true }, { uid: true });
    eq(im.envelope.subject, 'Grüße aus Köln', 'ENVELOPE subject decoded');
    eq(im.envelope.from[0].name, 'Jürgen', 'ENVELOPE from name decoded');
    check(im.source.equals(intlMsg), 'BODY[] with 8-bit UTF-8 body byte-identical');
    const found = await legacy.search({ subject: 'Grüße' }, { uid: true });
    check(show(found) === '[1]', 'SEARCH SUBJECT with non-ASCII text (CHARSET UTF-8)', found);
    const foundBody = await legacy.search({ body: '日本語' }, { uid: true });
    check(show(foundBody) === '[1]', 'SEARCH BODY with non-ASCII text', foundBody);
    await legacy.logout();
    check((await c.mailboxDelete(intl)).path === intl, `DELETE ${intl}`);

    const quota = await c.getQuota('INBOX');
    check(quota && quota.storage && quota.storage.usage > 0, 'GETQUOTAROOT reports storage in use', quota);

    check((await c.mailboxCreate('Scratch')).created, 'CREATE Scratch');
    const ren = await c.mailboxRename('Scratch', 'Scratch2');
    eq(ren.newPath, 'Scratch2', 'RENAME Scratch -> Scratch2');
    const del = await c.mailboxDelete('Scratch2');
    eq(del.path, 'Scratch2', 'DELETE Scratch2');
    const after = await c.list();
    check(!after.some((m) => m.path.startsWith('Scratch')), 'Scratch gone from LIST', after.map((m) => m.path));
    check(await c.mailboxSubscribe('Appends'), 'SUBSCRIBE Appends');
});

console.log(`${passedSections} sections passed, ${failedSections.length} failed ${show(failedSections)}; ${checks} checks`);
process.exit(failedSections.length ? 1 : 0);

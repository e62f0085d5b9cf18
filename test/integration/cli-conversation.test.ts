// End to end through the `parley` binary against the real server (`parley serve` on a free loopback port,
// temporary folders): registration with test numbers, messages both ways online and offline, receipts
// (sent -> delivered -> read), typing never stored, a re-registration changes the identity and the peer is
// told, and neither the server's database nor its log holds any plaintext.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cliOk, filesUnder, NUMBERS, runCli, startCli, startServer, tempDir, type CliServer } from '../support/cli.ts';

const { alice: A, bob: B } = NUMBERS;

describe('parley CLI end to end', () => {
  const tmp = tempDir('parley-cli-e2e-');
  const profiles = { a: path.join(tmp.dir, 'alice'), b: path.join(tmp.dir, 'bob'), b2: path.join(tmp.dir, 'bob-new-phone') };
  const plaintexts: string[] = [];
  let server: CliServer;
  /** A message text that is unique to this run (so a leak scan cannot match anything else). */
  const text = (label: string): string => {
    const t = `${label} ${randomBytes(6).toString('hex')}`;
    plaintexts.push(t);
    return t;
  };
  const as = (profile: string, ...args: string[]): string[] => [...args, '--profile', profile, '--json'];

  before(async () => {
    server = await startServer(path.join(tmp.dir, 'server'));
  });

  after(async () => {
    await server?.stop();
    tmp.remove();
  });

  it('serve answers /healthz once it accepts clients', async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
  });

  it('registers two accounts (one code on the command line, one typed at the prompt)', async () => {
    const a = await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', profiles.a, '--json']);
    assert.equal(a.lines[0]?.number, A.number);
    assert.equal(a.lines[0]?.deviceId, 1);
    const b = await cliOk(['register', B.number, '--server', server.url, '--profile', profiles.b, '--json'], { input: `${B.code}\n` });
    assert.match(b.stderr, /Code: /);
    assert.equal(b.lines[0]?.reregistered, false);
  });

  it('delivers messages sent while the recipient is offline, in order, when it comes online', async () => {
    const sent = [text('offline one'), text('offline two'), text('offline three')];
    for (const t of sent) {
      const r = await cliOk(as(profiles.a, 'send', B.number, t));
      assert.equal(r.lines.at(-1)?.status, 'sent');
    }
    const r = await cliOk(as(profiles.b, 'receive', '--until-empty'));
    const got = r.lines.filter((l) => l.type === 'text');
    assert.deepEqual(got.map((l) => l.body), sent);
    for (const l of got) {
      assert.equal(l.from, A.number);
      assert.equal(typeof l.id, 'string');
      assert.equal(typeof l.timestamp, 'number');
    }
  });

  it('delivers messages both ways while the recipient is online', async () => {
    const bob = startCli(as(profiles.b, 'receive', '--timeout', '20'));
    const alice = startCli(as(profiles.a, 'receive', '--timeout', '20'));
    try {
      await bob.waitFor('connected');
      await alice.waitFor('connected');
      const toBob = text('online to bob');
      await cliOk(as(profiles.a, 'send', B.number, toBob));
      await bob.waitFor(toBob);
      const toAlice = text('online to alice');
      await cliOk(as(profiles.b, 'send', A.number, toAlice));
      await alice.waitFor(toAlice);
    } finally {
      bob.child.kill('SIGTERM');
      alice.child.kill('SIGTERM');
      await Promise.all([bob.done(), alice.done()]);
    }
  });

  it('moves a sent message from sent to delivered to read with receipts', async () => {
    const t = text('receipts please');
    const sent = await cliOk(as(profiles.a, 'send', B.number, t));
    const id = sent.lines.at(-1)?.id as string;
    const status = async (): Promise<unknown> => (await cliOk(as(profiles.a, 'messages', B.number))).lines.find((l) => l.id === id)?.status;
    assert.equal(await status(), 'sent');

    await cliOk(as(profiles.b, 'receive', '--until-empty')); // Bob's device stores it and sends a delivery receipt
    const delivered = await cliOk(as(profiles.a, 'receive', '--until-empty'));
    assert.ok(delivered.lines.some((l) => l.type === 'receipt' && l.receipt === 'delivery' && (l.timestamps as number[]).includes(sent.lines.at(-1)?.timestamp as number)));
    assert.equal(await status(), 'delivered');

    const read = await cliOk(as(profiles.b, 'read', A.number));
    assert.ok((read.lines[0]?.read as string[]).includes(id));
    const readReceipt = await cliOk(as(profiles.a, 'receive', '--until-empty'));
    assert.ok(readReceipt.lines.some((l) => l.type === 'receipt' && l.receipt === 'read'));
    assert.equal(await status(), 'read');
  });

  it('never stores typing: dropped for an offline recipient, shown to an online one, and not kept', async () => {
    // Offline: nothing is queued.
    await cliOk(as(profiles.a, 'typing', B.number));
    const db = new Database(path.join(server.dataDir, 'parley.sqlite'), { readonly: true });
    try {
      const queued = (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
      assert.equal(queued, 0, 'the server stored nothing for the typing indicator');
    } finally {
      db.close();
    }
    const offline = await cliOk(as(profiles.b, 'receive', '--until-empty'));
    assert.equal(offline.lines.filter((l) => l.type === 'typing').length, 0);
    // Online: shown live.
    const bob = startCli(as(profiles.b, 'receive', '--timeout', '20'));
    try {
      await bob.waitFor('connected');
      await cliOk(as(profiles.a, 'typing', B.number));
      await bob.waitFor('"type":"typing"');
    } finally {
      bob.child.kill('SIGTERM');
      await bob.done();
    }
    const stored = await cliOk(as(profiles.b, 'messages', A.number));
    assert.equal(stored.lines.filter((l) => l.type === 'typing').length, 0, 'and the recipient does not store it either');
  });

  it('shows the same safety number on both sides', async () => {
    const a = await cliOk(as(profiles.a, 'safety-number', B.number));
    const b = await cliOk(as(profiles.b, 'safety-number', A.number));
    assert.match(a.lines[0]?.safetyNumber as string, /^[0-9]{60}$/);
    assert.equal(a.lines[0]?.safetyNumber, b.lines[0]?.safetyNumber);
    const contacts = await cliOk(as(profiles.a, 'contacts'));
    assert.deepEqual(contacts.lines.map((l) => l.number), [B.number]);
  });

  it('tells the peer when a number registers again with a new identity, on sending and on receiving', async () => {
    const before = (await cliOk(as(profiles.a, 'safety-number', B.number))).lines[0]?.safetyNumber;
    const again = await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', profiles.b2, '--json']);
    assert.equal(again.lines[0]?.reregistered, true);
    // The old phone's credentials are void now.
    const old = await runCli(as(profiles.b, 'receive', '--timeout', '10'));
    assert.equal(old.code, 1);
    assert.match(old.stderr, /CLIENT_UNAUTHORIZED/);

    // Alice sends to the re-registered number: the send repairs the session and reports the change.
    const t = text('to the new phone');
    const sent = await cliOk(as(profiles.a, 'send', B.number, t));
    assert.equal(sent.lines.find((l) => l.type === 'identity-changed')?.from, B.number);
    assert.equal(sent.lines.at(-1)?.status, 'sent');
    const after = (await cliOk(as(profiles.a, 'safety-number', B.number))).lines[0]?.safetyNumber;
    assert.notEqual(after, before);
    const got = await cliOk(as(profiles.b2, 'receive', '--until-empty'));
    assert.ok(got.lines.some((l) => l.type === 'text' && l.body === t));

    // Bob registers once more and writes first: Alice's receive shows the change before the message.
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', profiles.b2, '--json']);
    const hello = text('hello from yet another identity');
    await cliOk(as(profiles.b2, 'send', A.number, hello));
    const r = await cliOk(as(profiles.a, 'receive', '--until-empty'));
    const change = r.lines.findIndex((l) => l.type === 'identity-changed' && l.from === B.number);
    const message = r.lines.findIndex((l) => l.type === 'text' && l.body === hello);
    assert.ok(change >= 0, `no identity-changed line in ${r.stdout}`);
    assert.ok(message > change);
  });

  it('blocks sending to a verified contact whose identity changed until it is verified again', async () => {
    await cliOk(as(profiles.a, 'verify', B.number));
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', profiles.b2, '--json']);
    const blocked = await runCli(as(profiles.a, 'send', B.number, text('blocked')));
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /CLIENT_IDENTITY_NOT_VERIFIED/);
    const sn = await cliOk(as(profiles.a, 'safety-number', B.number));
    assert.equal(sn.lines[0]?.status, 'verification-required');
    await cliOk(as(profiles.a, 'verify', B.number, '--safety-number', sn.lines[0]?.safetyNumber as string));
    await cliOk(as(profiles.a, 'send', B.number, text('verified again')));
  });

  it('leaves no plaintext in the server\'s database or log (while the clients have it)', async () => {
    await server.stop();
    const data = filesUnder(server.dataDir);
    const log = server.process.stdout() + server.process.stderr();
    assert.ok(plaintexts.length >= 10);
    for (const p of plaintexts) {
      assert.equal(data.includes(Buffer.from(p)), false, `server data holds "${p}"`);
      assert.equal(log.includes(p), false, `server log holds "${p}"`);
    }
    // The scan itself works: the recipients' profiles do hold what they received.
    assert.ok(filesUnder(profiles.b).includes(Buffer.from(plaintexts[0] as string)));
  });
});

// Linked devices end to end through the `parley` binary against the real server: Alice's primary and two
// companions, Bob's primary and one companion, all linked with `parley link` and `parley devices link`. Every
// message (sent from primaries and companions, received while the devices were offline) is stored on every
// device of both accounts exactly once, as outgoing on the sender's devices; a new companion receives the
// recent history; a removed companion is refused and receives nothing more; the companion limit holds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { cliOk, NUMBERS, runCli, startCli, startServer, tempDir, type CliResult, type CliServer } from '../support/cli.ts';

const { alice: A, bob: B } = NUMBERS;

type Line = Record<string, unknown>;

describe('parley CLI: linked devices', () => {
  const tmp = tempDir('parley-cli-devices-');
  const p = (name: string): string => path.join(tmp.dir, name);
  const alice = { primary: p('alice'), laptop: p('alice-laptop'), tablet: p('alice-tablet') };
  const bob = { primary: p('bob'), laptop: p('bob-laptop') };
  let server: CliServer;
  /** Every `text` line each profile's `receive` printed, over all its runs. */
  const received = new Map<string, Line[]>();
  const text = (label: string): string => `${label} ${randomBytes(4).toString('hex')}`;
  const as = (profile: string, ...args: string[]): string[] => [...args, '--profile', profile, '--json'];

  /** `receive --until-empty` on a profile; its text lines are kept for the exactly-once checks. */
  const receive = async (profile: string): Promise<CliResult> => {
    const r = await cliOk(as(profile, 'receive', '--until-empty'));
    received.set(profile, [...(received.get(profile) ?? []), ...r.lines.filter((l) => l.type === 'text')]);
    return r;
  };
  /** The stored 1:1 conversation of a profile with `peer`. */
  const messages = async (profile: string, peer: string): Promise<Line[]> => (await cliOk(as(profile, 'messages', peer))).lines;

  /** Starts `parley link` on `companion` and returns its process and the code it shows. */
  const showCode = async (companion: string, name: string, extra: string[] = []): Promise<{ link: ReturnType<typeof startCli>; uri: string }> => {
    const link = startCli(['link', '--server', server.url, '--name', name, '--profile', companion, '--json', ...extra]);
    await link.waitFor(/"uri":"parley:\/\/link\/[^"]+"/, 20_000);
    const first = JSON.parse(link.stdout().split('\n')[0] as string) as { uri: string };
    return { link, uri: first.uri };
  };

  /** Links `companion` to the account of `primary` (approved with --yes); resolves with the new device id. */
  const linkCompanion = async (primary: string, companion: string, name: string, number: string): Promise<number> => {
    const { link, uri } = await showCode(companion, name);
    const approved = await cliOk(as(primary, 'devices', 'link', uri, '--yes'), { timeoutMs: 60_000 });
    const deviceId = approved.lines.at(-1)?.deviceId;
    const done = await link.done(30_000);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(
      done.lines.map((l) => Object.keys(l).sort()),
      [['uri'], ['accountId', 'deviceId', 'number', 'profile']],
      'one line with the code, then one once linked',
    );
    assert.equal(done.lines[1]?.deviceId, deviceId);
    assert.equal(done.lines[1]?.number, number);
    return deviceId as number;
  };

  before(async () => {
    server = await startServer(p('server'));
    await cliOk(as(alice.primary, 'register', A.number, '--server', server.url, '--code', A.code));
    await cliOk(as(bob.primary, 'register', B.number, '--server', server.url, '--code', B.code));
  });

  after(async () => {
    await server?.stop();
    tmp.remove();
  });

  const history = { toBob: text('before linking, to Bob'), toAlice: text('before linking, to Alice') };

  it('links a companion after approval at the prompt, and it receives the recent history', async () => {
    await cliOk(as(alice.primary, 'send', B.number, history.toBob));
    await receive(bob.primary);
    await cliOk(as(bob.primary, 'send', A.number, history.toAlice));
    await receive(alice.primary);

    // Declined at the prompt: nothing is linked, the code keeps waiting.
    const { link, uri } = await showCode(alice.laptop, 'laptop');
    const declined = await runCli(as(alice.primary, 'devices', 'link', uri), { input: 'n\n' });
    assert.equal(declined.code, 1);
    assert.match(declined.stderr, /Link a new device to \+15550100001\? .*\[y\/N\]/);
    assert.match(declined.stderr, /not approved: nothing was linked/);
    assert.equal(link.child.exitCode, null, 'the new device is still waiting');

    const approved = await cliOk(as(alice.primary, 'devices', 'link', uri), { input: 'y\n', timeoutMs: 60_000 });
    assert.equal(approved.lines.at(-1)?.deviceId, 2);
    const done = await link.done(30_000);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(done.lines[1] && { deviceId: done.lines[1].deviceId, number: done.lines[1].number }, { deviceId: 2, number: A.number });

    const r = await receive(alice.laptop);
    const synced = r.lines.find((l) => l.type === 'history-synced');
    assert.ok(synced, `a history-synced line: ${r.stdout}`);
    assert.ok((synced.messages as number) >= 2);
    const project = (ls: Line[]): unknown[] => ls.map((l) => [l.id, l.direction, l.body, l.timestamp]);
    const onPrimary = await messages(alice.primary, B.number);
    const onLaptop = await messages(alice.laptop, B.number);
    assert.deepEqual(project(onLaptop), project(onPrimary), 'the companion holds the primary\'s recent conversation');
    assert.deepEqual(
      onLaptop.map((l) => [l.direction, l.body]),
      [
        ['outgoing', history.toBob],
        ['incoming', history.toAlice],
      ],
    );
  });

  it('links a second companion of Alice and one of Bob, and lists the devices', async () => {
    assert.equal(await linkCompanion(alice.primary, alice.tablet, 'tablet', A.number), 3);
    assert.equal(await linkCompanion(bob.primary, bob.laptop, 'bob laptop', B.number), 2);
    await receive(alice.tablet);
    await receive(bob.laptop);

    const list = (await cliOk(as(alice.primary, 'devices'))).lines;
    assert.deepEqual(
      list.map((d) => [d.deviceId, d.primary, d.self, d.listed]),
      [
        [1, true, true, true],
        [2, false, false, true],
        [3, false, false, true],
      ],
    );
    assert.deepEqual(list.slice(1).map((d) => d.name), ['laptop', 'tablet']);
    for (const d of list) assert.equal(typeof d.createdAt, 'number');
    const fromTablet = (await cliOk(as(alice.tablet, 'devices'))).lines;
    assert.deepEqual(
      fromTablet.map((d) => [d.deviceId, d.self]),
      [
        [1, false],
        [2, false],
        [3, true],
      ],
    );
  });

  const sent: Array<{ body: string; from: 'alice' | 'bob'; device: string }> = [];

  it('delivers every message to every device of both accounts exactly once, sent from primaries and companions', async () => {
    // Everyone is offline while these are sent (companions send while their primary is offline too).
    const plan: Array<{ from: 'alice' | 'bob'; device: string; profile: string }> = [
      { from: 'alice', device: 'primary', profile: alice.primary },
      { from: 'alice', device: 'laptop', profile: alice.laptop },
      { from: 'bob', device: 'laptop', profile: bob.laptop },
      { from: 'bob', device: 'primary', profile: bob.primary },
      { from: 'alice', device: 'tablet', profile: alice.tablet },
    ];
    for (const s of plan) {
      const body = text(`from ${s.from}'s ${s.device}`);
      const r = await cliOk(as(s.profile, 'send', s.from === 'alice' ? B.number : A.number, body));
      assert.equal(r.lines.at(-1)?.status, 'sent');
      sent.push({ body, from: s.from, device: s.device });
    }
    // Alice's tablet is online for the next one, the others receive later.
    const online = startCli(as(alice.tablet, 'receive', '--timeout', '30'));
    try {
      await online.waitFor('connected');
      const body = text('from bob\'s primary, tablet online');
      await cliOk(as(bob.primary, 'send', A.number, body));
      sent.push({ body, from: 'bob', device: 'primary' });
      await online.waitFor(body);
    } finally {
      online.child.kill('SIGTERM');
      const r = await online.done();
      received.set(alice.tablet, [...(received.get(alice.tablet) ?? []), ...r.lines.filter((l) => l.type === 'text')]);
    }
    for (const profile of [alice.primary, alice.laptop, alice.tablet, bob.primary, bob.laptop]) await receive(profile);
    // A second round finds nothing new anywhere.
    for (const profile of [alice.primary, bob.laptop]) {
      const again = await cliOk(as(profile, 'receive', '--until-empty'));
      assert.deepEqual(again.lines.filter((l) => l.type === 'text'), [], 'nothing arrives twice');
    }

    const devices: Array<{ account: 'alice' | 'bob'; device: string; profile: string }> = [
      { account: 'alice', device: 'primary', profile: alice.primary },
      { account: 'alice', device: 'laptop', profile: alice.laptop },
      { account: 'alice', device: 'tablet', profile: alice.tablet },
      { account: 'bob', device: 'primary', profile: bob.primary },
      { account: 'bob', device: 'laptop', profile: bob.laptop },
    ];
    for (const d of devices) {
      const stored = await messages(d.profile, d.account === 'alice' ? B.number : A.number);
      const lines = received.get(d.profile) ?? [];
      for (const s of sent) {
        const where = `${s.body} on ${d.account}'s ${d.device}`;
        const own = s.from === d.account;
        const copies = stored.filter((m) => m.body === s.body);
        assert.equal(copies.length, 1, `${where}: stored once`);
        assert.equal(copies[0]?.direction, own ? 'outgoing' : 'incoming', where);
        const sentHere = own && s.device === d.device;
        const arrivals = lines.filter((l) => l.body === s.body);
        assert.equal(arrivals.length, sentHere ? 0 : 1, `${where}: arrived ${sentHere ? 'never (sent here)' : 'once'}`);
        if (arrivals[0]) {
          assert.equal(arrivals[0].direction, own ? 'outgoing' : 'incoming', where);
          assert.equal(arrivals[0].from, own ? (d.account === 'alice' ? A.number : B.number) : s.from === 'alice' ? A.number : B.number, where);
          if (own) assert.equal(arrivals[0].to, d.account === 'alice' ? B.number : A.number, where);
        }
      }
    }
  });

  it('removes a companion: it is refused and receives nothing more, the others receive everything', async () => {
    const removed = await cliOk(as(alice.primary, 'devices', 'remove', '3'));
    assert.deepEqual(removed.lines.at(-1), { deviceId: 3, removed: true, self: false });
    assert.deepEqual(
      (await cliOk(as(alice.primary, 'devices'))).lines.map((d) => d.deviceId),
      [1, 2],
    );

    const toBob = text('after removal, to Bob');
    const toAlice = text('after removal, to Alice');
    await cliOk(as(alice.primary, 'send', B.number, toBob));
    await cliOk(as(bob.laptop, 'send', A.number, toAlice));

    const refused = await runCli(as(alice.tablet, 'receive', '--until-empty'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused this device's credentials.*\[CLIENT_UNAUTHORIZED\]/);
    const onTablet = (await messages(alice.tablet, B.number)).map((m) => m.body);
    assert.ok(!onTablet.includes(toBob) && !onTablet.includes(toAlice), 'the removed device holds nothing sent after its removal');

    for (const [profile, peer] of [
      [alice.primary, B.number],
      [alice.laptop, B.number],
      [bob.primary, A.number],
      [bob.laptop, A.number],
    ] as const) {
      await receive(profile);
      const bodies = (await messages(profile, peer)).map((m) => m.body);
      for (const body of [toBob, toAlice]) assert.equal(bodies.filter((b) => b === body).length, 1, `${body} on ${profile}`);
    }
    const devicesChanged = (await cliOk(as(alice.laptop, 'devices'))).lines.map((d) => d.deviceId);
    assert.deepEqual(devicesChanged, [1, 2]);
  });

  it('refuses a fifth companion with a clear error', async () => {
    // Bob has one companion: three more reach the limit of four.
    for (const [i, name] of ['b3', 'b4', 'b5'].entries()) assert.equal(await linkCompanion(bob.primary, p(`bob-${name}`), name, B.number), 3 + i);
    const { link, uri } = await showCode(p('bob-b6'), 'b6', ['--timeout', '20']);
    try {
      const refused = await runCli(as(bob.primary, 'devices', 'link', uri, '--yes'));
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^parley devices link: .*(4|four).*\[CLIENT_[A-Z_]+\]\n$/m);
    } finally {
      link.child.kill('SIGTERM');
      await link.done();
    }
    assert.equal((await cliOk(as(bob.primary, 'devices'))).lines.length, 5);
  });

  it('offers devices, devicesLink and devicesRemove over the daemon\'s JSON-RPC', async () => {
    const daemon = startCli(['daemon', '--profile', bob.primary]);
    try {
      await daemon.waitFor('listening on');
      const call = async (id: number, method: string, params: object): Promise<Line> => {
        daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
        await daemon.waitFor(new RegExp(`"id":${id}[,}]`));
        return daemon
          .stdout()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Line)
          .find((l) => l.id === id) as Line;
      };
      const listed = (await call(1, 'devices', {})).result as Line[];
      assert.deepEqual(listed.map((d) => [d.deviceId, d.self, d.primary]), [
        [1, true, true],
        [2, false, false],
        [3, false, false],
        [4, false, false],
        [5, false, false],
      ]);
      assert.deepEqual((await call(2, 'devicesRemove', { deviceId: 5 })).result, { deviceId: 5, self: false, removed: true });
      assert.deepEqual(((await call(3, 'devices', {})).result as Line[]).map((d) => d.deviceId), [1, 2, 3, 4]);
      const bad = (await call(4, 'devicesLink', { uri: 'https://example.com' })).error as { code: number; data: { code: string } };
      assert.equal(bad.data.code, 'CLIENT_BAD_LINK_URI');
      assert.equal(((await call(5, 'devicesRemove', { deviceId: 'two' })).error as { code: number }).code, -32602);
    } finally {
      daemon.child.stdin?.end();
      await daemon.done(20_000);
    }
  });
});

// Crash safety end to end: a client (the SDK over a CLI profile, in a child process) sends 10,000 messages
// while the server is killed with SIGKILL and restarted on the same data folder. Every message the server
// acknowledged reaches the recipient's application (`parley receive --json`) exactly once, and nothing
// arrives twice. Then the other half: the receiving client is killed with SIGKILL mid-way through its
// queue; what it stored before the kill is not delivered again, and nothing is lost.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliOk, NUMBERS, startCli, startServer, tempDir, type CliServer } from '../support/cli.ts';

const TOTAL = 10_000;
const KILL_AFTER_ACKS = 3_000;
const WINDOW = 64;
const SENDER = fileURLToPath(new URL('../support/cli-crash-sender.ts', import.meta.url));
const SERVER_ARGS = ['--rate-limit', 'messagesPerSender=1000000/1000,requestsPerConnection=1000000/1000', '--limit', 'maxQueueDepth=20000', '--log-level', 'warn'];

describe('crash safety through the client', () => {
  const tmp = tempDir('parley-cli-crash-');
  const dataDir = path.join(tmp.dir, 'server');
  const pa = path.join(tmp.dir, 'alice');
  const pb = path.join(tmp.dir, 'bob');
  let server: CliServer | undefined;

  after(async () => {
    await server?.stop();
    tmp.remove();
  });

  it(`delivers every acknowledged message exactly once after kill -9 of the server mid-way through ${TOTAL}`, { timeout: 90_000 }, async (t) => {
    server = await startServer(dataDir, SERVER_ARGS);
    const port = server.port;
    await cliOk(['register', NUMBERS.alice.number, '--server', server.url, '--code', NUMBERS.alice.code, '--profile', pa]);
    await cliOk(['register', NUMBERS.bob.number, '--server', server.url, '--code', NUMBERS.bob.code, '--profile', pb]);

    const sender = spawn(process.execPath, ['--import', 'tsx', SENDER, pa, NUMBERS.bob.number, String(TOTAL), String(WINDOW)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = new Set<number>();
    const failed: string[] = [];
    let stderr = '';
    let killed = false;
    let restarted: Promise<CliServer> | undefined;
    sender.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let partial = '';
    sender.stdout.on('data', (c: Buffer) => {
      const text = partial + c.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const [what, i] = line.split(' ');
        if (what === 'ack') acked.add(Number(i));
        else if (what === 'fail') failed.push(line);
      }
      if (!killed && acked.size >= KILL_AFTER_ACKS) {
        killed = true;
        server?.process.child.kill('SIGKILL');
        const dead = server?.process.done();
        restarted = (async () => {
          await dead;
          return startServer(dataDir, SERVER_ARGS, port);
        })();
      }
    });
    const exited = new Promise<number | null>((resolve) => sender.once('exit', (code) => resolve(code)));
    const timer = setTimeout(() => sender.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    assert.ok(killed, 'the server was killed mid-way');
    server = await restarted;
    assert.equal(code, 0, `sender exited ${String(code)}: ${stderr}`);
    assert.deepEqual(failed, []);
    assert.ok(acked.size >= KILL_AFTER_ACKS);

    const received = await cliOk(['receive', '--until-empty', '--json', '--profile', pb], { timeoutMs: 60_000 });
    const seen = new Map<number, number>();
    for (const line of received.lines) {
      if (line.type !== 'text') continue;
      const m = /^crash-test message (\d+)$/.exec(String(line.body));
      assert.ok(m, `unexpected message ${String(line.body)}`);
      const i = Number(m[1]);
      seen.set(i, (seen.get(i) ?? 0) + 1);
    }
    const twice = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
    assert.deepEqual(twice, [], 'messages delivered twice');
    const missing = [...acked].filter((i) => !seen.has(i));
    assert.deepEqual(missing, [], 'acknowledged messages not delivered');
    assert.equal(received.lines.filter((l) => l.type === 'undecryptable').length, 0);
    // The sender kept going through the restart, so in the end the server accepted every message.
    assert.equal(acked.size, TOTAL);
    assert.equal(seen.size, TOTAL);
    t.diagnostic(`acknowledged ${acked.size}, delivered ${seen.size} (server killed after ${KILL_AFTER_ACKS} acks)`);
  });

  it('stores every message exactly once when the receiving client is killed mid-way and started again', { timeout: 60_000 }, async () => {
    assert.ok(server, 'the server of the first test is running');
    const count = 2_000;
    const sender = spawn(process.execPath, ['--import', 'tsx', SENDER, pa, NUMBERS.bob.number, String(count), String(WINDOW), 'second'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sender.stdout.on('data', (c: Buffer) => (out += c.toString()));
    assert.equal(await new Promise((resolve) => sender.once('exit', resolve)), 0);
    assert.equal((out.match(/^ack /gm) ?? []).length, count);

    const first = startCli(['receive', '--until-empty', '--json', '--profile', pb]);
    await first.waitFor(/"body":"second message 5\d\d"/, 30_000);
    first.child.kill('SIGKILL');
    const printed = (await first.done()).lines.filter((l) => l.type === 'text').length;
    assert.ok(printed > 0 && printed < count, `killed after ${printed} messages`);

    const second = await cliOk(['receive', '--until-empty', '--json', '--profile', pb], { timeoutMs: 30_000 });
    const stored = await cliOk(['messages', NUMBERS.alice.number, '--json', '--profile', pb], { timeoutMs: 30_000 });
    const bodies = stored.lines.map((l) => String(l.body)).filter((b) => b.startsWith('second message '));
    assert.equal(bodies.length, count, 'every message stored once');
    assert.equal(new Set(bodies).size, count);
    // The second run shows only what the first had not stored: at most the batch in flight at the kill again.
    const again = second.lines.filter((l) => l.type === 'text').length;
    assert.ok(again <= count - printed + 256, `second run showed ${again} after ${printed}`);
  });
});

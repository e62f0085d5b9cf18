// `parley daemon` end to end: JSON-RPC 2.0 on stdio and on the profile's unix socket, notifications for
// incoming messages, and errors for malformed requests, against the real server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { cliOk, NUMBERS, startCli, startServer, tempDir, type CliProcess, type CliServer } from '../support/cli.ts';

const { alice: A, bob: B } = NUMBERS;

/** JSON lines of the daemon's stdout. */
function stdoutLines(p: CliProcess): Array<Record<string, unknown>> {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function response(p: CliProcess, id: number): Promise<Record<string, unknown>> {
  await p.waitFor(new RegExp(`"id":${id}[,}]`));
  return stdoutLines(p).find((l) => l.id === id) as Record<string, unknown>;
}

/** One request over the unix socket. */
function socketCall(socketPath: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const rl = createInterface({ input: socket });
    const timer = setTimeout(() => reject(new Error('no answer on the socket')), 10_000);
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.id === undefined) return; // a notification
      clearTimeout(timer);
      socket.end();
      resolve(msg);
    });
    socket.on('error', reject);
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

describe('parley daemon', () => {
  const tmp = tempDir('parley-daemon-e2e-');
  const pa = path.join(tmp.dir, 'alice');
  const pb = path.join(tmp.dir, 'bob');
  let server: CliServer;
  let daemon: CliProcess;

  before(async () => {
    server = await startServer(path.join(tmp.dir, 'server'));
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', pa]);
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', pb]);
    daemon = startCli(['daemon', '--profile', pa]);
    await daemon.waitFor('listening on');
  });

  after(async () => {
    daemon?.child.stdin?.end();
    await daemon?.done(10_000);
    await server?.stop();
    tmp.remove();
  });

  it('sends over stdio and answers with the message id', async () => {
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'send', params: { to: B.number, text: 'from the daemon' } })}\n`);
    const res = await response(daemon, 1);
    assert.equal((res.result as { status: string }).status, 'sent');
    const got = await cliOk(['receive', '--until-empty', '--json', '--profile', pb]);
    assert.ok(got.lines.some((l) => l.body === 'from the daemon'));
  });

  it('notifies every incoming message, and returns it from receive', async () => {
    await cliOk(['send', A.number, 'to the daemon', '--profile', pb]);
    await daemon.waitFor('"method":"message"');
    const note = stdoutLines(daemon).find((l) => l.method === 'message' && (l.params as { type: string }).type === 'text');
    assert.equal((note?.params as { body: string; from: string }).body, 'to the daemon');
    assert.equal((note?.params as { from: string }).from, B.number);
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'receive', params: {} })}\n`);
    const res = await response(daemon, 2);
    assert.ok((res.result as Array<{ body: string }>).some((e) => e.body === 'to the daemon'));
  });

  it('answers contacts and safetyNumber on the unix socket', async () => {
    const socketPath = path.join(pa, 'parley.sock');
    const contacts = await socketCall(socketPath, { jsonrpc: '2.0', id: 'c', method: 'contacts' });
    assert.deepEqual((contacts.result as Array<{ number: string }>).map((c) => c.number), [B.number]);
    const sn = await socketCall(socketPath, { jsonrpc: '2.0', id: 's', method: 'safetyNumber', params: { to: B.number } });
    assert.match((sn.result as { safetyNumber: string }).safetyNumber, /^[0-9]{60}$/);
  });

  it('leaves a view-once file on the server and writes it out on view, once', async () => {
    const file = path.join(tmp.dir, 'once.txt');
    writeFileSync(file, 'seen once\n'.repeat(1000));
    await cliOk(['send-file', A.number, file, '--view-once', '--profile', pb]);
    await daemon.waitFor('"viewOnce":true');
    const note = stdoutLines(daemon).find((l) => l.method === 'message' && (l.params as { viewOnce?: boolean }).viewOnce === true);
    const params = note?.params as { id: string; attachment: { path: string | null } };
    assert.equal(params.attachment.path, null, 'not downloaded with the notification');
    const out = path.join(tmp.dir, 'seen.txt');
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'view', params: { id: params.id, out } })}\n`);
    assert.deepEqual((await response(daemon, 11)).result, { id: params.id, viewed: true, files: [out] });
    assert.equal(readFileSync(out, 'utf8'), readFileSync(file, 'utf8'));
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'view', params: { id: params.id, out: `${out}.2` } })}\n`);
    assert.match(JSON.stringify((await response(daemon, 12)).error), /viewed already/);
  });

  it('answers malformed requests with JSON-RPC errors and keeps serving', async () => {
    daemon.write('this is not json\n');
    await daemon.waitFor('"code":-32700');
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'nope' })}\n`);
    assert.equal(((await response(daemon, 3)).error as { code: number }).code, -32601);
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'send', params: { to: B.number } })}\n`);
    assert.equal(((await response(daemon, 4)).error as { code: number }).code, -32602);
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'send', params: { to: '+15559999999', text: 'x' } })}\n`);
    const unknown = await response(daemon, 5);
    assert.equal((unknown.error as { code: number; data: { code: string } }).data.code, 'CLIENT_UNKNOWN_RECIPIENT');
    daemon.write(`${JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'contacts' })}\n`);
    assert.ok(Array.isArray((await response(daemon, 6)).result));
  });
});

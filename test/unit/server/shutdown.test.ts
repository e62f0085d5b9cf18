// Graceful shutdown of a server node (SQLite, in-process): a client keeps ~40 sends in flight over its
// WebSocket while the server closes. The server answers what it was handling, refuses the rest with
// 503, closes every socket with 1001; the SDK's WebSocket transport of the receiving device reconnects
// at once (within its jitter) to a second server started on the same port and data folder, and every
// send that was acknowledged is delivered there. Nothing acknowledged is lost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import WebSocket from 'ws';
import { ConnectionState, WebSocketTransport, type StateChange } from '../../../src/client/transport/websocket.ts';
import { EnvelopeSchema } from '../../../src/protocol/gen/service_pb.ts';
import { startServer, type RunningServer } from '../../../src/server/main.ts';
import { fakeCiphertext, register, sendBody, WsTestClient } from '../../support/server-client.ts';
import { assertCleanLog, TEST_NUMBERS } from '../../support/server-harness.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function eventually(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('graceful shutdown', () => {
  it('answers in-flight sends, closes with 1001, and every acknowledged send reaches the device on the next server', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-shutdown-'));
    const logs: string[][] = [[], []];
    const serve = (i: number, port: number): Promise<RunningServer> =>
      startServer({
        testNumbers: TEST_NUMBERS,
        logLevel: 'debug',
        heartbeatIntervalMs: 0,
        host: '127.0.0.1',
        port,
        dataDir,
        logDestination: { write: (line: string) => void logs[i]?.push(line) },
      });
    const first = await serve(0, 0);
    let second: RunningServer | undefined;
    let bobTransport: WebSocketTransport | undefined;
    try {
      const alice = await register(first.url, '+15550100001', '111111');
      const bob = await register(first.url, '+15550100002', '222222');

      // Bob: the SDK's transport, acknowledging every push (as a client does after storing it).
      const delivered = new Set<string>();
      const states: StateChange[] = [];
      bobTransport = new WebSocketTransport({
        url: first.url,
        credentials: { accountId: bob.accountId, deviceId: bob.deviceId, password: bob.password },
        WebSocket,
        keepAliveMs: 0,
        onRequest: async (request) => {
          if (request.path === '/v1/queue/message') delivered.add(hex(fromBinary(EnvelopeSchema, request.body).content));
          return { status: 200 };
        },
      });
      bobTransport.on('state', (s) => states.push(s));
      bobTransport.connect();
      await bobTransport.waitUntilConnected();

      // Alice: sends over her socket, about 40 in flight at any time, until the socket closes.
      const ws = await WsTestClient.connect(first.url.replace(/^http/, 'ws') + '/v1/websocket', alice);
      const acked = new Set<string>();
      const outcomes = { ok: 0, okAfterClose: 0, refused: 0, lost: 0, other: 0 };
      let closing = false;
      let sent = 0;
      const sendOne = async (): Promise<void> => {
        const content = fakeCiphertext(64, sent++);
        try {
          const r = await ws.request('PUT', `/v1/messages/${bob.accountId}`, sendBody([{ deviceId: 1, registrationId: bob.registrationId, content }]));
          if (r.status === 200) {
            acked.add(hex(content));
            outcomes.ok++;
            if (closing) outcomes.okAfterClose++;
          } else if (r.status === 503 && r.code === 'SERVER_UNAVAILABLE') {
            outcomes.refused++;
          } else {
            outcomes.other++;
          }
        } catch {
          outcomes.lost++; // the socket closed before an answer: the outcome is unknown, nothing was promised
        }
      };
      const workers = Array.from({ length: 40 }, async () => {
        while (ws.ws.readyState === WebSocket.OPEN && sent < 20_000) await sendOne();
      });
      await eventually(() => outcomes.ok >= 200, '200 acknowledged sends');

      closing = true;
      const closeStarted = Date.now();
      await first.close();
      const closeMs = Date.now() - closeStarted;
      const aliceClose = await ws.closed;
      await Promise.all(workers);
      second = await serve(1, first.port);
      const reconnecting = states.find((s) => s.state === ConnectionState.Reconnecting);
      await bobTransport.waitUntilConnected({ timeoutMs: 10_000 });
      const reconnectedAfter = Date.now() - closeStarted;
      await eventually(() => [...acked].every((h) => delivered.has(h)), `all ${acked.size} acknowledged sends delivered`);

      console.log(
        `shutdown: close took ${closeMs} ms; ${outcomes.ok} sends acknowledged (${outcomes.okAfterClose} answered after close began), ` +
          `${outcomes.refused} refused with 503, ${outcomes.lost} without an answer; the receiver reconnected ${reconnectedAfter} ms after close began ` +
          `(retry in ${reconnecting?.retryInMs} ms) and got all ${acked.size}`,
      );
      assert.equal(aliceClose.code, 1001);
      assert.equal(reconnecting?.closeCode, 1001);
      assert.ok((reconnecting?.retryInMs ?? Infinity) < 500, 'reconnect at once, within the jitter, not after a backoff');
      assert.equal(outcomes.other, 0, 'only 200, 503 or no answer');
      assert.ok(outcomes.okAfterClose + outcomes.refused > 0, 'requests were in flight when the close began');
      const log = logs[0]?.join('') ?? '';
      assert.ok(log.includes('"event":"shutdown_drain"') && log.includes('"event":"shutdown_close"'));
      assert.ok(closeMs < 10_000);
      for (const lines of logs) assertCleanLog(lines.join(''));
    } finally {
      bobTransport?.close();
      await first.close();
      await second?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// Crash safety: a sender pipelines envelopes over a raw WebSocket to a server child process, which is
// killed with SIGKILL mid-stream. After a restart on the same data folder, every envelope whose send was
// acknowledged (200) is delivered, exactly once, and nothing that was never sent appears. (The 10,000-
// message version through the CLI lives with the CLI's tests.)
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fakeCiphertext, register, sendBody, WsTestClient } from '../support/server-client.ts';
import { assertCleanLog } from '../support/server-harness.ts';
import { spawnServer, type ServerProcess } from '../support/server-process.ts';

const TOTAL = 3000;
const KILL_AFTER_ACKS = 1500;
const IN_FLIGHT = 64;

describe('server crash safety', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-crash-test-'));
  let server: ServerProcess | undefined;

  after(async () => {
    if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers every acknowledged envelope after kill -9 and a restart', { timeout: 90_000 }, async () => {
    const args = ['--rate-limit', 'messagesPerSender=1000000/1000,requestsPerConnection=1000000/1000'];
    server = await spawnServer(dataDir, args);
    const alice = await register(server.url, '+15550100001', '111111');
    const bob = await register(server.url, '+15550100002', '222222');
    const sender = await WsTestClient.connect(server.wsUrl, bob);
    const contents = Array.from({ length: TOTAL }, (_, i) => fakeCiphertext(120, i));
    const acked = new Set<number>();
    const refused: number[] = [];
    let next = 0;
    let killed = false;

    // Keep IN_FLIGHT sends outstanding; kill the server once KILL_AFTER_ACKS were acknowledged.
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (!killed && next < TOTAL && next - acked.size < IN_FLIGHT) {
          const i = next++;
          const body = sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: contents[i] as Uint8Array }]);
          sender.request('PUT', `/v1/messages/${alice.accountId}`, body, 60_000).then(
            (response) => {
              if (killed) return;
              if (response.status === 200) acked.add(i);
              else refused.push(response.status);
              if (acked.size >= KILL_AFTER_ACKS || refused.length > 0) {
                killed = true;
                server?.child.kill('SIGKILL');
                resolve();
                return;
              }
              pump();
            },
            () => undefined, // requests in flight when the server died
          );
        }
      };
      pump();
    });
    assert.deepEqual(refused, [], 'every send before the kill was accepted');
    assert.equal(await server.exited, 'SIGKILL');
    assertCleanLog(server.output().split('\n').filter((l) => l.startsWith('{"level"')).join('\n'), 'first server log');
    const ackedAtKill = new Set(acked);

    server = await spawnServer(dataDir, args);
    const receiver = await WsTestClient.connect(server.wsUrl, alice);
    await receiver.waitForQueueEmpty(30_000);
    const byContent = new Map(contents.map((c, i) => [Buffer.from(c).toString('hex'), i]));
    const delivered = receiver.received.map((e) => byContent.get(Buffer.from(e.content).toString('hex')));
    assert.ok(delivered.every((i) => i !== undefined), 'only envelopes that were sent are delivered');
    assert.equal(new Set(delivered).size, delivered.length, 'each envelope once');
    const missing = [...ackedAtKill].filter((i) => !delivered.includes(i));
    assert.deepEqual(missing, [], `acknowledged envelopes lost in the crash (${ackedAtKill.size} acknowledged, ${delivered.length} delivered)`);
    assert.ok(delivered.length <= next, 'no more than were sent');
    await receiver.close();
    await sender.close().catch(() => undefined);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, 'clean shutdown on SIGTERM');
    assertCleanLog(server.output().split('\n').filter((l) => l.startsWith('{"level"')).join('\n'), 'second server log');
  });
});

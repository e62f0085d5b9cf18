// Two in-process server nodes sharing one PostgreSQL database and the NATS server on 127.0.0.1:4222
// (subjects under a prefix of their own): a message stored through node A reaches the device connected
// to node B; a device connecting to node B replaces its older socket on node A (4409); a re-registration
// through node A closes the old device's socket on node B (4401); presence set on one node is seen on the
// other. Skipped locally without PostgreSQL or NATS; in CI their absence fails the run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect } from 'nats';
import { PresenceResponseSchema } from '../../../src/protocol/gen/service_pb.ts';
import { decodeBody, fakeCiphertext, http, register, sendBody, WsTestClient, type TestAccount } from '../../support/server-client.ts';
import { startTestServer, type TestServer } from '../../support/server-harness.ts';
import { createTestDatabase, probePostgres, type TestDatabase } from '../../support/postgres.ts';
import { serviceTestOptions, tcpProbe } from '../../support/services.ts';

const NATS_URL = 'nats://127.0.0.1:4222';
const pgOptions = await serviceTestOptions('postgres', probePostgres);
const natsOptions = await serviceTestOptions('nats', tcpProbe('nats'));
const options = pgOptions.skip !== undefined ? pgOptions : natsOptions;

describe('two server nodes on PostgreSQL and NATS', options, () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  const prefix = `pcluster.${randomBytes(4).toString('hex')}`;

  before(async () => {
    db = await createTestDatabase();
    const node = (nodeId: string): Promise<TestServer> => startTestServer({ database: db.url, bus: `${NATS_URL}?prefix=${prefix}`, nodeId });
    a = await node('node-a');
    b = await node('node-b');
    alice = await register(a.url, '+15550100001', '111111');
    bob = await register(b.url, '+15550100002', '222222');
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    const nc = await natsConnect({ servers: NATS_URL });
    try {
      await (await nc.jetstreamManager()).streams.delete(`KV_${prefix.replace(/\./g, '_')}_presence`).catch(() => false);
    } finally {
      await nc.close();
    }
  });

  it('delivers a message sent through node A to the device connected to node B', async () => {
    const ws = await WsTestClient.connect(b.wsUrl, bob);
    try {
      await ws.waitForQueueEmpty();
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const content = fakeCiphertext(40, i);
        const started = performance.now();
        const r = await http(a.url, 'PUT', `/v1/messages/${bob.accountId}`, { auth: alice, body: sendBody([{ deviceId: 1, registrationId: bob.registrationId, content }]) });
        assert.equal(r.status, 200);
        await ws.waitForEnvelopes(i + 1);
        latencies.push(performance.now() - started);
        assert.deepEqual(Buffer.from(ws.received[i]?.content ?? []), Buffer.from(content));
      }
      latencies.sort((x, y) => x - y);
      console.log(`cluster: send through node A -> push from node B: median ${latencies[10]?.toFixed(1)} ms (HTTP send, PostgreSQL commit, NATS, push)`);
    } finally {
      await ws.close();
    }
  });

  it('closes the older socket of a device on node A when it connects to node B (4409)', async () => {
    const first = await WsTestClient.connect(a.wsUrl, alice);
    await first.waitForQueueEmpty();
    const second = await WsTestClient.connect(b.wsUrl, alice);
    try {
      const closed = await Promise.race([first.closed, new Promise<undefined>((r) => setTimeout(r, 5000, undefined))]);
      assert.equal(closed?.code, 4409);
      assert.equal(second.ws.readyState, second.ws.OPEN);
    } finally {
      await second.close();
    }
  });

  it('shows presence across nodes (online, then offline with a last-seen time)', async () => {
    const ws = await WsTestClient.connect(b.wsUrl, bob);
    try {
      let online = false;
      for (let i = 0; i < 100 && !online; i++) {
        const r = await http(a.url, 'GET', `/v1/presence/${bob.accountId}`, { auth: alice });
        online = decodeBody(PresenceResponseSchema, r.body).online;
        if (!online) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(online, true, 'node A sees bob online on node B');
    } finally {
      await ws.close();
    }
    let offline = false;
    for (let i = 0; i < 100 && !offline; i++) {
      const r = await http(a.url, 'GET', `/v1/presence/${bob.accountId}`, { auth: alice });
      const p = decodeBody(PresenceResponseSchema, r.body);
      offline = !p.online && p.lastSeen > 0n;
      if (!offline) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(offline, true, 'node A sees bob offline with a last-seen time');
  });

  it('closes the socket of a re-registered account on the other node (4401)', async () => {
    const ws = await WsTestClient.connect(b.wsUrl, bob);
    await ws.waitForQueueEmpty();
    bob = await register(a.url, '+15550100002', '222222');
    const closed = await Promise.race([ws.closed, new Promise<undefined>((r) => setTimeout(r, 5000, undefined))]);
    assert.equal(closed?.code, 4401);
  });
});

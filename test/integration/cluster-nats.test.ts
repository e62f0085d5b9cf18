// Parley as a cluster (issue 9): NATS killed and restarted under load loses nothing. Two `parley serve`
// processes on a fresh PostgreSQL database and a nats-server child of this test (JetStream, a free port);
// clients on one node send to clients on the other (1:1 and a group) while NATS is killed with SIGKILL and
// started again 2 s later. Sends go on being stored and acknowledged during the outage; once the nodes are
// back on NATS they re-read their devices' queues, and every acknowledged message arrives exactly once.
// Needs PostgreSQL on 127.0.0.1:5432 and the nats-server binary: skipped without them locally, failed in CI.
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { postgresTestOptions, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { inCi, type ServiceTestOptions } from '../support/services.ts';
import { Cluster, eventually, NatsServer, registerClient, scrape, uniquePrefix, type ClusterClient, type ClusterNode } from '../support/cluster.ts';
import { assertExactlyOnce, runLoad, type Flow } from '../support/cluster-load.ts';

function natsServerInstalled(): ServiceTestOptions {
  const probe = spawnSync('nats-server', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status === 0) return {};
  if (inCi()) throw new Error('nats-server is not installed: CI=true requires it');
  return { skip: 'nats-server not installed: skipped' };
}

const postgres = await postgresTestOptions();
const options = postgres.skip !== undefined ? postgres : natsServerInstalled();

describe('cluster: NATS restarted under load', { ...options, timeout: 600_000 }, () => {
  let db: TestDatabase;
  let nats: NatsServer;
  let cluster: Cluster;
  const clients: ClusterClient[] = [];

  before(async () => {
    db = await createTestDatabase();
    nats = await NatsServer.start();
    cluster = new Cluster({ databaseUrl: db.url, busUrl: `${nats.url}?prefix=${uniquePrefix()}` });
    await cluster.start(2);
  });

  after(async () => {
    for (const c of clients) await c.client.close();
    await cluster?.close();
    await nats?.close();
    await db?.drop();
  });

  it('loses nothing: every message acknowledged before, during and after the outage arrives exactly once', async (t) => {
    const [n1, n2] = cluster.nodes as [ClusterNode, ClusterNode];
    const on = async (node: ClusterNode): Promise<ClusterClient> => {
      const c = await registerClient(node.url);
      clients.push(c);
      return c;
    };
    // Every flow crosses nodes, so every delivery needs the bus.
    const a1 = await on(n1);
    const b1 = await on(n2);
    const a2 = await on(n2);
    const b2 = await on(n1);
    const g1 = await on(n1);
    const g2 = await on(n2);
    const g3 = await on(n2);
    const group = await g1.client.createGroup('outage', [g2.number, g3.number]);
    await eventually(async () => (await g2.client.group(group.id)) !== undefined && (await g3.client.group(group.id)) !== undefined, 30_000, 'the group to reach its members');
    const flows: Flow[] = [
      { from: a1, to: b1.number, receivers: [b1] },
      { from: a2, to: b2.number, receivers: [b2] },
      { from: g1, to: group.id, receivers: [g2, g3] },
    ];

    let restarted: Promise<void> | undefined;
    let ackedAtKill = 0;
    let ackedAtRestart = 0;
    let acked = 0;
    const load = await runLoad(flows, 50, 20, (n) => {
      acked = n;
      if (n !== 30) return;
      ackedAtKill = n;
      restarted = (async () => {
        await nats.kill('SIGKILL');
        await new Promise((r) => setTimeout(r, 2000));
        ackedAtRestart = acked;
        await nats.restart();
      })();
    });
    assert.ok(restarted !== undefined, 'NATS was killed');
    await restarted;
    const result = await assertExactlyOnce(flows, load, 90_000);
    t.diagnostic(`${result.acked} sends acknowledged (${ackedAtRestart - ackedAtKill} while NATS was down) and delivered once, ${result.failed} failed`);
    assert.ok(ackedAtRestart > ackedAtKill, 'sends were acknowledged while NATS was down');
    for (const node of [n1, n2]) {
      const m = await scrape(node.url);
      assert.equal(m.get('parley_bus_connected'), 1, `${node.name} is back on NATS`);
      assert.ok((m.get('parley_bus_resyncs_total') ?? 0) >= 1, `${node.name} re-read its devices' queues after the outage`);
    }
  });
});

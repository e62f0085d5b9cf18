// The push notifier's decisions (src/server/push/notifier.ts), on a real SQLite storage and the in-process
// bus seen through PushingBus, with the one network step (the request to the push service) counted instead
// of sent: connected devices are not pushed, an account's own sync copies do not wake it, a burst costs
// one push and at most one more per window (none once the queue was emptied), and in a cluster (presence
// says the account is online somewhere) a push waits for the grace period and is dropped when the envelope
// was acknowledged meanwhile. The flags --vapid-* are parsed and checked here too.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import webpush from 'web-push';
import { Registry } from 'prom-client';
import { parseServerArgs } from '../../../src/server/args.ts';
import type { PresenceDirectory } from '../../../src/server/bus/bus.ts';
import { LocalMessageBus } from '../../../src/server/bus/local.ts';
import type { AccountId, DeviceId, DeviceRef, PhoneNumber } from '../../../src/server/ids.ts';
import { createLogger } from '../../../src/server/log.ts';
import { PushingBus } from '../../../src/server/push/bus.ts';
import { resolvePushConfig } from '../../../src/server/push/config.ts';
import { PushNotifier } from '../../../src/server/push/notifier.ts';
import type { PushRequestOptions } from '../../../src/server/push/sender.ts';
import type { PushSubscriptionRecord } from '../../../src/server/storage/push-store.ts';
import { openSqliteStorage, type SqliteStorage } from '../../../src/server/storage/sqlite/index.ts';

const WINDOW_MS = 1000;
const GRACE_MS = 500;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Presence the test sets: accounts online "on another node". */
class TestPresence implements PresenceDirectory {
  readonly online = new Set<AccountId>();
  join(): void {}
  leave(): void {}
  isOnline(accountId: AccountId): boolean {
    return this.online.has(accountId);
  }
  onExpired(): () => void {
    return () => undefined;
  }
}

describe('push notifier', () => {
  let dir: string;
  let storage: SqliteStorage;
  let ref: DeviceRef;
  let accountId: AccountId;
  const other = '00000000-0000-4000-8000-0000000000bb' as AccountId;
  let sent: Array<{ subscription: PushSubscriptionRecord; options: PushRequestOptions }> = [];
  let notifier: PushNotifier;
  let bus: PushingBus;
  let presence: TestPresence;
  let seq = 0;

  const build = (withPresence: boolean): void => {
    presence = new TestPresence();
    const inner = new LocalMessageBus();
    notifier = new PushNotifier({
      store: storage.push,
      messages: storage.messages,
      vapid: webpush.generateVAPIDKeys(),
      config: resolvePushConfig({ minIntervalMs: WINDOW_MS, ackGraceMs: GRACE_MS }),
      presence: withPresence ? presence : undefined,
      logger: createLogger('warn', { write: () => undefined }),
      registry: new Registry(),
      transport: async (subscription, options) => {
        sent.push({ subscription, options });
        return 201;
      },
    });
    bus = new PushingBus(withPresence ? Object.assign(inner, { presence }) : inner, notifier);
  };
  /** Queues one envelope for the device and publishes it, as MessageService does. */
  const deliver = async (from: AccountId = other, type = 2): Promise<number> => {
    seq++;
    const r = await storage.messages.insert(
      [{ ref, guid: new Uint8Array(16).fill(seq % 256), type, sourceAccountId: from, sourceDeviceId: 1 as DeviceId, destinationDeviceId: 1 as DeviceId, timestamp: 1, serverTimestamp: 1, content: new Uint8Array([seq % 256]) }],
      { maxQueueDepth: 1000, now: 1 },
    );
    assert.equal(r.kind, 'stored');
    const [envelope] = r.kind === 'stored' ? r.envelopes : [];
    assert.ok(envelope !== undefined);
    bus.publishToDevice(ref, { kind: 'stored', envelope });
    return envelope.seq;
  };
  const emptyQueue = async (): Promise<void> => {
    for (const e of await storage.messages.page(ref, 0, 1000, 0)) await storage.messages.remove(ref, e.seq);
  };
  const untilIdle = async (): Promise<void> => {
    for (let i = 0; i < 200 && notifier.tracked > 0; i++) await sleep(20);
    assert.equal(notifier.tracked, 0);
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-push-notifier-'));
    storage = openSqliteStorage(dir);
    const key = { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) };
    const r = await storage.accounts.register({
      newAccountId: '00000000-0000-4000-8000-0000000000aa' as AccountId, number: '+15550300001' as PhoneNumber, identityKey: new Uint8Array(33).fill(5), registrationId: 1,
      passwordHash: new Uint8Array(32), deviceName: new Uint8Array(), signedPreKey: key, kyberLastResortKey: { ...key, id: 2 }, now: 1,
    });
    ref = r.device.ref;
    accountId = r.account.id;
    const ecdh = (await import('node:crypto')).createECDH('prime256v1');
    ecdh.generateKeys();
    await storage.push.put({ ref, accountId, endpoint: 'https://push.example.test/1', p256dh: new Uint8Array(ecdh.getPublicKey()), auth: new Uint8Array(16).fill(3), updatedAt: 1 });
  });
  beforeEach(async () => {
    await emptyQueue();
    sent = [];
  });
  after(async () => {
    await notifier.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes an unconnected device at once, with high urgency for messages and normal for group updates; never a connected one', async () => {
    build(false);
    await deliver();
    await sleep(200);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.options.urgency, 'high');
    assert.equal(sent[0]?.subscription.endpoint, 'https://push.example.test/1');
    await untilIdle();
    await deliver(other, 9);
    await sleep(200);
    assert.equal(sent[1]?.options.urgency, 'normal', 'a group update');
    await untilIdle();
    sent = [];
    const unsubscribe = bus.subscribeDevice(ref, () => undefined);
    await deliver();
    await sleep(WINDOW_MS + 100);
    assert.equal(sent.length, 0, 'connected here');
    unsubscribe();
    await notifier.close();
  });

  it('does not wake a device for its own account\'s sync copies', async () => {
    build(false);
    await deliver(accountId);
    await sleep(WINDOW_MS + 100);
    assert.equal(sent.length, 0);
    await notifier.close();
  });

  it('collapses a burst: one push, one more after the window while still queued, none once the queue was emptied', async () => {
    build(false);
    // At once (one write batch), so that the whole burst falls in the first window.
    await Promise.all(Array.from({ length: 30 }, () => deliver()));
    await sleep(200);
    assert.equal(sent.length, 1, 'the first at once');
    // More while the window is open: nothing now, one push when it closes (they are still unread).
    await Promise.all(Array.from({ length: 10 }, () => deliver()));
    await sleep(200);
    assert.equal(sent.length, 1, 'collapsed into the window');
    await sleep(WINDOW_MS + 100);
    assert.equal(sent.length, 2, 'one more for what arrived in the window, still unread');
    await untilIdle();
    sent = [];
    await Promise.all(Array.from({ length: 5 }, () => deliver()));
    await sleep(200);
    assert.equal(sent.length, 1);
    await deliver();
    await emptyQueue(); // the device came online on another node and read everything
    await sleep(WINDOW_MS + 100);
    assert.equal(sent.length, 1, 'nothing left to wake it for');
    await untilIdle();
    await notifier.close();
  });

  it('in a cluster, waits for the grace period when the account is online elsewhere, and pushes only if still unacknowledged', async () => {
    build(true);
    presence.online.add(accountId);
    await deliver();
    await sleep(GRACE_MS / 2);
    assert.equal(sent.length, 0, 'waiting: the device may be connected on another node');
    await sleep(GRACE_MS);
    assert.equal(sent.length, 1, 'still queued after the grace period: the device is not connected');
    await untilIdle();
    sent = [];
    await deliver();
    await sleep(GRACE_MS / 2);
    await emptyQueue(); // acknowledged by its socket on another node
    await sleep(GRACE_MS + WINDOW_MS);
    assert.equal(sent.length, 0, 'delivered elsewhere: no push');
    await untilIdle();
    presence.online.clear();
    await deliver();
    await sleep(200);
    assert.equal(sent.length, 1, 'account offline everywhere: at once');
    await notifier.close();
  });
});

describe('--vapid-* flags', () => {
  const keys = webpush.generateVAPIDKeys();
  it('take a key pair and a subject from flags or variables, and refuse a pair that does not belong together', () => {
    const parsed = parseServerArgs(['--vapid-public-key', keys.publicKey, '--vapid-private-key', keys.privateKey, '--vapid-subject', 'mailto:ops@example.org'], {});
    assert.equal(parsed.kind, 'run');
    assert.deepEqual(parsed.kind === 'run' ? parsed.options.push : undefined, { vapidPublicKey: keys.publicKey, vapidPrivateKey: keys.privateKey, vapidSubject: 'mailto:ops@example.org' });
    const env = parseServerArgs([], { PARLEY_VAPID_PUBLIC_KEY: keys.publicKey, PARLEY_VAPID_PRIVATE_KEY: keys.privateKey });
    assert.equal(env.kind === 'run' ? env.options.push?.vapidPrivateKey : undefined, keys.privateKey);
    const other = webpush.generateVAPIDKeys();
    assert.throws(() => parseServerArgs(['--vapid-public-key', other.publicKey, '--vapid-private-key', keys.privateKey], {}), /--vapid-public-key.*does not belong to the private key/);
    assert.throws(() => parseServerArgs(['--vapid-public-key', keys.publicKey], {}), /go together/);
    assert.throws(() => parseServerArgs(['--vapid-subject', 'http://example.org'], {}), /mailto: address or an https: URL/);
    assert.throws(() => resolvePushConfig({ vapidPublicKey: 'short', vapidPrivateKey: keys.privateKey }), /65-byte/);
  });
});

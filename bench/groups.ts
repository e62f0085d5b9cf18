// `npm run bench:groups`: one message to a group of 1,024 members, each with one device online over a real
// WebSocket on loopback. The server runs in a child process (bench/server-child.ts); the devices run here
// and answer every push with 200 at once. The sender creates a real sender key (src/protocol with the
// node:crypto provider) and each round encrypts one real SenderKeyMessage and uploads it with
// PUT /v1/groups/{id}/messages over its socket. Measured per round: the sender's groupEncrypt time, the
// upload (request to response: the server checks the devices digest, stores the content once, queues it
// for 1,023 devices and fsyncs), and the time from submission to the LAST device's receipt of the push.
// After timing, a sample of devices processes the sender key distribution message and decrypts what it
// received. Flags: --rounds N (default 20, after one cold round reported apart), --members N (default 1,024).
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createHash, randomBytes } from 'node:crypto';
import { NodeCryptoProvider } from '../src/node/crypto-provider.ts';
import { ProtocolAddress } from '../src/protocol/address.ts';
import { SenderKeyDistributionMessage } from '../src/protocol/sender-key-messages.ts';
import { createSenderKeyDistributionMessage, groupDecrypt, groupEncrypt, InMemorySenderKeyStore, processSenderKeyDistributionMessage } from '../src/protocol/sender-keys.ts';
import { CreateGroupRequestSchema, GroupDevicesSchema, SendGroupMessageRequestSchema, type GroupDevices } from '../src/protocol/gen/service_pb.ts';
import type { BenchCredentials } from './relay-server.ts';
import { BenchDevice } from './relay-wire.ts';
import { ServerChild } from './server-child.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = Math.max(1, Math.min(flag('--rounds', 20), 200));
const MEMBERS = Math.max(2, Math.min(flag('--members', 1024), 1024));
/** Longest wait for one round's deliveries (or for the creation updates) before the bench gives up. */
const ROUND_TIMEOUT_MS = 30_000;
const SAMPLE = 16;
const TARGET_MS = 250;

const crypto = new NodeCryptoProvider();
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const summary = (values: readonly number[]): string => `p50 ${fmt(percentile(values, 50))}, p99 ${fmt(percentile(values, 99))}, max ${fmt(Math.max(...values))}`;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** An HTTP request as `who` (setup only). */
async function request(url: string, who: BenchCredentials, verb: string, path: string, body?: Uint8Array): Promise<Uint8Array> {
  const response = await fetch(`${url}${path}`, {
    method: verb,
    headers: { authorization: `Basic ${Buffer.from(`${who.login}:${who.password}`).toString('base64')}`, 'content-type': 'application/x-protobuf' },
    body: body === undefined ? undefined : new Uint8Array(body),
  });
  if (response.status !== 200) throw new Error(`${verb} ${path}: ${response.status} ${response.headers.get('x-parley-error') ?? ''}`);
  return new Uint8Array(await response.arrayBuffer());
}

function digestOf(devices: GroupDevices): Uint8Array {
  const hash = createHash('sha256');
  for (const d of devices.devices) hash.update(`${d.accountId}.${d.deviceId}.${d.registrationId}\n`);
  return new Uint8Array(hash.digest());
}

/** Resolves once `done()` holds, polling every millisecond; rejects after the timeout. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + ROUND_TIMEOUT_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** The receiving side: per device, the contents it got, and the time of the latest. */
class Receivers {
  readonly received: Uint8Array[][];
  count = 0;
  lastAt = 0;

  constructor(size: number) {
    this.received = Array.from({ length: size }, () => []);
  }

  /** Forgets what arrived so far (the creation updates). */
  reset(): void {
    for (const list of this.received) list.length = 0;
    this.count = 0;
  }

  handler(index: number): (content: Uint8Array) => void {
    return (content) => {
      this.received[index]?.push(content);
      this.count++;
      this.lastAt = performance.now();
    };
  }
}

async function main(): Promise<void> {
  console.log(`bench:groups: Node ${process.version}, loopback; a group of ${MEMBERS} members, one device each, all online; ${ROUNDS} rounds`);
  const server = new ServerChild({
    rateLimits: {
      messagesPerSender: { capacity: 1e9, windowMs: 1000 },
      requestsPerConnection: { capacity: 1e9, windowMs: 1000 },
      groupChangesPerAccount: { capacity: 1e9, windowMs: 1000 },
    },
  });
  try {
    await server.start();
    const creds = await server.provision(MEMBERS);
    const [senderCreds, ...others] = creds as [BenchCredentials, ...BenchCredentials[]];
    const receivers = new Receivers(others.length);
    const devices = await Promise.all(others.map((c, i) => BenchDevice.connect(server.wsUrl, c, receivers.handler(i))));
    const sender = await BenchDevice.connect(server.wsUrl, senderCreds);
    await until(() => devices.every((d) => d.queueEmpty) && sender.queueEmpty, 'the devices to connect');

    const groupId = randomBytes(16).toString('hex');
    const createBody = toBinary(CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: others.map((c) => c.accountId) }));
    await request(server.url, senderCreds, 'PUT', `/v1/groups/${groupId}`, createBody);
    const groupDevices = fromBinary(GroupDevicesSchema, await request(server.url, senderCreds, 'GET', `/v1/groups/${groupId}/devices`));
    const digest = digestOf(groupDevices);
    // Every device gets the creation update (type 9) first; wait for those before timing.
    await until(() => receivers.count >= others.length, 'the creation updates');
    receivers.reset();

    const address = new ProtocolAddress(senderCreds.accountId, 1);
    const distributionId = globalThis.crypto.randomUUID();
    const senderStore = new InMemorySenderKeyStore();
    const skdm = await createSenderKeyDistributionMessage(crypto, senderStore, address, distributionId);
    const path = utf8(`/v1/groups/${groupId}/messages`);

    const encryptMs: number[] = [];
    const uploadMs: number[] = [];
    const lastMs: number[] = [];
    // Round 0 is a cold start (queue depths counted from the table, code not optimised yet): reported apart.
    for (let round = 0; round <= ROUNDS; round++) {
      const plaintext = utf8(`round ${round}: hello, group`);
      const encryptStart = performance.now();
      const message = await groupEncrypt(crypto, senderStore, address, distributionId, plaintext);
      encryptMs.push(performance.now() - encryptStart);
      const body = toBinary(SendGroupMessageRequestSchema, create(SendGroupMessageRequestSchema, { content: message.serialized, timestamp: BigInt(Date.now()), devicesDigest: digest }));
      const expected = receivers.count + others.length;
      const submitted = performance.now();
      const status = await sender.send(path, body);
      uploadMs.push(performance.now() - submitted);
      if (status !== 200) throw new Error(`group send refused: ${status}`);
      await until(() => receivers.count >= expected, `round ${round}'s deliveries`);
      lastMs.push(receivers.lastAt - submitted);
    }

    const [coldEncrypt, coldUpload, coldLast] = [encryptMs.shift(), uploadMs.shift(), lastMs.shift()].map((v) => v ?? NaN) as [number, number, number];
    console.log(`first (cold) round: groupEncrypt ${fmt(coldEncrypt)}, upload ${fmt(coldUpload)}, last receipt ${fmt(coldLast)}; the ${ROUNDS} rounds after it:`);
    console.log('sender');
    console.log(`  groupEncrypt: ${summary(encryptMs)}`);
    console.log(`  upload (request to response, stored once for ${groupDevices.devices.length} devices, fsync'd): ${summary(uploadMs)}`);
    console.log(`submission to the last of ${others.length} devices' receipt of the push`);
    console.log(`  ${summary(lastMs)} (target: under ${TARGET_MS} ms)`);

    await verifySample(receivers, others, address, skdm, ROUNDS + 1);
    await Promise.all([...devices, sender].map((d) => d.close()));
  } finally {
    await server.stop();
  }
}

/** A sample of devices processes the distribution message and decrypts every round it received, in order. */
async function verifySample(receivers: Receivers, others: readonly BenchCredentials[], sender: ProtocolAddress, skdm: SenderKeyDistributionMessage, rounds: number): Promise<void> {
  const step = Math.max(1, Math.floor(others.length / SAMPLE));
  let checked = 0;
  for (let i = 0; i < others.length; i += step) {
    const store = new InMemorySenderKeyStore();
    await processSenderKeyDistributionMessage(crypto, sender, SenderKeyDistributionMessage.deserialize(skdm.serialized), store);
    const messages = receivers.received[i] ?? [];
    if (messages.length !== rounds) throw new Error(`device ${i} received ${messages.length} messages, expected ${rounds}`);
    for (const [round, content] of messages.entries()) {
      const text = new TextDecoder().decode(await groupDecrypt(crypto, store, sender, content));
      if (text !== `round ${round}: hello, group`) throw new Error(`device ${i} decrypted the wrong text`);
    }
    checked++;
  }
  console.log(`verified: ${checked} sampled devices decrypted all ${rounds} messages with the sender key distribution message`);
}

await main();

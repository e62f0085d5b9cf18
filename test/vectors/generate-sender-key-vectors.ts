// Writes test/vectors/sender-keys.json: Sender Keys wire messages and safety numbers produced by the oracle,
// libsignal-client 0.90.0, so that the pure unit tests (which also run in the browser) prove wire
// compatibility without loading libsignal. Node only.
//
//   node --import tsx test/vectors/generate-sender-key-vectors.ts
//
// The messages are random (fresh chain key, signing key and XEdDSA nonces) on every run; the fingerprints of
// fixed keys are deterministic. Regenerate only when the oracle changes, and keep the old file's messages
// decrypting (they are what earlier releases put on the wire).
import { writeFileSync } from 'node:fs';
import * as ls from '@signalapp/libsignal-client';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(h, 'hex'));
const utf8 = (s: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(s, 'utf8'));

class Store extends ls.SenderKeyStore {
  readonly #records = new Map<string, ls.SenderKeyRecord>();
  async saveSenderKey(sender: ls.ProtocolAddress, distributionId: ls.Uuid, record: ls.SenderKeyRecord): Promise<void> {
    this.#records.set(`${sender.toString()}/${distributionId}`, record);
  }
  async getSenderKey(sender: ls.ProtocolAddress, distributionId: ls.Uuid): Promise<ls.SenderKeyRecord | null> {
    return this.#records.get(`${sender.toString()}/${distributionId}`) ?? null;
  }
}

async function senderKeys(): Promise<object> {
  const sender = { name: 'a1b2c3d4-0000-4000-8000-00000000aaaa', deviceId: 1 };
  const distributionId = 'd1d1d1d1-7000-11eb-b32a-33b8a8a487a6';
  const store = new Store();
  const address = ls.ProtocolAddress.new(sender.name, sender.deviceId);
  const skdm = await ls.SenderKeyDistributionMessage.create(address, distributionId, store);
  const plaintexts = ['first', '', 'third message', 'x'.repeat(100), 'a message of exactly thirty-two!'];
  const messages = [];
  for (const [iteration, text] of plaintexts.entries()) {
    const ciphertext = await ls.groupEncrypt(address, distributionId, store, utf8(text));
    messages.push({ iteration, plaintext: toHex(utf8(text)), serialized: toHex(ciphertext.serialize()) });
  }
  return { sender, distributionId, skdm: toHex(skdm.serialize()), chainId: skdm.chainId(), messages };
}

function fingerprint(iterations: number, version: number, local: { id: Uint8Array<ArrayBuffer>; key: string }, remote: { id: Uint8Array<ArrayBuffer>; key: string }): object {
  const localKey = ls.PublicKey.deserialize(fromHex(local.key));
  const remoteKey = ls.PublicKey.deserialize(fromHex(remote.key));
  const ours = ls.Fingerprint.new(iterations, version, local.id, localKey, remote.id, remoteKey);
  const theirs = ls.Fingerprint.new(iterations, version, remote.id, remoteKey, local.id, localKey);
  return {
    iterations,
    version,
    localIdentifier: toHex(local.id),
    localKey: local.key,
    remoteIdentifier: toHex(remote.id),
    remoteKey: remote.key,
    displayable: ours.displayableFingerprint().toString(),
    localScannable: toHex(ours.scannableFingerprint().toBuffer()),
    remoteScannable: toHex(theirs.scannableFingerprint().toBuffer()),
  };
}

// libsignal's own fingerprint test keys and phone-number identifiers (rust/protocol/src/fingerprint.rs).
const ALICE = { id: utf8('+14152222222'), key: '0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868' };
const BOB = { id: utf8('+14153333333'), key: '05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b' };
// Service-id identifiers (16-byte ACI UUIDs), as version 2 uses them.
const CAROL = { id: fromHex('6c1a2f0e5b7d4e2a9c3b8d1f0a2e4c6b'), key: '05' + 'a3'.repeat(31) + '1c' };
const DAVE = { id: fromHex('0f1e2d3c4b5a69788796a5b4c3d2e1f0'), key: '05' + '17'.repeat(31) + '42' };

const vectors = {
  generator: 'test/vectors/generate-sender-key-vectors.ts',
  oracle: '@signalapp/libsignal-client 0.90.0',
  senderKeys: await senderKeys(),
  fingerprints: [fingerprint(5200, 2, ALICE, BOB), fingerprint(5200, 1, ALICE, BOB), fingerprint(5200, 2, CAROL, DAVE), fingerprint(1024, 2, DAVE, CAROL)],
};

const out = new URL('./sender-keys.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${out.pathname}`);

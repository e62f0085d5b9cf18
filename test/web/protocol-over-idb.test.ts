// The protocol core on the browser store, as the SDK drives it (src/client/protocol-stores.ts over a store
// transaction): Bob's keys, prekeys and sessions live in IndexedDB, sealed; the page "reloads" (the store is
// closed and opened again) between messages; a message that fails to decrypt leaves the stored session as it
// was. Alice is the in-memory test peer of the protocol tests. Runs in Chromium (WebCrypto provider).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountId, E164 } from '../../src/client/ids.ts';
import { protocolStores } from '../../src/client/protocol-stores.ts';
import type { StoreTx } from '../../src/client/store/types.ts';
import {
  CiphertextMessageType,
  KeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PreKeySignalMessage,
  ProtocolAddress,
  SignalMessage,
  SignedPreKeyRecord,
  generateRegistrationId,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
  utf8,
} from '../../src/protocol/index.ts';
import { openBrowserStore, storeDatabaseName, type BrowserClientStore } from '../../src/web/store/index.ts';
import { ParleyPeer, T0, type BundleBytes, type Wire } from '../support/parley-peer.ts';
import { provider } from '../support/provider.ts';

const ALICE = new ProtocolAddress('alice', 1);
const text = new TextDecoder();

async function decryptAt(tx: StoreTx, wire: Wire): Promise<Uint8Array> {
  const stores = protocolStores(tx, T0);
  return wire.type === CiphertextMessageType.PreKey
    ? signalDecryptPreKey(provider, PreKeySignalMessage.deserialize(wire.body), ALICE, stores)
    : signalDecrypt(provider, SignalMessage.deserialize(wire.body), ALICE, stores);
}

async function encryptAt(tx: StoreTx, message: string): Promise<Wire> {
  const m = await signalEncrypt(provider, utf8(message), ALICE, protocolStores(tx, T0), T0);
  return { type: m.type, body: m.serialized };
}

describe('the protocol core over the browser store', () => {
  it('sets up a session from prekeys in IndexedDB and keeps it across reloads; a failed decrypt changes nothing', async () => {
    const name = `test-protocol-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    let bob: BrowserClientStore = await openBrowserStore(name);
    const reload = async (): Promise<void> => {
      await bob.close();
      bob = await openBrowserStore(name);
    };
    try {
      const identity = await KeyPair.generate(provider);
      const registrationId = generateRegistrationId(provider);
      await bob.transaction(async (tx) => {
        await tx.account.put({
          serverUrl: 'http://127.0.0.1:1',
          number: '+15550100002' as E164,
          accountId: 'bob' as AccountId,
          deviceId: 1,
          password: 'pw',
          registrationId,
          identityPublicKey: identity.publicKey.serialized,
          identityPrivateKey: identity.privateKey.serialize(),
          registeredAt: T0,
        });
        const stores = protocolStores(tx, T0);
        await stores.signedPreKeys.storeSignedPreKey(7, await SignedPreKeyRecord.generate(provider, identity, 7, T0));
        await stores.kyberPreKeys.storeKyberPreKey(9, KyberPreKeyRecord.generate(provider, identity, 9, T0), { lastResort: true });
        await stores.preKeys.storePreKey(1, await PreKeyRecord.generate(provider, 1));
      });
      await reload();

      // Bob's bundle, as his device would upload it, read back from IndexedDB.
      const bundle: BundleBytes = await bob.transaction(async (tx) => {
        const stores = protocolStores(tx, T0);
        const spk = await stores.signedPreKeys.getSignedPreKey(7);
        const kyber = await stores.kyberPreKeys.getKyberPreKey(9);
        const pk = await stores.preKeys.getPreKey(1);
        return {
          registrationId,
          deviceId: 1,
          preKeyId: 1,
          preKey: pk.keyPair.publicKey.serialized,
          signedPreKeyId: 7,
          signedPreKey: spk.keyPair.publicKey.serialized,
          signedPreKeySignature: spk.signature,
          kyberPreKeyId: 9,
          kyberPreKey: kyber.keyPair.publicKey.serialize(),
          kyberPreKeySignature: kyber.signature,
          identityKey: identity.publicKey.serialized,
        };
      });

      const alice = await ParleyPeer.create(provider, 'alice');
      await alice.processBundle('bob', bundle);
      const first = await alice.encrypt('bob', utf8('hello bob'));
      assert.equal(first.type, CiphertextMessageType.PreKey);
      assert.equal(text.decode(await bob.transaction((tx) => decryptAt(tx, first))), 'hello bob');
      await reload();
      await bob.transaction(async (tx) => {
        assert.equal(await tx.preKeys.get(1), undefined, 'the one-time prekey is used up, durably');
        assert.deepEqual(await tx.sessions.devices('alice' as AccountId), [1]);
        assert.equal((await tx.identities.get('alice' as AccountId))?.identityKey.length, 33);
      });

      // A conversation with a reload every few messages.
      for (let i = 0; i < 12; i++) {
        const reply = await bob.transaction((tx) => encryptAt(tx, `bob ${i}`));
        assert.equal(text.decode(await alice.decrypt('bob', reply)), `bob ${i}`);
        const next = await alice.encrypt('bob', utf8(`alice ${i}`));
        assert.equal(text.decode(await bob.transaction((tx) => decryptAt(tx, next))), `alice ${i}`);
        if (i % 4 === 3) await reload();
      }

      // A tampered message: decryption fails inside the transaction, which rolls back; the session is intact.
      const good = await alice.encrypt('bob', utf8('after the bad one'));
      const bad: Wire = { type: good.type, body: good.body.slice() };
      bad.body[bad.body.length - 1] = (bad.body[bad.body.length - 1] as number) ^ 1;
      const before = await bob.transaction((tx) => tx.sessions.get('alice' as AccountId, 1));
      await assert.rejects(bob.transaction((tx) => decryptAt(tx, bad)));
      assert.deepEqual(await bob.transaction((tx) => tx.sessions.get('alice' as AccountId, 1)), before);
      await reload();
      assert.equal(text.decode(await bob.transaction((tx) => decryptAt(tx, good))), 'after the bad one');
    } finally {
      await bob.destroy();
      assert.ok(!(await indexedDB.databases()).some((d) => d.name === storeDatabaseName(name)));
    }
  });
});

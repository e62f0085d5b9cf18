// Linked devices (src/protocol/device-identity.ts): account, device and device-list signatures with the
// byte layouts of docs/multi-device.md, their decoders, and verifySignedDeviceList refusing every tamper.
// Isomorphic: only src/protocol and test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  accountSignatureMessage,
  concatBytes,
  createAccountSignature,
  createDeviceIdentity,
  createSignedDeviceList,
  decodeDeviceIdentity,
  decodeDeviceIdentityDetails,
  decodeDeviceList,
  decodeSignedDeviceList,
  deviceListSignatureMessage,
  deviceSignatureMessage,
  encodeDeviceIdentity,
  encodeDeviceIdentityDetails,
  encodeDeviceList,
  encodeSignedDeviceList,
  KeyPair,
  ProtocolErrorCode,
  PublicKey,
  verifyAccountSignature,
  verifyDeviceIdentity,
  verifySignedDeviceList,
  type DeviceIdentity,
  type DeviceListEntry,
  type SignedDeviceList,
} from '../../../src/protocol/index.ts';
import { DeviceIdentitySchema, DeviceListEntrySchema, DeviceListSchema, SignedDeviceListSchema } from '../../../src/protocol/gen/service_pb.ts';
import { expectCode, expectCodeSync } from '../../support/expect.ts';
import { provider } from '../../support/provider.ts';
import { flip } from '../../support/tamper.ts';

const Code = ProtocolErrorCode;
const ACCOUNT = '6f1c2a9e-4b1d-4c3e-9a7f-0d2e5b8c1a34';
const OTHER_ACCOUNT = '0b7e8d2c-1f4a-4e6b-8c9d-3a5f7e1b2c90';
const NOW = 1_700_000_000_000;

interface Companion {
  readonly deviceId: number;
  readonly keys: KeyPair;
  readonly identity: DeviceIdentity;
}

/** The whole link as the two sides run it: the primary signs, the companion verifies and counter-signs. */
async function link(account: KeyPair, deviceId: number, accountId = ACCOUNT): Promise<Companion> {
  const keys = await KeyPair.generate(provider);
  const details = encodeDeviceIdentityDetails({ accountId, deviceId, timestamp: NOW });
  const accountSignature = createAccountSignature(provider, account, details, keys.publicKey);
  const identity = await createDeviceIdentity(provider, keys, account.publicKey, details, accountSignature, { accountId, deviceId });
  return { deviceId, keys, identity };
}

async function setUp(count = 2): Promise<{ account: KeyPair; companions: Companion[]; signed: SignedDeviceList }> {
  const account = await KeyPair.generate(provider);
  const companions: Companion[] = [];
  for (let i = 0; i < count; i++) companions.push(await link(account, i + 2));
  const signed = createSignedDeviceList(provider, account, {
    accountId: ACCOUNT,
    version: 7n,
    timestamp: NOW,
    devices: companions.map((c) => ({ deviceId: c.deviceId, identity: c.identity })),
  });
  return { account, companions, signed };
}

/** A list re-signed by `account` over `mutate(list)`, so that only the tampered entries can fail. */
function resign(account: KeyPair, signed: SignedDeviceList, mutate: (list: ReturnType<typeof decodeDeviceList>) => void): SignedDeviceList {
  const list = decodeDeviceList(signed.list);
  mutate(list);
  const bytes = toBinary(DeviceListSchema, list);
  return create(SignedDeviceListSchema, { list: bytes, signature: account.sign(provider, deviceListSignatureMessage(bytes)) });
}

/** True when `fn` returns without throwing. */
function decodes(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function withIdentity(identity: DeviceIdentity, change: Partial<Pick<DeviceIdentity, 'details' | 'identityKey' | 'accountSignature' | 'deviceSignature'>>): DeviceIdentity {
  return create(DeviceIdentitySchema, { ...identity, ...change });
}

describe('signed messages', () => {
  it('have the byte layouts of docs/multi-device.md', async () => {
    const account = await KeyPair.generate(provider);
    const companion = await KeyPair.generate(provider);
    const details = encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 3, timestamp: NOW });
    assert.deepEqual(accountSignatureMessage(details, companion.publicKey), concatBytes(new Uint8Array([6, 0]), details, companion.publicKey.serialized));
    assert.deepEqual(
      deviceSignatureMessage(details, companion.publicKey, account.publicKey),
      concatBytes(new Uint8Array([6, 1]), details, companion.publicKey.serialized, account.publicKey.serialized),
    );
    const list = encodeDeviceList({ accountId: ACCOUNT, version: 1, timestamp: NOW, devices: [] });
    assert.deepEqual(deviceListSignatureMessage(list), concatBytes(new Uint8Array([6, 2]), list));
  });

  it('are plain XEdDSA signatures over those bytes', async () => {
    const { account, companions, signed } = await setUp(1);
    const c = companions[0] as Companion;
    assert.equal(await account.publicKey.verifySignature(provider, accountSignatureMessage(c.identity.details, c.keys.publicKey), c.identity.accountSignature), true);
    assert.equal(await c.keys.publicKey.verifySignature(provider, deviceSignatureMessage(c.identity.details, c.keys.publicKey, account.publicKey), c.identity.deviceSignature), true);
    assert.equal(await account.publicKey.verifySignature(provider, deviceListSignatureMessage(signed.list), signed.signature), true);
  });

  it('each verify only under their own prefix', async () => {
    const account = await KeyPair.generate(provider);
    const companion = await KeyPair.generate(provider);
    const details = encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 2, timestamp: NOW });
    // A signature over the device-signature or list layout (same key) is no account signature.
    const wrongPrefix = account.sign(provider, concatBytes(new Uint8Array([6, 1]), details, companion.publicKey.serialized));
    await expectCode(verifyAccountSignature(provider, account.publicKey, details, companion.publicKey, wrongPrefix), Code.InvalidDeviceIdentity, 'account signature under 0x06 0x01');
    const noPrefix = account.sign(provider, concatBytes(details, companion.publicKey.serialized));
    await expectCode(verifyAccountSignature(provider, account.publicKey, details, companion.publicKey, noPrefix), Code.InvalidDeviceIdentity, 'account signature without a prefix');
    // A list signature made over the account-signature prefix does not verify as a list signature.
    const list = encodeDeviceList({ accountId: ACCOUNT, version: 1, timestamp: NOW, devices: [] });
    const listUnderWrongPrefix = create(SignedDeviceListSchema, { list, signature: account.sign(provider, concatBytes(new Uint8Array([6, 0]), list)) });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, listUnderWrongPrefix, ACCOUNT), Code.InvalidDeviceList, 'list signature under 0x06 0x00');
    // A device signature made over the account layout is refused.
    const good = await createDeviceIdentity(provider, companion, account.publicKey, details, createAccountSignature(provider, account, details, companion.publicKey), { accountId: ACCOUNT, deviceId: 2 });
    const swappedLayout = withIdentity(good, { deviceSignature: companion.sign(provider, accountSignatureMessage(details, companion.publicKey)) });
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, swappedLayout, { accountId: ACCOUNT, deviceId: 2 }), Code.InvalidDeviceIdentity, 'device signature over the account layout');
  });
});

describe('details and identities', () => {
  it('round-trip', async () => {
    const details = { accountId: ACCOUNT, deviceId: 5, timestamp: NOW };
    assert.deepEqual(decodeDeviceIdentityDetails(encodeDeviceIdentityDetails(details)), details);
    const { account, companions } = await setUp(1);
    const c = companions[0] as Companion;
    const bytes = encodeDeviceIdentity(c.identity);
    const verified = await verifyDeviceIdentity(provider, account.publicKey, bytes, { accountId: ACCOUNT, deviceId: 2 });
    assert.equal(verified.deviceId, 2);
    assert.ok(verified.identityKey.equals(c.keys.publicKey));
    assert.deepEqual(verified.details, { accountId: ACCOUNT, deviceId: 2, timestamp: NOW });
    assert.deepEqual(decodeDeviceIdentity(bytes).deviceSignature, c.identity.deviceSignature);
  });

  it('refuses bad arguments when encoding', () => {
    expectCodeSync(() => encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 1, timestamp: NOW }), Code.InvalidArgument, 'device 1');
    expectCodeSync(() => encodeDeviceIdentityDetails({ accountId: '', deviceId: 2, timestamp: NOW }), Code.InvalidArgument, 'no account');
    expectCodeSync(() => encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 2, timestamp: -1 }), Code.InvalidArgument, 'negative time');
    expectCodeSync(() => encodeDeviceList({ accountId: ACCOUNT, version: 1, timestamp: NOW, devices: [2, 3, 4, 5, 6].map((deviceId) => ({ deviceId, identity: create(DeviceIdentitySchema) })) }), Code.InvalidArgument, 'five companions');
  });

  it('decoders refuse malformed bytes with InvalidMessage', () => {
    for (const bytes of [new Uint8Array(0), new Uint8Array([0xff, 0xff, 0xff]), new Uint8Array([0x0a, 0x10, 0x41])]) {
      expectCodeSync(() => decodeDeviceIdentityDetails(bytes), Code.InvalidMessage, 'details');
      expectCodeSync(() => decodeDeviceIdentity(bytes), Code.InvalidMessage, 'identity');
      expectCodeSync(() => decodeSignedDeviceList(bytes), Code.InvalidMessage, 'signed list');
    }
    expectCodeSync(() => decodeDeviceList(new Uint8Array([0xff, 0xff, 0xff])), Code.InvalidMessage, 'list');
    expectCodeSync(() => decodeDeviceList(new Uint8Array(17 * 1024)), Code.InvalidMessage, 'oversized list');
    // Details without an account id or device id.
    expectCodeSync(() => decodeDeviceIdentityDetails(new Uint8Array([0x10, 0x02])), Code.InvalidMessage, 'no account id');
    expectCodeSync(() => decodeDeviceIdentityDetails(new Uint8Array([0x0a, 0x01, 0x41])), Code.InvalidMessage, 'no device id');
  });

  it('the companion refuses an account signature that does not verify, or details for another account or device', async () => {
    const account = await KeyPair.generate(provider);
    const impostor = await KeyPair.generate(provider);
    const companion = await KeyPair.generate(provider);
    const details = encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 3, timestamp: NOW });
    const forged = createAccountSignature(provider, impostor, details, companion.publicKey);
    await expectCode(createDeviceIdentity(provider, companion, account.publicKey, details, forged, { accountId: ACCOUNT, deviceId: 3 }), Code.InvalidDeviceIdentity, 'forged');
    const good = createAccountSignature(provider, account, details, companion.publicKey);
    await expectCode(createDeviceIdentity(provider, companion, account.publicKey, details, good, { accountId: ACCOUNT, deviceId: 4 }), Code.InvalidDeviceIdentity, 'other device id');
    await expectCode(createDeviceIdentity(provider, companion, account.publicKey, details, good, { accountId: OTHER_ACCOUNT, deviceId: 3 }), Code.InvalidDeviceIdentity, 'other account');
    // Signed for another companion key.
    const other = await KeyPair.generate(provider);
    const forOther = createAccountSignature(provider, account, details, other.publicKey);
    await expectCode(createDeviceIdentity(provider, companion, account.publicKey, details, forOther, { accountId: ACCOUNT, deviceId: 3 }), Code.InvalidDeviceIdentity, 'other key');
  });

  it('verifyDeviceIdentity refuses every byte flip in every signed part', async () => {
    const { account, companions } = await setUp(1);
    const c = companions[0] as Companion;
    const expected = { accountId: ACCOUNT, deviceId: 2 };
    const id = c.identity;
    // A flip in the details either breaks their encoding (InvalidMessage) or changes what was signed.
    for (let i = 0; i < id.details.length; i++) {
      const details = flip(id.details, i, 0x40);
      const code = decodes(() => decodeDeviceIdentityDetails(details)) ? Code.InvalidDeviceIdentity : Code.InvalidMessage;
      await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { details }), expected), code, `details byte ${i}`);
    }
    for (let i = 0; i < 64; i++) {
      await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { accountSignature: flip(id.accountSignature, i) }), expected), Code.InvalidDeviceIdentity, `account signature byte ${i}`);
      await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { deviceSignature: flip(id.deviceSignature, i) }), expected), Code.InvalidDeviceIdentity, `device signature byte ${i}`);
    }
    // A flip in the key either makes it no canonical point (InvalidMessage) or another key the signatures do not cover.
    for (let i = 1; i < 33; i++) {
      const identityKey = flip(id.identityKey, i);
      const code = decodes(() => PublicKey.deserialize(identityKey).isCanonical() || assert.fail('not canonical')) ? Code.InvalidDeviceIdentity : Code.InvalidMessage;
      await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { identityKey }), expected), code, `key byte ${i}`);
    }
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { identityKey: flip(id.identityKey, 0) }), expected), Code.InvalidMessage, 'key type byte');
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(id, { accountSignature: id.accountSignature.subarray(1) }), expected), Code.InvalidMessage, 'short signature');
  });

  it('verifyDeviceIdentity refuses swapped keys and signatures', async () => {
    const { account, companions } = await setUp(2);
    const [a, b] = companions as [Companion, Companion];
    const expected = { accountId: ACCOUNT, deviceId: 2 };
    // Another companion's key in this identity.
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(a.identity, { identityKey: b.identity.identityKey }), expected), Code.InvalidDeviceIdentity, 'swapped key');
    // The account key as the companion's key.
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(a.identity, { identityKey: account.publicKey.serialized }), expected), Code.InvalidDeviceIdentity, 'account key as companion key');
    // The two signatures swapped.
    await expectCode(
      verifyDeviceIdentity(provider, account.publicKey, withIdentity(a.identity, { accountSignature: a.identity.deviceSignature, deviceSignature: a.identity.accountSignature }), expected),
      Code.InvalidDeviceIdentity,
      'swapped signatures',
    );
    // Verified against another account key.
    const other = await KeyPair.generate(provider);
    await expectCode(verifyDeviceIdentity(provider, other.publicKey, a.identity, expected), Code.InvalidDeviceIdentity, 'other account key');
    // A forged identity: the companion's own key signs both parts.
    const forgedAccountSignature = a.keys.sign(provider, accountSignatureMessage(a.identity.details, a.keys.publicKey));
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, withIdentity(a.identity, { accountSignature: forgedAccountSignature }), expected), Code.InvalidDeviceIdentity, 'self-signed');
    // Wrong account or device id expected.
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, a.identity, { accountId: OTHER_ACCOUNT, deviceId: 2 }), Code.InvalidDeviceIdentity, 'wrong account');
    await expectCode(verifyDeviceIdentity(provider, account.publicKey, a.identity, { accountId: ACCOUNT, deviceId: 3 }), Code.InvalidDeviceIdentity, 'wrong device id');
  });
});

describe('verifySignedDeviceList', () => {
  it('returns the verified companions, from the message or its bytes', async () => {
    const { account, companions, signed } = await setUp(4);
    for (const input of [signed, encodeSignedDeviceList(signed)]) {
      const verified = await verifySignedDeviceList(provider, account.publicKey, input, ACCOUNT);
      assert.equal(verified.version, 7n);
      assert.equal(verified.timestamp, NOW);
      assert.equal(verified.accountId, ACCOUNT);
      assert.deepEqual([...verified.devices.keys()], [2, 3, 4, 5]);
      for (const c of companions) assert.ok(verified.devices.get(c.deviceId)?.equals(c.keys.publicKey));
      assert.deepEqual(
        verified.entries.map((e) => e.deviceId),
        [2, 3, 4, 5],
      );
    }
  });

  it('accepts an empty list (every companion removed)', async () => {
    const account = await KeyPair.generate(provider);
    const signed = createSignedDeviceList(provider, account, { accountId: ACCOUNT, version: 2, timestamp: NOW, devices: [] });
    const verified = await verifySignedDeviceList(provider, account.publicKey, signed, ACCOUNT);
    assert.equal(verified.devices.size, 0);
    assert.equal(verified.version, 2n);
  });

  it('refuses every byte flip of the list and of its signature', async () => {
    const { account, signed } = await setUp(1);
    for (let i = 0; i < signed.list.length; i++) {
      const tampered = create(SignedDeviceListSchema, { list: flip(signed.list, i, 0x20), signature: signed.signature });
      await expectCode(verifySignedDeviceList(provider, account.publicKey, tampered, ACCOUNT), Code.InvalidDeviceList, `list byte ${i}`);
    }
    for (let i = 0; i < 64; i++) {
      const tampered = create(SignedDeviceListSchema, { list: signed.list, signature: flip(signed.signature, i) });
      await expectCode(verifySignedDeviceList(provider, account.publicKey, tampered, ACCOUNT), Code.InvalidDeviceList, `signature byte ${i}`);
    }
  });

  it('refuses a list signed by another key, for another account, or verified against another account', async () => {
    const { account, companions, signed } = await setUp(1);
    const other = await KeyPair.generate(provider);
    await expectCode(verifySignedDeviceList(provider, other.publicKey, signed, ACCOUNT), Code.InvalidDeviceList, 'other account key');
    const byOther = create(SignedDeviceListSchema, { list: signed.list, signature: other.sign(provider, deviceListSignatureMessage(signed.list)) });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, byOther, ACCOUNT), Code.InvalidDeviceList, 'signed by another key');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, signed, OTHER_ACCOUNT), Code.InvalidDeviceList, 'wrong account id expected');
    const c = companions[0] as Companion;
    const otherAccountList = createSignedDeviceList(provider, account, { accountId: OTHER_ACCOUNT, version: 1, timestamp: NOW, devices: [{ deviceId: 2, identity: c.identity }] });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, otherAccountList, ACCOUNT), Code.InvalidDeviceList, 'list names another account');
    // The signature of the list is refused even when a companion's key signed it.
    const byCompanion = create(SignedDeviceListSchema, { list: signed.list, signature: c.keys.sign(provider, deviceListSignatureMessage(signed.list)) });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, byCompanion, ACCOUNT), Code.InvalidDeviceList, 'signed by a companion');
  });

  it('refuses an entry whose details name another device id or account, even re-signed by the account', async () => {
    const { account, companions, signed } = await setUp(2);
    const [a] = companions as [Companion, Companion];
    // Entry 2 relabelled as device 4: details still say 2.
    await expectCode(
      verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => void ((l.devices[0] as { deviceId: number }).deviceId = 4)), ACCOUNT),
      Code.InvalidDeviceIdentity,
      'device id mismatch',
    );
    // Entries' identities swapped between devices 2 and 3.
    await expectCode(
      verifySignedDeviceList(
        provider,
        account.publicKey,
        resign(account, signed, (l) => {
          const [x, y] = l.devices as [DeviceListEntry, DeviceListEntry];
          [x.identity, y.identity] = [y.identity, x.identity];
        }),
        ACCOUNT,
      ),
      Code.InvalidDeviceIdentity,
      'swapped identities',
    );
    // A companion linked to another account (same account key) put in this list.
    const foreign = await link(account, 3, OTHER_ACCOUNT);
    await expectCode(
      verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => void ((l.devices[1] as { identity: DeviceIdentity }).identity = foreign.identity)), ACCOUNT),
      Code.InvalidDeviceIdentity,
      'identity of another account',
    );
    // A forged companion (its account signature made by the companion itself), listed by the account.
    const forgedKeys = await KeyPair.generate(provider);
    const details = encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 5, timestamp: NOW });
    const forged = create(DeviceIdentitySchema, {
      details,
      identityKey: forgedKeys.publicKey.serialized,
      accountSignature: forgedKeys.sign(provider, accountSignatureMessage(details, forgedKeys.publicKey)),
      deviceSignature: forgedKeys.sign(provider, deviceSignatureMessage(details, forgedKeys.publicKey, account.publicKey)),
    });
    await expectCode(
      verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(create(DeviceListEntrySchema, { deviceId: 5, identity: forged }))), ACCOUNT),
      Code.InvalidDeviceIdentity,
      'forged companion',
    );
    // A device signature by another key (the device never counter-signed).
    const unsigned = withIdentity(a.identity, { deviceSignature: forgedKeys.sign(provider, deviceSignatureMessage(a.identity.details, a.keys.publicKey, account.publicKey)) });
    await expectCode(
      verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => void ((l.devices[0] as { identity: DeviceIdentity }).identity = unsigned)), ACCOUNT),
      Code.InvalidDeviceIdentity,
      'device signature by another key',
    );
  });

  it('refuses device 1, a device twice, more than four companions, a shared key, an entry without identity', async () => {
    const { account, companions, signed } = await setUp(1);
    const c = companions[0] as Companion;
    const entry = (deviceId: number, identity: DeviceIdentity | null = c.identity) => create(DeviceListEntrySchema, { deviceId, identity: identity ?? undefined });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(entry(1))), ACCOUNT), Code.InvalidDeviceList, 'device 1');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(entry(0))), ACCOUNT), Code.InvalidDeviceList, 'device 0');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(entry(2))), ACCOUNT), Code.InvalidDeviceList, 'device twice');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(entry(3, null))), ACCOUNT), Code.InvalidMessage, 'no identity');
    const more = await Promise.all([3, 4, 5, 6].map((id) => link(account, id)));
    await expectCode(
      verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(...more.map((m) => entry(m.deviceId, m.identity)))), ACCOUNT),
      Code.InvalidDeviceList,
      'five companions',
    );
    // Device 3 signed with device 2's key (a valid identity for 3, but the key is shared).
    const details3 = encodeDeviceIdentityDetails({ accountId: ACCOUNT, deviceId: 3, timestamp: NOW });
    const shared = await createDeviceIdentity(provider, c.keys, account.publicKey, details3, createAccountSignature(provider, account, details3, c.keys.publicKey), { accountId: ACCOUNT, deviceId: 3 });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, resign(account, signed, (l) => l.devices.push(entry(3, shared))), ACCOUNT), Code.InvalidDeviceList, 'shared key');
  });

  it('refuses malformed bytes with InvalidMessage', async () => {
    const { account, signed } = await setUp(1);
    await expectCode(verifySignedDeviceList(provider, account.publicKey, new Uint8Array([0xff, 0x01]), ACCOUNT), Code.InvalidMessage, 'garbage');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, create(SignedDeviceListSchema, { list: signed.list, signature: new Uint8Array(63) }), ACCOUNT), Code.InvalidMessage, 'short signature');
    await expectCode(verifySignedDeviceList(provider, account.publicKey, create(SignedDeviceListSchema, { signature: signed.signature }), ACCOUNT), Code.InvalidMessage, 'no list');
    // A list whose signature verifies but whose bytes do not decode.
    const junk = new Uint8Array([0xff, 0xff, 0xff]);
    const signedJunk = create(SignedDeviceListSchema, { list: junk, signature: account.sign(provider, deviceListSignatureMessage(junk)) });
    await expectCode(verifySignedDeviceList(provider, account.publicKey, signedJunk, ACCOUNT), Code.InvalidMessage, 'undecodable list');
  });
});

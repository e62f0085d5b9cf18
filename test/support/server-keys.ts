// Key material for server tests: real identity keys, signed prekeys and Kyber prekeys from src/protocol,
// so that the server's signature checks see what a real client uploads. Not for anything but tests.
import { create } from '@bufbuild/protobuf';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import { KemKeyPair } from '../../src/protocol/kem.ts';
import { KeyPair } from '../../src/protocol/keys.ts';
import { KyberPreKeySchema, PreKeySchema, SignedPreKeySchema, type KyberPreKey, type PreKey, type SignedPreKey } from '../../src/protocol/gen/service_pb.ts';

export const crypto = new NodeCryptoProvider();

/** A fresh identity key pair. */
export function newIdentity(): Promise<KeyPair> {
  return KeyPair.generate(crypto);
}

/** A signed EC prekey with id `id`, signed by `identity`. */
export async function signedPreKey(identity: KeyPair, id: number): Promise<SignedPreKey> {
  const pair = await KeyPair.generate(crypto);
  const publicKey = pair.publicKey.serialized;
  return create(SignedPreKeySchema, { id, publicKey, signature: identity.sign(crypto, publicKey) });
}

/** One KEM key pair reused for every Kyber prekey of a test (key generation is the slow part). */
let sharedKem: KemKeyPair | undefined;

/** A Kyber prekey with id `id`, signed by `identity`. */
export function kyberPreKey(identity: KeyPair, id: number): KyberPreKey {
  sharedKem ??= KemKeyPair.generate(crypto);
  const publicKey = sharedKem.publicKey.serialize();
  return create(KyberPreKeySchema, { id, publicKey, signature: identity.sign(crypto, publicKey) });
}

/** `count` one-time EC prekeys with ids from `firstId`. */
export async function preKeys(firstId: number, count: number): Promise<PreKey[]> {
  const out: PreKey[] = [];
  for (let i = 0; i < count; i++) {
    const pair = await KeyPair.generate(crypto);
    out.push(create(PreKeySchema, { id: firstId + i, publicKey: pair.publicKey.serialized }));
  }
  return out;
}

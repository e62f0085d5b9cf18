import { concatBytes, utf8 } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage } from './errors.js';
import type { KemPublicKey, KemKeyPair } from './kem.js';
import { calculateAgreement, KeyPair, type PublicKey } from './keys.js';
import { CIPHERTEXT_MESSAGE_CURRENT_VERSION } from './messages.js';
import { createChain } from './ratchet.js';
import type { SessionState } from './session-record.js';

const INFO_PQXDH = utf8('WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024');
/** 32 bytes of 0xFF that start the PQXDH secret input ("discontinuity bytes"). */
const DISCONTINUITY = new Uint8Array(32).fill(0xff);

/** HKDF over the PQXDH secrets: root key, first chain key (the SPQR auth key, third, is unused here). */
async function deriveInitialKeys(crypto: CryptoProvider, secrets: Uint8Array[]): Promise<{ rootKey: Uint8Array; chainKey: Uint8Array }> {
  const okm = await crypto.hkdfSha256(concatBytes(DISCONTINUITY, ...secrets), undefined, INFO_PQXDH, 96);
  return { rootKey: okm.subarray(0, 32), chainKey: okm.subarray(32, 64) };
}

/** The initiator's (Alice's) PQXDH inputs. */
export interface AliceParameters {
  readonly ourIdentity: KeyPair;
  readonly ourBaseKey: KeyPair;
  readonly theirIdentity: PublicKey;
  readonly theirSignedPreKey: PublicKey;
  readonly theirOneTimePreKey: PublicKey | undefined;
  readonly theirKyberPreKey: KemPublicKey;
}

/**
 * PQXDH for the initiator, then the first ratchet step: Bob's signed prekey is his first ratchet key, and
 * Alice ratchets at once with a fresh key. Returns the session and the Kyber ciphertext to send.
 */
export async function initializeAliceSession(
  crypto: CryptoProvider,
  p: AliceParameters,
): Promise<{ state: SessionState; kyberCiphertext: Uint8Array }> {
  const secrets = [
    await calculateAgreement(crypto, p.ourIdentity, p.theirSignedPreKey),
    await calculateAgreement(crypto, p.ourBaseKey, p.theirIdentity),
    await calculateAgreement(crypto, p.ourBaseKey, p.theirSignedPreKey),
  ];
  if (p.theirOneTimePreKey) secrets.push(await calculateAgreement(crypto, p.ourBaseKey, p.theirOneTimePreKey));
  const kem = p.theirKyberPreKey.encapsulate(crypto);
  secrets.push(kem.sharedSecret);
  const { rootKey, chainKey } = await deriveInitialKeys(crypto, secrets);

  const sendingRatchetKey = await KeyPair.generate(crypto);
  const sending = await createChain(crypto, rootKey, p.theirSignedPreKey, sendingRatchetKey);
  const state: SessionState = {
    version: CIPHERTEXT_MESSAGE_CURRENT_VERSION,
    localIdentity: p.ourIdentity.publicKey,
    remoteIdentity: p.theirIdentity,
    rootKey: sending.rootKey,
    previousCounter: 0,
    senderChain: { ratchetKeyPair: sendingRatchetKey, chainKey: sending.chainKey },
    receiverChains: [{ ratchetKey: p.theirSignedPreKey, chainKey: { key: chainKey, index: 0 }, skipped: [] }],
    pendingPreKey: undefined,
    localRegistrationId: 0,
    remoteRegistrationId: 0,
    aliceBaseKey: p.ourBaseKey.publicKey.serialized,
  };
  return { state, kyberCiphertext: kem.ciphertext };
}

/** The responder's (Bob's) PQXDH inputs. */
export interface BobParameters {
  readonly ourIdentity: KeyPair;
  readonly ourSignedPreKey: KeyPair;
  readonly ourOneTimePreKey: KeyPair | undefined;
  readonly ourKyberPreKey: KemKeyPair;
  readonly theirIdentity: PublicKey;
  readonly theirBaseKey: PublicKey;
  readonly theirKyberCiphertext: Uint8Array;
}

/** PQXDH for the responder. Bob's signed prekey becomes his sending ratchet key. */
export async function initializeBobSession(crypto: CryptoProvider, p: BobParameters): Promise<SessionState> {
  if (!p.theirBaseKey.isCanonical()) throw invalidMessage('incoming base key is not canonical');
  const secrets = [
    await calculateAgreement(crypto, p.ourSignedPreKey, p.theirIdentity),
    await calculateAgreement(crypto, p.ourIdentity, p.theirBaseKey),
    await calculateAgreement(crypto, p.ourSignedPreKey, p.theirBaseKey),
  ];
  if (p.ourOneTimePreKey) secrets.push(await calculateAgreement(crypto, p.ourOneTimePreKey, p.theirBaseKey));
  secrets.push(p.ourKyberPreKey.secretKey.decapsulate(p.theirKyberCiphertext));
  const { rootKey, chainKey } = await deriveInitialKeys(crypto, secrets);
  return {
    version: CIPHERTEXT_MESSAGE_CURRENT_VERSION,
    localIdentity: p.ourIdentity.publicKey,
    remoteIdentity: p.theirIdentity,
    rootKey,
    previousCounter: 0,
    senderChain: { ratchetKeyPair: p.ourSignedPreKey, chainKey: { key: chainKey, index: 0 } },
    receiverChains: [],
    pendingPreKey: undefined,
    localRegistrationId: 0,
    remoteRegistrationId: 0,
    aliceBaseKey: p.theirBaseKey.serialized,
  };
}

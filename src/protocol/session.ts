import type { ProtocolAddress } from './address.js';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode, UntrustedIdentityError } from './errors.js';
import { KeyPair } from './keys.js';
import { CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION, type PreKeySignalMessage } from './messages.js';
import { initializeAliceSession, initializeBobSession } from './pqxdh.js';
import type { PreKeyBundle } from './records.js';
import { Direction, type IdentityKeyStore, type ProtocolStores, type SessionStore } from './stores.js';
import { SessionRecord } from './session-record.js';

/**
 * Starts a session with the device a bundle describes (the initiator's side of PQXDH), as libsignal's
 * process_prekey_bundle: the identity must be trusted, both prekey signatures must verify; the new session
 * becomes current (an older one is archived) and sends PreKey messages until the peer answers.
 */
export async function processPreKeyBundle(
  crypto: CryptoProvider,
  bundle: PreKeyBundle,
  address: ProtocolAddress,
  stores: { readonly identity: IdentityKeyStore; readonly sessions: SessionStore },
  now: number,
): Promise<void> {
  if (!(await stores.identity.isTrustedIdentity(address, bundle.identityKey, Direction.Sending))) {
    throw new UntrustedIdentityError(address.toString(), bundle.identityKey.serialized);
  }
  if (!(await bundle.identityKey.verifySignature(crypto, bundle.signedPreKey.publicKey.serialized, bundle.signedPreKey.signature))) {
    throw new ProtocolError(ProtocolErrorCode.InvalidSignature, 'signed prekey signature does not verify');
  }
  if (!(await bundle.identityKey.verifySignature(crypto, bundle.kyberPreKey.publicKey.serialize(), bundle.kyberPreKey.signature))) {
    throw new ProtocolError(ProtocolErrorCode.InvalidSignature, 'Kyber prekey signature does not verify');
  }
  const record = (await stores.sessions.loadSession(address)) ?? new SessionRecord();
  const ourBaseKey = await KeyPair.generate(crypto);
  const { state, kyberCiphertext } = await initializeAliceSession(crypto, {
    ourIdentity: await stores.identity.getIdentityKeyPair(),
    ourBaseKey,
    theirIdentity: bundle.identityKey,
    theirSignedPreKey: bundle.signedPreKey.publicKey,
    theirOneTimePreKey: bundle.preKey?.publicKey,
    theirKyberPreKey: bundle.kyberPreKey.publicKey,
  });
  state.pendingPreKey = {
    preKeyId: bundle.preKey?.id,
    signedPreKeyId: bundle.signedPreKey.id,
    baseKey: ourBaseKey.publicKey,
    kyberPreKeyId: bundle.kyberPreKey.id,
    kyberCiphertext,
    createdAt: now,
  };
  state.localRegistrationId = await stores.identity.getLocalRegistrationId();
  state.remoteRegistrationId = bundle.registrationId;
  await stores.identity.saveIdentity(address, bundle.identityKey);
  record.promoteState(state);
  await stores.sessions.storeSession(address, record);
}

/** Which prekeys a PreKey message consumed, so the caller deletes them once the message decrypted. */
export interface PreKeysUsed {
  readonly oneTimePreKeyId: number | undefined;
  readonly signedPreKeyId: number;
  readonly kyberPreKeyId: number;
}

/**
 * The responder's side of PQXDH, on an in-memory record (nothing is stored here): a PreKey message for a
 * session we already have promotes that session; otherwise a new session is built from our prekeys and
 * becomes current. Returns the prekeys used, or undefined when an existing session was reused.
 */
export async function processPreKeyMessage(
  crypto: CryptoProvider,
  message: PreKeySignalMessage,
  address: ProtocolAddress,
  record: SessionRecord,
  stores: ProtocolStores,
): Promise<PreKeysUsed | undefined> {
  if (!(await stores.identity.isTrustedIdentity(address, message.identityKey, Direction.Receiving))) {
    throw new UntrustedIdentityError(address.toString(), message.identityKey.serialized);
  }
  if (record.promoteMatchingSession(message.messageVersion, message.baseKey.serialized)) return undefined;
  if (message.messageVersion <= CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.LegacyVersion, 'X3DH PreKey messages are no longer supported');
  }
  const kyberPreKeyId = message.kyberPreKeyId;
  const kyberCiphertext = message.kyberCiphertext;
  if (kyberPreKeyId === undefined || kyberCiphertext === undefined) {
    throw new ProtocolError(ProtocolErrorCode.InvalidMessage, 'PreKey message without a Kyber payload');
  }
  const signedPreKey = await stores.signedPreKeys.getSignedPreKey(message.signedPreKeyId);
  const kyberPreKey = await stores.kyberPreKeys.getKyberPreKey(kyberPreKeyId);
  const oneTimePreKey = message.preKeyId === undefined ? undefined : await stores.preKeys.getPreKey(message.preKeyId);
  const state = await initializeBobSession(crypto, {
    ourIdentity: await stores.identity.getIdentityKeyPair(),
    ourSignedPreKey: signedPreKey.keyPair,
    ourOneTimePreKey: oneTimePreKey?.keyPair,
    ourKyberPreKey: kyberPreKey.keyPair,
    theirIdentity: message.identityKey,
    theirBaseKey: message.baseKey,
    theirKyberCiphertext: kyberCiphertext,
  });
  state.localRegistrationId = await stores.identity.getLocalRegistrationId();
  state.remoteRegistrationId = message.registrationId;
  record.promoteState(state);
  return { oneTimePreKeyId: message.preKeyId, signedPreKeyId: message.signedPreKeyId, kyberPreKeyId };
}

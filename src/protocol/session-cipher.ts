import type { ProtocolAddress } from './address.js';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode, UntrustedIdentityError } from './errors.js';
import { KeyPair } from './keys.js';
import {
  type CiphertextMessage,
  PreKeySignalMessage,
  SignalMessage,
} from './messages.js';
import { createChain, deriveMessageKeys, messageKeySeed, nextChainKey } from './ratchet.js';
import { processPreKeyMessage } from './session.js';
import {
  cloneSessionState,
  isSessionWithSelf,
  MAX_FORWARD_JUMPS,
  MAX_MESSAGE_KEYS,
  MAX_RECEIVER_CHAINS,
  MAX_UNACKNOWLEDGED_SESSION_AGE_MS,
  type ReceiverChain,
  SessionRecord,
  type SessionState,
} from './session-record.js';
import { Direction, type IdentityKeyStore, type ProtocolStores, type SessionStore } from './stores.js';

/** The stores encryption and decryption of established sessions need. */
export interface SessionStores {
  readonly identity: IdentityKeyStore;
  readonly sessions: SessionStore;
}

/**
 * Encrypts `plaintext` for `address` on the current session (libsignal's message_encrypt). Until the peer
 * has answered, the result is a PreKeySignalMessage carrying the PQXDH inputs; afterwards a SignalMessage.
 * A session whose PreKey message has gone unanswered for 30 days gives `SessionExpired`; a changed
 * identity gives {@link UntrustedIdentityError}. Nothing is stored unless encryption succeeds.
 */
export async function signalEncrypt(
  crypto: CryptoProvider,
  plaintext: Uint8Array,
  address: ProtocolAddress,
  stores: SessionStores,
  now: number,
): Promise<CiphertextMessage> {
  const record = await stores.sessions.loadSession(address);
  const state = record?.current;
  if (!record || !state) throw new ProtocolError(ProtocolErrorCode.NoSession, `no session for ${address.toString()}`);
  const pending = state.pendingPreKey;
  if (pending && pending.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS < now) {
    throw new ProtocolError(ProtocolErrorCode.SessionExpired, `unacknowledged session for ${address.toString()} is stale`);
  }
  if (!(await stores.identity.isTrustedIdentity(address, state.remoteIdentity, Direction.Sending))) {
    throw new UntrustedIdentityError(address.toString(), state.remoteIdentity.serialized);
  }

  const chainKey = state.senderChain.chainKey;
  const keys = await deriveMessageKeys(crypto, await messageKeySeed(crypto, chainKey));
  const body = await crypto.aes256CbcEncrypt(keys.cipherKey, keys.iv, plaintext);
  const signalMessage = await SignalMessage.create(crypto, {
    messageVersion: state.version,
    macKey: keys.macKey,
    senderRatchetKey: state.senderChain.ratchetKeyPair.publicKey,
    counter: chainKey.index,
    previousCounter: state.previousCounter,
    body,
    senderIdentityKey: state.localIdentity,
    receiverIdentityKey: state.remoteIdentity,
  });
  const message: CiphertextMessage = pending
    ? PreKeySignalMessage.create({
        messageVersion: state.version,
        registrationId: state.localRegistrationId,
        preKeyId: pending.preKeyId,
        signedPreKeyId: pending.signedPreKeyId,
        kyberPreKeyId: pending.kyberPreKeyId,
        kyberCiphertext: pending.kyberCiphertext,
        baseKey: pending.baseKey,
        identityKey: state.localIdentity,
        message: signalMessage,
      })
    : signalMessage;

  state.senderChain.chainKey = await nextChainKey(crypto, chainKey);
  await stores.identity.saveIdentity(address, state.remoteIdentity);
  await stores.sessions.storeSession(address, record);
  return message;
}

/**
 * Decrypts a SignalMessage (libsignal's message_decrypt_signal): the current session is tried first, then
 * the archived ones; a state that decrypts becomes current. Failures leave the stored record untouched and
 * report the current state's error (`BadMac`, `DuplicateMessage`, `TooFarInFuture`, ...).
 */
export async function signalDecrypt(
  crypto: CryptoProvider,
  message: SignalMessage,
  address: ProtocolAddress,
  stores: SessionStores,
): Promise<Uint8Array> {
  const record = await stores.sessions.loadSession(address);
  if (!record) throw new ProtocolError(ProtocolErrorCode.NoSession, `no session for ${address.toString()}`);
  const plaintext = await decryptWithRecord(crypto, record, message, false);
  const remoteIdentity = (record.current as SessionState).remoteIdentity;
  if (!(await stores.identity.isTrustedIdentity(address, remoteIdentity, Direction.Receiving))) {
    throw new UntrustedIdentityError(address.toString(), remoteIdentity.serialized);
  }
  await stores.identity.saveIdentity(address, remoteIdentity);
  await stores.sessions.storeSession(address, record);
  return plaintext;
}

/**
 * Decrypts a PreKeySignalMessage (libsignal's message_decrypt_prekey): runs the responder's PQXDH (or
 * reuses the session a repeated PreKey message names), decrypts, and only then saves the session and
 * deletes the one-time prekeys it consumed.
 */
export async function signalDecryptPreKey(
  crypto: CryptoProvider,
  message: PreKeySignalMessage,
  address: ProtocolAddress,
  stores: ProtocolStores,
): Promise<Uint8Array> {
  const record = (await stores.sessions.loadSession(address)) ?? new SessionRecord();
  const used = await processPreKeyMessage(crypto, message, address, record, stores);
  const plaintext = await decryptWithRecord(crypto, record, message.message, true);
  await stores.identity.saveIdentity(address, message.identityKey);
  if (used) {
    await stores.kyberPreKeys.markKyberPreKeyUsed(used.kyberPreKeyId, used.signedPreKeyId, message.baseKey);
    if (used.oneTimePreKeyId !== undefined) await stores.preKeys.removePreKey(used.oneTimePreKeyId);
  }
  await stores.sessions.storeSession(address, record);
  return plaintext;
}

async function decryptWithRecord(crypto: CryptoProvider, record: SessionRecord, message: SignalMessage, isPreKey: boolean): Promise<Uint8Array> {
  let firstError: Error | undefined;
  if (record.current) {
    const state = cloneSessionState(record.current);
    try {
      const plaintext = await decryptWithState(crypto, state, message);
      record.current = state;
      return plaintext;
    } catch (err) {
      // A duplicate is final; a PreKey message is only ever for the session it just set up.
      if (isPreKey || ProtocolError.is(err, ProtocolErrorCode.DuplicateMessage)) throw err;
      firstError = asError(err);
    }
  }
  for (let i = 0; i < record.previous.length; i++) {
    const state = cloneSessionState(record.previous[i] as SessionState);
    try {
      const plaintext = await decryptWithState(crypto, state, message);
      record.promoteOldSession(i, state);
      return plaintext;
    } catch (err) {
      if (ProtocolError.is(err, ProtocolErrorCode.DuplicateMessage)) throw err;
      firstError ??= asError(err);
    }
  }
  if (firstError !== undefined) throw firstError;
  throw new ProtocolError(ProtocolErrorCode.NoSession, 'no session state to decrypt with');
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Decrypts with one state, changing it (the caller passes a copy and keeps it only on success). */
async function decryptWithState(crypto: CryptoProvider, state: SessionState, message: SignalMessage): Promise<Uint8Array> {
  if (message.messageVersion !== state.version) {
    throw new ProtocolError(ProtocolErrorCode.UnrecognizedVersion, `message version ${message.messageVersion} does not match session version ${state.version}`);
  }
  const chain = await getOrCreateReceiverChain(crypto, state, message);
  const seed = await takeMessageKeySeed(crypto, state, chain, message.counter);
  const keys = await deriveMessageKeys(crypto, seed);
  if (!(await message.verifyMac(crypto, state.remoteIdentity, state.localIdentity, keys.macKey))) {
    throw new ProtocolError(ProtocolErrorCode.BadMac, 'message MAC does not verify');
  }
  let plaintext: Uint8Array;
  try {
    plaintext = await crypto.aes256CbcDecrypt(keys.cipherKey, keys.iv, message.body);
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.InvalidMessage, 'message body does not decrypt', { cause });
  }
  state.pendingPreKey = undefined;
  return plaintext;
}

/** The receiving chain of the message's ratchet key; a new ratchet key steps the root twice (receive, then send). */
async function getOrCreateReceiverChain(crypto: CryptoProvider, state: SessionState, message: SignalMessage): Promise<ReceiverChain> {
  const theirKey = message.senderRatchetKey;
  const existing = state.receiverChains.find((c) => c.ratchetKey.equals(theirKey));
  if (existing) return existing;

  const receiving = await createChain(crypto, state.rootKey, theirKey, state.senderChain.ratchetKeyPair);
  const ourNewRatchetKey = await KeyPair.generate(crypto);
  const sending = await createChain(crypto, receiving.rootKey, theirKey, ourNewRatchetKey);
  state.rootKey = sending.rootKey;
  const chain: ReceiverChain = { ratchetKey: theirKey, chainKey: receiving.chainKey, skipped: [] };
  state.receiverChains.push(chain);
  if (state.receiverChains.length > MAX_RECEIVER_CHAINS) state.receiverChains.shift();
  state.previousCounter = Math.max(state.senderChain.chainKey.index - 1, 0);
  state.senderChain = { ratchetKeyPair: ourNewRatchetKey, chainKey: sending.chainKey };
  return chain;
}

/**
 * The message-key seed for `counter`: a stored skipped key (removed once used), or the chain advanced to
 * `counter`, keeping the seeds it passes (at most 2,000 per chain, oldest dropped). A counter behind the
 * chain with no stored key is a duplicate; a jump beyond 25,000 is refused (except in a session with
 * oneself, where libsignal allows it).
 */
async function takeMessageKeySeed(crypto: CryptoProvider, state: SessionState, chain: ReceiverChain, counter: number): Promise<Uint8Array> {
  const index = chain.chainKey.index;
  if (index > counter) {
    const at = chain.skipped.findIndex((k) => k.index === counter);
    if (at < 0) throw new ProtocolError(ProtocolErrorCode.DuplicateMessage, `message ${counter} was already received (chain at ${index})`);
    const seed = (chain.skipped[at] as { seed: Uint8Array }).seed;
    chain.skipped = chain.skipped.filter((_, i) => i !== at);
    return seed;
  }
  if (counter - index > MAX_FORWARD_JUMPS && !isSessionWithSelf(state)) {
    throw new ProtocolError(ProtocolErrorCode.TooFarInFuture, `message ${counter} is more than ${MAX_FORWARD_JUMPS} ahead of ${index}`);
  }
  let chainKey = chain.chainKey;
  if (chainKey.index < counter) {
    const added: { index: number; seed: Uint8Array }[] = [];
    while (chainKey.index < counter) {
      added.push({ index: chainKey.index, seed: await messageKeySeed(crypto, chainKey) });
      chainKey = await nextChainKey(crypto, chainKey);
    }
    // Newest first; keep the newest MAX_MESSAGE_KEYS.
    added.reverse();
    chain.skipped = added.concat(chain.skipped).slice(0, MAX_MESSAGE_KEYS);
  }
  const seed = await messageKeySeed(crypto, chainKey);
  chain.chainKey = await nextChainKey(crypto, chainKey);
  return seed;
}

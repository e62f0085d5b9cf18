/**
 * Sender Keys: the group messaging layer of the Signal Protocol, behaving as libsignal 0.90's
 * `group_cipher.rs`. Each member has one chain per distribution id. It sends the chain's key and public
 * signing key to the other members once (a {@link SenderKeyDistributionMessage}, over 1:1 sessions), then
 * encrypts each group message once for everybody ({@link groupEncrypt}); members decrypt with
 * {@link groupDecrypt}.
 *
 * Per message: seed = HMAC-SHA256(chain key, 0x01), next chain key = HMAC-SHA256(chain key, 0x02),
 * HKDF-SHA256(salt none, seed, "WhisperGroup", 48) = IV (16) then AES-256 key (32), AES-256-CBC/PKCS#7,
 * and an XEdDSA signature over the serialized message.
 *
 * Ordering and atomicity: every function loads the record, computes, and changes it only once everything
 * has succeeded, then stores it; a failed decryption leaves the stored record as it was. Calls for the same
 * sender and distribution id must not overlap (run them one after another, as libsignal's callers do): with
 * a store that hands out copies, overlapping calls would lose updates. With {@link InMemorySenderKeyStore},
 * which hands out the stored object itself, an overlap that would reuse or lose a message key is detected and
 * fails with `InvalidArgument`.
 */
import type { ProtocolAddress } from './address.js';
import { copyBytes, utf8 } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage, ProtocolError, ProtocolErrorCode } from './errors.js';
import {
  canonicalDistributionId,
  encodeSenderKeyMessageContent,
  SENDER_KEY_MESSAGE_CURRENT_VERSION,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  type SenderKeyMessageFields,
} from './sender-key-messages.js';
import {
  generateSenderSigningKey,
  SENDER_KEY_MAX_FORWARD_JUMPS,
  SENDER_KEY_MAX_MESSAGE_KEYS,
  SenderKeyRecord,
  SenderKeyState,
  type SenderChainKey,
} from './sender-key-record.js';

export {
  canonicalDistributionId,
  DISTRIBUTION_ID_LENGTH,
  distributionIdFromBytes,
  distributionIdToBytes,
  MAX_SENDER_KEY_DISTRIBUTION_MESSAGE_BYTES,
  MAX_SENDER_KEY_MESSAGE_BYTES,
  SENDER_KEY_CHAIN_KEY_LENGTH,
  SENDER_KEY_MESSAGE_CURRENT_VERSION,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  type SenderKeyDistributionMessageFields,
  type SenderKeyMessageFields,
} from './sender-key-messages.js';
export {
  MAX_SENDER_KEY_STATES,
  SENDER_KEY_MAX_FORWARD_JUMPS,
  SENDER_KEY_MAX_MESSAGE_KEYS,
  SENDER_KEY_RECORD_VERSION,
  SenderKeyRecord,
} from './sender-key-record.js';

const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);
const INFO_GROUP = utf8('WhisperGroup');
const MAX_ITERATION = 0xffffffff;

/**
 * Where sender-key records live, per sender device and distribution id (libsignal's SenderKeyStore).
 * `distributionId` is canonical (lower-case) UUID text.
 */
export interface SenderKeyStore {
  storeSenderKey(sender: ProtocolAddress, distributionId: string, record: SenderKeyRecord): Promise<void>;
  /** The stored record, or null. The group functions change the returned object and store it again. */
  loadSenderKey(sender: ProtocolAddress, distributionId: string): Promise<SenderKeyRecord | null>;
}

/**
 * In-memory {@link SenderKeyStore}. It keeps the record objects it is given and hands out the same objects;
 * persist them elsewhere with {@link SenderKeyRecord.serialize}.
 */
export class InMemorySenderKeyStore implements SenderKeyStore {
  readonly #records = new Map<string, SenderKeyRecord>();

  async storeSenderKey(sender: ProtocolAddress, distributionId: string, record: SenderKeyRecord): Promise<void> {
    this.#records.set(InMemorySenderKeyStore.#key(sender, distributionId), record);
  }

  async loadSenderKey(sender: ProtocolAddress, distributionId: string): Promise<SenderKeyRecord | null> {
    return this.#records.get(InMemorySenderKeyStore.#key(sender, distributionId)) ?? null;
  }

  static #key(sender: ProtocolAddress, distributionId: string): string {
    // UUID text has no '/', so the key is unambiguous.
    return `${canonicalDistributionId(distributionId)}/${sender.toString()}`;
  }
}

function noState(distributionId: string, detail: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.NoSenderKeyState, `no sender-key state for distribution ${distributionId}: ${detail}`);
}

function concurrentUse(): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCode.InvalidArgument,
    'sender-key record changed during the operation: calls for one sender and distribution id must not overlap',
  );
}

/** The seed and next chain key of a chain position (the two HMACs run together on async providers). */
function stepChain(crypto: CryptoProvider, chainKey: Uint8Array): Promise<[Uint8Array, Uint8Array]> {
  return Promise.all([crypto.hmacSha256(chainKey, MESSAGE_KEY_SEED), crypto.hmacSha256(chainKey, CHAIN_KEY_SEED)]);
}

/** IV (first 16 bytes) and AES key (next 32) of a message-key seed: note the order, unlike 1:1 messages. */
async function messageKeys(crypto: CryptoProvider, seed: Uint8Array): Promise<{ iv: Uint8Array; cipherKey: Uint8Array }> {
  const okm = await crypto.hkdfSha256(seed, undefined, INFO_GROUP, 48);
  return { iv: okm.subarray(0, 16), cipherKey: okm.subarray(16, 48) };
}

/**
 * The distribution message for our own chain of `distributionId`, creating the chain (random 31-bit chain
 * id, random chain key, fresh signing key) and storing it when `sender` (our own address) has none yet.
 */
export async function createSenderKeyDistributionMessage(
  crypto: CryptoProvider,
  store: SenderKeyStore,
  sender: ProtocolAddress,
  distributionId: string,
): Promise<SenderKeyDistributionMessage> {
  const id = canonicalDistributionId(distributionId);
  let record = await store.loadSenderKey(sender, id);
  if (record === null) {
    const random = crypto.randomBytes(4);
    // 31-bit chain ids, as libsignal (libsignal-protocol-java used signed 32-bit integers).
    const chainId = new DataView(random.buffer, random.byteOffset, 4).getUint32(0) >>> 1;
    const signing = await generateSenderSigningKey(crypto);
    const chainKey: SenderChainKey = { iteration: 0, key: crypto.randomBytes(32) };
    record = new SenderKeyRecord();
    record.addState(new SenderKeyState(SENDER_KEY_MESSAGE_CURRENT_VERSION, chainId, chainKey, signing.publicKey, signing));
    await store.storeSenderKey(sender, id, record);
  }
  const state = record.currentState();
  if (state === undefined) throw noState(id, 'the stored record is empty');
  return SenderKeyDistributionMessage.create({
    messageVersion: state.messageVersion,
    distributionId: id,
    chainId: state.chainId,
    iteration: state.chainKey.iteration,
    chainKey: state.chainKey.key,
    signingKey: state.signingKey,
  });
}

/**
 * Records the chain a member distributed, so its group messages can be decrypted. A chain already held
 * (same chain id and signing key) keeps its progress; one with the same chain id but another key is replaced.
 */
export async function processSenderKeyDistributionMessage(
  _crypto: CryptoProvider,
  sender: ProtocolAddress,
  skdm: SenderKeyDistributionMessage,
  store: SenderKeyStore,
): Promise<void> {
  const id = skdm.distributionId;
  const record = (await store.loadSenderKey(sender, id)) ?? new SenderKeyRecord();
  const chainKey: SenderChainKey = { iteration: skdm.iteration, key: copyBytes(skdm.chainKey) };
  record.addState(new SenderKeyState(skdm.messageVersion, skdm.chainId, chainKey, skdm.signingKey, undefined));
  await store.storeSenderKey(sender, id, record);
}

/**
 * Encrypts `plaintext` for the group with our newest chain of `distributionId` and signs it. Without a
 * chain of our own (no record, or no private signing key) it fails with `NoSenderKeyState`: call
 * {@link createSenderKeyDistributionMessage} first.
 */
export async function groupEncrypt(
  crypto: CryptoProvider,
  store: SenderKeyStore,
  sender: ProtocolAddress,
  distributionId: string,
  plaintext: Uint8Array,
): Promise<SenderKeyMessage> {
  const id = canonicalDistributionId(distributionId);
  const record = await store.loadSenderKey(sender, id);
  if (record === null) throw noState(id, 'no record');
  const state = record.currentState();
  if (state === undefined) throw noState(id, 'the stored record is empty');
  if (state.signing === undefined) throw noState(id, 'the newest chain is not ours (no private signing key)');
  const chain = state.chainKey;
  if (chain.iteration >= MAX_ITERATION) throw noState(id, 'the sending chain is exhausted');

  const [seed, nextKey] = await stepChain(crypto, chain.key);
  const { iv, cipherKey } = await messageKeys(crypto, seed);
  const ciphertext = await crypto.aes256CbcEncrypt(cipherKey, iv, plaintext);
  const fields: SenderKeyMessageFields = {
    messageVersion: state.messageVersion,
    distributionId: id,
    chainId: state.chainId,
    iteration: chain.iteration,
    ciphertext,
  };
  const content = encodeSenderKeyMessageContent(fields);
  const signature = await state.sign(crypto, content);

  // The message key must serve exactly one message: refuse if another call used this position meanwhile.
  if (state.chainKey !== chain) throw concurrentUse();
  state.chainKey = { iteration: chain.iteration + 1, key: nextKey };
  await store.storeSenderKey(sender, id, record);
  return SenderKeyMessage.fromSignedContent(fields, content, signature);
}

/** The seed of `iteration`'s message key and the change to the state that taking it makes (applied later). */
async function takeMessageSeed(crypto: CryptoProvider, state: SenderKeyState, iteration: number): Promise<{ seed: Uint8Array; commit: () => void }> {
  const chain = state.chainKey;
  if (iteration < chain.iteration) {
    const seed = state.skipped.get(iteration);
    if (seed === undefined) {
      throw new ProtocolError(ProtocolErrorCode.DuplicateMessage, `duplicate sender-key message (iteration ${iteration}, chain at ${chain.iteration})`);
    }
    return {
      seed,
      commit: () => {
        if (state.skipped.get(iteration) !== seed) throw new ProtocolError(ProtocolErrorCode.DuplicateMessage, 'sender-key message decrypted twice concurrently');
        state.skipped.delete(iteration);
      },
    };
  }
  if (iteration - chain.iteration > SENDER_KEY_MAX_FORWARD_JUMPS) {
    throw new ProtocolError(
      ProtocolErrorCode.TooFarInFuture,
      `sender-key message ${iteration - chain.iteration} iterations ahead (at most ${SENDER_KEY_MAX_FORWARD_JUMPS})`,
    );
  }
  if (iteration >= MAX_ITERATION) throw invalidMessage('sender-key message at the last iteration of its chain');

  // Only the newest SENDER_KEY_MAX_MESSAGE_KEYS skipped seeds would be kept: derive only those.
  const keepFrom = Math.max(chain.iteration, iteration - SENDER_KEY_MAX_MESSAGE_KEYS);
  const skipped: [number, Uint8Array][] = [];
  let key = chain.key;
  for (let i = chain.iteration; i < iteration; i++) {
    if (i >= keepFrom) {
      const [seed, next] = await stepChain(crypto, key);
      skipped.push([i, seed]);
      key = next;
    } else {
      key = await crypto.hmacSha256(key, CHAIN_KEY_SEED);
    }
  }
  const [seed, nextKey] = await stepChain(crypto, key);
  return {
    seed,
    commit: () => {
      if (state.chainKey !== chain) throw concurrentUse();
      state.addSkipped(skipped);
      state.chainKey = { iteration: iteration + 1, key: nextKey };
    },
  };
}

/**
 * Verifies and decrypts a serialized SenderKeyMessage from `sender`. Failures, in the order checked:
 * `InvalidMessage` / `LegacyVersion` / `UnrecognizedVersion` for bytes that do not parse;
 * `NoSenderKeyState` for an unknown distribution id or chain id; `UnrecognizedVersion` for a version other
 * than the chain's; `InvalidSignature`; `DuplicateMessage` for a message key already used;
 * `TooFarInFuture` beyond {@link SENDER_KEY_MAX_FORWARD_JUMPS}; `InvalidMessage` when the ciphertext does
 * not decrypt. On any failure the stored record is unchanged.
 */
export async function groupDecrypt(crypto: CryptoProvider, store: SenderKeyStore, sender: ProtocolAddress, bytes: Uint8Array): Promise<Uint8Array> {
  const message = SenderKeyMessage.deserialize(bytes);
  const id = message.distributionId;
  const record = await store.loadSenderKey(sender, id);
  if (record === null) throw noState(id, 'no record');
  const state = record.stateForChainId(message.chainId);
  if (state === undefined) throw noState(id, `unknown chain id ${message.chainId} (known: ${record.chainIds.join(', ')})`);
  if (message.messageVersion !== state.messageVersion) {
    throw new ProtocolError(ProtocolErrorCode.UnrecognizedVersion, `sender-key message version ${message.messageVersion} on a chain of version ${state.messageVersion}`);
  }
  if (!(await message.verifySignature(crypto, state.signingKey))) {
    throw new ProtocolError(ProtocolErrorCode.InvalidSignature, 'sender-key message signature does not verify');
  }
  const { seed, commit } = await takeMessageSeed(crypto, state, message.iteration);
  const { iv, cipherKey } = await messageKeys(crypto, seed);
  let plaintext: Uint8Array;
  try {
    plaintext = await crypto.aes256CbcDecrypt(cipherKey, iv, message.ciphertext);
  } catch (cause) {
    throw invalidMessage('sender-key message does not decrypt', cause);
  }
  commit();
  await store.storeSenderKey(sender, id, record);
  return plaintext;
}

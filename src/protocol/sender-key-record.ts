/**
 * The persisted Sender Keys state of one (sender, distribution id): up to five chains, newest first, each with
 * its chain key, signing key and skipped message keys (libsignal `sender_keys.rs`). Stored with Parley's own
 * versioned format (`proto/storage.proto`, `SenderKeyRecord`).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ed25519 } from '@noble/curves/ed25519.js';
import { copyBytes } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { SenderKeyRecordSchema, SenderKeyStateSchema, type SenderKeyState as SenderKeyStateProto } from './gen/storage_pb.js';
import { PrivateKey, PublicKey, SIGNATURE_LENGTH } from './keys.js';
import { SENDER_KEY_CHAIN_KEY_LENGTH, SENDER_KEY_MESSAGE_CURRENT_VERSION } from './sender-key-messages.js';

/** Chains kept per sender and distribution id; adding a sixth drops the oldest (libsignal MAX_SENDER_KEY_STATES). */
export const MAX_SENDER_KEY_STATES = 5;
/** Skipped message keys kept per chain; the oldest are dropped beyond it (libsignal MAX_MESSAGE_KEYS). */
export const SENDER_KEY_MAX_MESSAGE_KEYS = 2_000;
/** How far ahead of its chain a message may be (libsignal MAX_FORWARD_JUMPS); further is `TooFarInFuture`. */
export const SENDER_KEY_MAX_FORWARD_JUMPS = 25_000;
/** Version of the persisted {@link SenderKeyRecord} format. */
export const SENDER_KEY_RECORD_VERSION = 1;

const SEED_LENGTH = 32;

/** The signing key of one of our own chains. */
export interface SenderSigningKey {
  readonly publicKey: PublicKey;
  readonly privateKey: PrivateKey;
  /** The Ed25519 seed the key was derived from, with the Ed25519 public key (absent for keys made elsewhere). */
  readonly ed25519?: { readonly seed: Uint8Array; readonly publicKey: Uint8Array } | undefined;
}

/**
 * A fresh signing key for a new chain of ours. It is made the Ed25519 way (RFC 8032 5.1.5): a random 32-byte
 * seed, its SHA-512, the first half clamped is the private scalar. That scalar is an ordinary clamped
 * Curve25519 private key whose X25519 public key (what the distribution message carries) is the Montgomery
 * form of the Ed25519 public key, so a plain Ed25519 signature under the seed is a valid XEdDSA signature
 * once the Ed25519 public key's sign bit is put in the top bit of its last byte.
 * @internal
 */
export async function generateSenderSigningKey(crypto: CryptoProvider): Promise<SenderSigningKey> {
  const seed = crypto.randomBytes(SEED_LENGTH);
  const { head, pointBytes } = ed25519.utils.getExtendedPublicKey(seed);
  const privateKey = PrivateKey.deserialize(head);
  const publicKey = PublicKey.fromRaw(await crypto.x25519PublicKey(privateKey.raw));
  return { publicKey, privateKey, ed25519: { seed, publicKey: pointBytes } };
}

/** A chain position: the iteration of the next message key and the chain key that derives it. */
export interface SenderChainKey {
  readonly iteration: number;
  readonly key: Uint8Array;
}

function invalidRecord(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidRecord, message, cause === undefined ? undefined : { cause });
}

/**
 * One sender chain (libsignal's SenderKeyState). The group cipher in `sender-keys.ts` is its only writer;
 * it changes a state only after a message has fully decrypted or encrypted.
 * @internal
 */
export class SenderKeyState {
  /** Message-key seeds of skipped iterations, in insertion order (oldest first). */
  readonly skipped: Map<number, Uint8Array>;

  constructor(
    readonly messageVersion: number,
    readonly chainId: number,
    public chainKey: SenderChainKey,
    readonly signingKey: PublicKey,
    /** Only for our own chains. */
    readonly signing: SenderSigningKey | undefined,
    skipped: Map<number, Uint8Array> = new Map(),
  ) {
    this.skipped = skipped;
  }

  /**
   * Adds skipped message-key seeds (in increasing iteration order) and drops the oldest beyond
   * {@link SENDER_KEY_MAX_MESSAGE_KEYS}, as libsignal does.
   */
  addSkipped(entries: readonly (readonly [number, Uint8Array])[]): void {
    for (const [iteration, seed] of entries) this.skipped.set(iteration, seed);
    let excess = this.skipped.size - SENDER_KEY_MAX_MESSAGE_KEYS;
    if (excess <= 0) return;
    for (const iteration of this.skipped.keys()) {
      if (excess-- <= 0) break;
      this.skipped.delete(iteration);
    }
  }

  /** Signs the signed part of a SenderKeyMessage with this (own) chain's key. */
  async sign(crypto: CryptoProvider, content: Uint8Array): Promise<Uint8Array> {
    const signing = this.signing;
    if (signing === undefined) throw new ProtocolError(ProtocolErrorCode.NoSenderKeyState, 'sender-key chain has no private signing key');
    if (signing.ed25519 !== undefined && crypto.ed25519Sign !== undefined) {
      const signature = copyBytes(await crypto.ed25519Sign(signing.ed25519.seed, content));
      // An Ed25519 s is below the group order, so its top bits are free for XEdDSA's sign bit.
      if (signature.length === SIGNATURE_LENGTH && ((signature[63] as number) & 0xe0) === 0) {
        signature[63] = (signature[63] as number) | ((signing.ed25519.publicKey[31] as number) & 0x80);
        return signature;
      }
    }
    return signing.privateKey.sign(content, crypto.randomBytes(64));
  }

  /** The storage form of this state. */
  toProto(): SenderKeyStateProto {
    const signing = this.signing;
    return create(SenderKeyStateSchema, {
      messageVersion: this.messageVersion,
      chainId: this.chainId,
      chainKey: { index: this.chainKey.iteration, key: this.chainKey.key },
      signingPublic: this.signingKey.serialized,
      signingPrivate: signing?.privateKey.raw ?? new Uint8Array(),
      signingSeed: signing?.ed25519?.seed ?? new Uint8Array(),
      signingEd25519Public: signing?.ed25519?.publicKey ?? new Uint8Array(),
      skipped: Array.from(this.skipped, ([index, seed]) => ({ index, seed })),
    });
  }

  /** Reads a stored state; anything malformed gives `InvalidRecord`. */
  static fromProto(proto: SenderKeyStateProto): SenderKeyState {
    const messageVersion = proto.messageVersion === 0 ? SENDER_KEY_MESSAGE_CURRENT_VERSION : proto.messageVersion;
    if (messageVersion !== SENDER_KEY_MESSAGE_CURRENT_VERSION) throw invalidRecord(`sender-key state of unknown version ${messageVersion}`);
    const chainKey = proto.chainKey;
    if (chainKey === undefined || chainKey.key.length !== SENDER_KEY_CHAIN_KEY_LENGTH) throw invalidRecord('sender-key state lacks a 32-byte chain key');
    let signingKey: PublicKey;
    let signing: SenderSigningKey | undefined;
    try {
      signingKey = PublicKey.deserialize(proto.signingPublic);
      if (proto.signingPrivate.length > 0) {
        const privateKey = PrivateKey.deserialize(proto.signingPrivate);
        let ed: SenderSigningKey['ed25519'];
        if (proto.signingSeed.length > 0 || proto.signingEd25519Public.length > 0) {
          if (proto.signingSeed.length !== SEED_LENGTH || proto.signingEd25519Public.length !== 32) throw new Error('bad Ed25519 signing key');
          ed = { seed: proto.signingSeed, publicKey: proto.signingEd25519Public };
        }
        signing = { publicKey: signingKey, privateKey, ed25519: ed };
      } else if (proto.signingSeed.length > 0 || proto.signingEd25519Public.length > 0) {
        throw new Error('Ed25519 signing key without a private key');
      }
    } catch (cause) {
      throw invalidRecord('sender-key state holds an invalid signing key', cause);
    }
    if (proto.skipped.length > SENDER_KEY_MAX_MESSAGE_KEYS) throw invalidRecord('sender-key state holds too many skipped keys');
    const skipped = new Map<number, Uint8Array>();
    for (const { index, seed } of proto.skipped) {
      if (seed.length !== SEED_LENGTH || skipped.has(index)) throw invalidRecord('sender-key state holds an invalid skipped key');
      skipped.set(index, seed);
    }
    return new SenderKeyState(messageVersion, proto.chainId, { iteration: chainKey.index, key: chainKey.key }, signingKey, signing, skipped);
  }
}

/**
 * What we hold for one sender and distribution id: up to {@link MAX_SENDER_KEY_STATES} chains, newest first.
 * Its contents change only through the group functions of `sender-keys.ts`; applications load and store it
 * ({@link SenderKeyStore}) and persist it with {@link serialize} / {@link deserialize}.
 */
export class SenderKeyRecord {
  readonly #states: SenderKeyState[];

  /** An empty record. */
  constructor() {
    this.#states = [];
  }

  /** The chain ids held, newest first (for diagnostics). */
  get chainIds(): number[] {
    return this.#states.map((s) => s.chainId);
  }

  /** The newest chain: the one we send with (for our own records). @internal */
  currentState(): SenderKeyState | undefined {
    return this.#states[0];
  }

  /** The chain with `chainId`, if held. @internal */
  stateForChainId(chainId: number): SenderKeyState | undefined {
    return this.#states.find((s) => s.chainId === chainId);
  }

  /**
   * Adds a chain as the newest, as libsignal's `add_sender_key_state`: a chain already held with the same id
   * and signing key is kept as it is (with its progress) and moved to the front; any other chain with that
   * id is dropped; the oldest chains beyond {@link MAX_SENDER_KEY_STATES} are dropped.
   * @internal
   */
  addState(state: SenderKeyState): void {
    const index = this.#states.findIndex((s) => s.chainId === state.chainId && s.signingKey.equals(state.signingKey));
    const existing = index >= 0 ? this.#states.splice(index, 1)[0] : undefined;
    for (let i = this.#states.length - 1; i >= 0; i--) {
      if ((this.#states[i] as SenderKeyState).chainId === state.chainId) this.#states.splice(i, 1);
    }
    this.#states.length = Math.min(this.#states.length, MAX_SENDER_KEY_STATES - 1);
    this.#states.unshift(existing ?? state);
  }

  /** The record in Parley's storage format (`SenderKeyRecord`, version {@link SENDER_KEY_RECORD_VERSION}). */
  serialize(): Uint8Array {
    return toBinary(
      SenderKeyRecordSchema,
      create(SenderKeyRecordSchema, { version: SENDER_KEY_RECORD_VERSION, states: this.#states.map((s) => s.toProto()) }),
    );
  }

  /**
   * Reads a record written by {@link serialize}. Bytes that do not decode, an unknown version, more than
   * {@link MAX_SENDER_KEY_STATES} chains, or a chain with a field of the wrong size give `InvalidRecord`.
   */
  static deserialize(bytes: Uint8Array): SenderKeyRecord {
    let proto;
    try {
      proto = fromBinary(SenderKeyRecordSchema, copyBytes(bytes));
    } catch (cause) {
      throw invalidRecord('sender-key record does not decode', cause);
    }
    if (proto.version !== SENDER_KEY_RECORD_VERSION) throw invalidRecord(`sender-key record of unknown version ${proto.version}`);
    if (proto.states.length > MAX_SENDER_KEY_STATES) throw invalidRecord('sender-key record holds too many chains');
    const record = new SenderKeyRecord();
    for (const state of proto.states) record.#states.push(SenderKeyState.fromProto(state));
    return record;
  }
}

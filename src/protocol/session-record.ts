import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { bytesEqual } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import {
  SessionRecordSchema,
  SessionStateSchema,
  type SessionState as SessionStateProto,
} from './gen/storage_pb.js';
import { KeyPair, PrivateKey, PublicKey } from './keys.js';

/** Bounds, as libsignal 0.90 sets them. */
export const MAX_FORWARD_JUMPS = 25_000;
export const MAX_MESSAGE_KEYS = 2_000;
export const MAX_RECEIVER_CHAINS = 5;
export const ARCHIVED_STATES_MAX_LENGTH = 40;
/** A session whose PreKey message was never answered stops sending after this long (ms). */
export const MAX_UNACKNOWLEDGED_SESSION_AGE_MS = 30 * 24 * 60 * 60 * 1000;

/** Version of the persisted session record format. */
const SESSION_RECORD_VERSION = 1;

/** A chain key and its position in the chain. Immutable: a step makes a new one. */
export interface ChainKey {
  readonly key: Uint8Array;
  readonly index: number;
}

/** The seed of a message key we skipped over, kept so a late message still decrypts. */
export interface SkippedKey {
  readonly index: number;
  readonly seed: Uint8Array;
}

/** A receiving chain: the peer's ratchet key, our position in its chain, and skipped keys (newest first). */
export interface ReceiverChain {
  readonly ratchetKey: PublicKey;
  chainKey: ChainKey;
  /** Never changed in place (copy on write), so states can share it after a shallow clone. */
  skipped: readonly SkippedKey[];
}

/** Our sending chain. */
export interface SenderChain {
  readonly ratchetKeyPair: KeyPair;
  chainKey: ChainKey;
}

/** What the first messages of a session repeat until the peer answers (the PQXDH inputs). */
export interface PendingPreKey {
  readonly preKeyId: number | undefined;
  readonly signedPreKeyId: number;
  readonly baseKey: PublicKey;
  readonly kyberPreKeyId: number;
  readonly kyberCiphertext: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** One Double Ratchet session with one peer device. */
export interface SessionState {
  readonly version: number;
  readonly localIdentity: PublicKey;
  readonly remoteIdentity: PublicKey;
  rootKey: Uint8Array;
  previousCounter: number;
  senderChain: SenderChain;
  /** Oldest first, at most {@link MAX_RECEIVER_CHAINS}. */
  receiverChains: ReceiverChain[];
  pendingPreKey: PendingPreKey | undefined;
  localRegistrationId: number;
  remoteRegistrationId: number;
  /** The PQXDH base key (Alice's ephemeral), which identifies the session. */
  readonly aliceBaseKey: Uint8Array;
}

/** A copy of `state` that can be changed without touching the original. */
export function cloneSessionState(state: SessionState): SessionState {
  return {
    ...state,
    senderChain: { ...state.senderChain },
    receiverChains: state.receiverChains.map((c) => ({ ...c })),
  };
}

/** Whether the session was made with ourselves (another device of our own account sharing the key). */
export function isSessionWithSelf(state: SessionState): boolean {
  return state.localIdentity.equals(state.remoteIdentity);
}

/**
 * All the sessions with one peer device: the current one and up to 40 archived ones (newest first), kept
 * so that messages sent on an older session (a simultaneous initiation, a late message) still decrypt.
 */
export class SessionRecord {
  current: SessionState | undefined;
  previous: SessionState[];

  constructor(current?: SessionState, previous: SessionState[] = []) {
    this.current = current;
    this.previous = previous;
  }

  /** A copy whose states can be changed independently of this record. */
  clone(): SessionRecord {
    return new SessionRecord(this.current && cloneSessionState(this.current), this.previous.slice());
  }

  /** Makes `state` current, archiving the current one (without its pending PreKey data). */
  promoteState(state: SessionState): void {
    this.archiveCurrentState();
    this.current = state;
  }

  /** Moves the current state to the archive, if there is one. */
  archiveCurrentState(): void {
    if (!this.current) return;
    if (this.previous.length >= ARCHIVED_STATES_MAX_LENGTH) this.previous.pop();
    this.previous.unshift({ ...this.current, pendingPreKey: undefined });
    this.current = undefined;
  }

  /** Replaces archived state `index` by `updated` and makes it current. */
  promoteOldSession(index: number, updated: SessionState): void {
    this.previous.splice(index, 1);
    this.promoteState(updated);
  }

  /**
   * If a state of `version` with `aliceBaseKey` exists, makes it current and returns true (a repeated
   * PreKey message for a session we already have).
   */
  promoteMatchingSession(version: number, aliceBaseKey: Uint8Array): boolean {
    if (this.current && this.current.version === version && bytesEqual(this.current.aliceBaseKey, aliceBaseKey)) return true;
    const index = this.previous.findIndex((s) => s.version === version && bytesEqual(s.aliceBaseKey, aliceBaseKey));
    if (index < 0) return false;
    this.promoteOldSession(index, cloneSessionState(this.previous[index] as SessionState));
    return true;
  }

  /** Whether a message can be sent now: a current state with a sender chain that is not stale. */
  hasUsableSenderChain(now: number): boolean {
    const s = this.current;
    if (!s) return false;
    return !(s.pendingPreKey && s.pendingPreKey.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS < now);
  }

  /** The versioned protobuf form (storage.proto). */
  serialize(): Uint8Array {
    return toBinary(
      SessionRecordSchema,
      create(SessionRecordSchema, {
        version: SESSION_RECORD_VERSION,
        ...(this.current ? { current: stateToProto(this.current) } : {}),
        previous: this.previous.map(stateToProto),
      }),
    );
  }

  /** Parses {@link serialize}'s output; anything else gives `InvalidRecord`. */
  static deserialize(bytes: Uint8Array): SessionRecord {
    try {
      const proto = fromBinary(SessionRecordSchema, bytes);
      if (proto.version !== SESSION_RECORD_VERSION) throw new Error(`unknown session record version ${proto.version}`);
      const current = proto.current ? stateFromProto(proto.current) : undefined;
      const previous = proto.previous.map(stateFromProto);
      return new SessionRecord(current, previous);
    } catch (cause) {
      if (ProtocolError.is(cause, ProtocolErrorCode.InvalidRecord)) throw cause;
      throw new ProtocolError(ProtocolErrorCode.InvalidRecord, 'session record does not decode', { cause });
    }
  }
}

function stateToProto(s: SessionState): SessionStateProto {
  return create(SessionStateSchema, {
    sessionVersion: s.version,
    localIdentity: s.localIdentity.serialized,
    remoteIdentity: s.remoteIdentity.serialized,
    rootKey: s.rootKey,
    previousCounter: s.previousCounter,
    senderChain: {
      ratchetPublic: s.senderChain.ratchetKeyPair.publicKey.serialized,
      ratchetPrivate: s.senderChain.ratchetKeyPair.privateKey.raw,
      chainKey: { index: s.senderChain.chainKey.index, key: s.senderChain.chainKey.key },
    },
    receiverChains: s.receiverChains.map((c) => ({
      senderRatchetKey: c.ratchetKey.serialized,
      chainKey: { index: c.chainKey.index, key: c.chainKey.key },
      skipped: c.skipped.map((k) => ({ index: k.index, seed: k.seed })),
    })),
    ...(s.pendingPreKey
      ? {
          pendingPreKey: {
            ...(s.pendingPreKey.preKeyId === undefined ? {} : { preKeyId: s.pendingPreKey.preKeyId }),
            signedPreKeyId: s.pendingPreKey.signedPreKeyId,
            baseKey: s.pendingPreKey.baseKey.serialized,
            kyberPreKeyId: s.pendingPreKey.kyberPreKeyId,
            kyberCiphertext: s.pendingPreKey.kyberCiphertext,
            createdAt: BigInt(s.pendingPreKey.createdAt),
          },
        }
      : {}),
    localRegistrationId: s.localRegistrationId,
    remoteRegistrationId: s.remoteRegistrationId,
    aliceBaseKey: s.aliceBaseKey,
  });
}

function chainKeyFromProto(c: { index: number; key: Uint8Array } | undefined): ChainKey {
  if (!c || c.key.length !== 32) throw new ProtocolError(ProtocolErrorCode.InvalidRecord, 'session chain key missing or malformed');
  return { index: c.index, key: c.key };
}

function stateFromProto(p: SessionStateProto): SessionState {
  const sc = p.senderChain;
  if (!sc || p.rootKey.length !== 32) throw new ProtocolError(ProtocolErrorCode.InvalidRecord, 'session state lacks a sender chain or root key');
  const ratchetKeyPair = new KeyPair(PublicKey.deserialize(sc.ratchetPublic), PrivateKey.deserialize(sc.ratchetPrivate));
  const pp = p.pendingPreKey;
  return {
    version: p.sessionVersion,
    localIdentity: PublicKey.deserialize(p.localIdentity),
    remoteIdentity: PublicKey.deserialize(p.remoteIdentity),
    rootKey: p.rootKey,
    previousCounter: p.previousCounter,
    senderChain: { ratchetKeyPair, chainKey: chainKeyFromProto(sc.chainKey) },
    receiverChains: p.receiverChains.map((c) => ({
      ratchetKey: PublicKey.deserialize(c.senderRatchetKey),
      chainKey: chainKeyFromProto(c.chainKey),
      skipped: c.skipped.map((k) => ({ index: k.index, seed: k.seed })),
    })),
    pendingPreKey: pp
      ? {
          preKeyId: pp.preKeyId,
          signedPreKeyId: pp.signedPreKeyId,
          baseKey: PublicKey.deserialize(pp.baseKey),
          kyberPreKeyId: pp.kyberPreKeyId,
          kyberCiphertext: pp.kyberCiphertext,
          createdAt: Number(pp.createdAt),
        }
      : undefined,
    localRegistrationId: p.localRegistrationId,
    remoteRegistrationId: p.remoteRegistrationId,
    aliceBaseKey: p.aliceBaseKey,
  };
}

/**
 * Wire codecs of Sender Keys (group messaging), byte-compatible with libsignal 0.90 (`protocol.rs`):
 *
 * - {@link SenderKeyDistributionMessage}: version byte, then protobuf (distribution id, chain id, iteration,
 *   chain key, signing key). Sent to each member over a 1:1 session.
 * - {@link SenderKeyMessage}: version byte, protobuf (distribution id, chain id, iteration, ciphertext), then a
 *   64-byte XEdDSA signature over the version byte and the protobuf.
 *
 * The version byte is `(3 << 4) | 3`; only its high nibble is read back (below 3 is legacy, above 3 unknown).
 */
import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { concatBytes, copyBytes, toHex } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage, ProtocolError, ProtocolErrorCode } from './errors.js';
import { SenderKeyDistributionMessageSchema, SenderKeyMessageSchema } from './gen/wire_pb.js';
import { CiphertextMessageType } from './messages.js';
import { PUBLIC_KEY_LENGTH, PublicKey, SIGNATURE_LENGTH, type PrivateKey } from './keys.js';

/** The sender-key message version libsignal 0.90 speaks (and the only one there is). */
export const SENDER_KEY_MESSAGE_CURRENT_VERSION = 3;
/** Length of a sender-key chain key. */
export const SENDER_KEY_CHAIN_KEY_LENGTH = 32;
/** Length of a distribution id on the wire: a UUID's 16 bytes. */
export const DISTRIBUTION_ID_LENGTH = 16;
/**
 * Largest serialized SenderKeyMessage a decoder accepts (the ciphertext of one group message plus framing).
 * It bounds the work a hostile peer can cause before the signature is checked; Signal's own message
 * bodies are far smaller.
 */
export const MAX_SENDER_KEY_MESSAGE_BYTES = 256 * 1024;
/**
 * Largest serialized SenderKeyDistributionMessage a decoder accepts. A well-formed one is about 100 bytes;
 * the margin leaves room for fields a later version might add.
 */
export const MAX_SENDER_KEY_DISTRIBUTION_MESSAGE_BYTES = 1024;
/** libsignal refuses anything shorter: a version byte and at least a chain key's and a key's worth of bytes. */
const MIN_DISTRIBUTION_MESSAGE_BYTES = 1 + 32 + 32;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The 16 bytes of a distribution id given as UUID text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case).
 * Other text is a caller bug: `InvalidArgument`.
 */
export function distributionIdToBytes(distributionId: string): Uint8Array {
  if (!UUID_PATTERN.test(distributionId)) {
    throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'distribution id must be UUID text');
  }
  const hex = distributionId.replaceAll('-', '');
  const out = new Uint8Array(DISTRIBUTION_ID_LENGTH);
  for (let i = 0; i < DISTRIBUTION_ID_LENGTH; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The canonical (lower-case, hyphenated) UUID text of 16 distribution-id bytes. */
export function distributionIdFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== DISTRIBUTION_ID_LENGTH) {
    throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'distribution id must be 16 bytes');
  }
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The canonical text of a distribution id given as UUID text (validates it). */
export function canonicalDistributionId(distributionId: string): string {
  if (!UUID_PATTERN.test(distributionId)) {
    throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'distribution id must be UUID text');
  }
  return distributionId.toLowerCase();
}

function versionByte(messageVersion: number): Uint8Array {
  return Uint8Array.of(((messageVersion & 0xf) << 4) | SENDER_KEY_MESSAGE_CURRENT_VERSION);
}

/** Reads the high nibble of the version byte as libsignal does for sender-key messages. */
function checkVersion(byte: number): number {
  const version = byte >> 4;
  if (version < SENDER_KEY_MESSAGE_CURRENT_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.LegacyVersion, `legacy sender-key message version ${version}`);
  }
  if (version > SENDER_KEY_MESSAGE_CURRENT_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.UnrecognizedVersion, `unrecognized sender-key message version ${version}`);
  }
  return version;
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new ProtocolError(ProtocolErrorCode.InvalidArgument, `${what} must be a 32-bit unsigned integer`);
  }
}

/** The fields of a {@link SenderKeyMessage} before signing. */
export interface SenderKeyMessageFields {
  /** Defaults to {@link SENDER_KEY_MESSAGE_CURRENT_VERSION}. */
  readonly messageVersion?: number;
  /** UUID text. */
  readonly distributionId: string;
  readonly chainId: number;
  readonly iteration: number;
  readonly ciphertext: Uint8Array;
}

/**
 * Encodes the signed part of a SenderKeyMessage (version byte and protobuf). Exported for the group cipher,
 * which signs it with its own signer; applications use {@link SenderKeyMessage.create}.
 * @internal
 */
export function encodeSenderKeyMessageContent(fields: SenderKeyMessageFields): Uint8Array {
  const version = fields.messageVersion ?? SENDER_KEY_MESSAGE_CURRENT_VERSION;
  checkU32(fields.chainId, 'chain id');
  checkU32(fields.iteration, 'iteration');
  const proto = toBinary(
    SenderKeyMessageSchema,
    create(SenderKeyMessageSchema, {
      distributionUuid: distributionIdToBytes(fields.distributionId),
      chainId: fields.chainId,
      iteration: fields.iteration,
      ciphertext: fields.ciphertext,
    }),
  );
  return concatBytes(versionByte(version), proto);
}

/** A group message: encrypted under one sender's chain and signed with that chain's signing key. */
export class SenderKeyMessage {
  /** The envelope type of this message. */
  readonly type = CiphertextMessageType.SenderKey;

  private constructor(
    /** The version read from (or written to) the high nibble of the first byte. */
    readonly messageVersion: number,
    /** The distribution id as canonical UUID text. */
    readonly distributionId: string,
    readonly chainId: number,
    readonly iteration: number,
    /** AES-256-CBC ciphertext of the plaintext. */
    readonly ciphertext: Uint8Array,
    /** The whole message: version byte, protobuf, signature. */
    readonly serialized: Uint8Array,
  ) {}

  /**
   * Builds a message from its parts and a detached 64-byte signature over `content` (the output of
   * {@link encodeSenderKeyMessageContent} for the same fields).
   * @internal
   */
  static fromSignedContent(fields: SenderKeyMessageFields, content: Uint8Array, signature: Uint8Array): SenderKeyMessage {
    if (signature.length !== SIGNATURE_LENGTH) {
      throw new ProtocolError(ProtocolErrorCode.InvalidArgument, `signature must be ${SIGNATURE_LENGTH} bytes`);
    }
    return new SenderKeyMessage(
      fields.messageVersion ?? SENDER_KEY_MESSAGE_CURRENT_VERSION,
      canonicalDistributionId(fields.distributionId),
      fields.chainId,
      fields.iteration,
      fields.ciphertext,
      concatBytes(content, signature),
    );
  }

  /**
   * Encodes and signs a message with XEdDSA (libsignal's `SenderKeyMessage::new`). The group cipher
   * ({@link groupEncrypt}) is the normal way to make one; this exists for tests and tools.
   */
  static create(crypto: CryptoProvider, fields: SenderKeyMessageFields, signingKey: PrivateKey): SenderKeyMessage {
    const content = encodeSenderKeyMessageContent(fields);
    return SenderKeyMessage.fromSignedContent(fields, content, signingKey.sign(content, crypto.randomBytes(64)));
  }

  /**
   * Parses a serialized message. Too short, too long, undecodable, or missing a field (or a distribution id
   * that is not 16 bytes) gives `InvalidMessage`; a version nibble below 3 gives `LegacyVersion`, above 3
   * `UnrecognizedVersion`. The signature is not checked here (see {@link verifySignature}).
   */
  static deserialize(bytes: Uint8Array): SenderKeyMessage {
    if (bytes.length < 1 + SIGNATURE_LENGTH) throw invalidMessage(`SenderKeyMessage of ${bytes.length} bytes is too short`);
    if (bytes.length > MAX_SENDER_KEY_MESSAGE_BYTES) {
      throw invalidMessage(`SenderKeyMessage of ${bytes.length} bytes exceeds ${MAX_SENDER_KEY_MESSAGE_BYTES}`);
    }
    const version = checkVersion(bytes[0] as number);
    // Decode from our own copy: protobuf-es returns bytes fields as views into its input.
    const serialized = copyBytes(bytes);
    let proto;
    try {
      proto = fromBinary(SenderKeyMessageSchema, serialized.subarray(1, serialized.length - SIGNATURE_LENGTH));
    } catch (cause) {
      throw invalidMessage('SenderKeyMessage protobuf does not decode', cause);
    }
    const f = SenderKeyMessageSchema.field;
    if (!isFieldSet(proto, f.distributionUuid) || proto.distributionUuid.length !== DISTRIBUTION_ID_LENGTH) {
      throw invalidMessage('SenderKeyMessage lacks a 16-byte distribution id');
    }
    if (!isFieldSet(proto, f.chainId) || !isFieldSet(proto, f.iteration) || !isFieldSet(proto, f.ciphertext)) {
      throw invalidMessage('SenderKeyMessage lacks chain id, iteration or ciphertext');
    }
    return new SenderKeyMessage(
      version,
      distributionIdFromBytes(proto.distributionUuid),
      proto.chainId,
      proto.iteration,
      proto.ciphertext,
      serialized,
    );
  }

  /** The serialized message (version byte, protobuf, signature). */
  serialize(): Uint8Array {
    return this.serialized;
  }

  /** The signed part: everything but the trailing 64-byte signature. */
  get content(): Uint8Array {
    return this.serialized.subarray(0, this.serialized.length - SIGNATURE_LENGTH);
  }

  /** The trailing 64-byte XEdDSA signature. */
  get signature(): Uint8Array {
    return this.serialized.subarray(this.serialized.length - SIGNATURE_LENGTH);
  }

  /** Whether the signature verifies under `signingKey` (the key the sender distributed). */
  verifySignature(crypto: CryptoProvider, signingKey: PublicKey): Promise<boolean> {
    return signingKey.verifySignature(crypto, this.content, this.signature);
  }
}

/** The fields of a {@link SenderKeyDistributionMessage}. */
export interface SenderKeyDistributionMessageFields {
  /** Defaults to {@link SENDER_KEY_MESSAGE_CURRENT_VERSION}. */
  readonly messageVersion?: number;
  /** UUID text. */
  readonly distributionId: string;
  readonly chainId: number;
  readonly iteration: number;
  /** 32 bytes. */
  readonly chainKey: Uint8Array;
  readonly signingKey: PublicKey;
}

/**
 * What a group member sends every other member (over 1:1 sessions) so they can decrypt its group messages:
 * its chain's id, current iteration and chain key, and the public key that signs its messages.
 */
export class SenderKeyDistributionMessage {
  private constructor(
    /** The version read from (or written to) the high nibble of the first byte. */
    readonly messageVersion: number,
    /** The distribution id as canonical UUID text. */
    readonly distributionId: string,
    readonly chainId: number,
    readonly iteration: number,
    /** The 32-byte chain key at {@link iteration}. */
    readonly chainKey: Uint8Array,
    readonly signingKey: PublicKey,
    /** The whole message: version byte and protobuf. */
    readonly serialized: Uint8Array,
  ) {}

  /** Encodes a message from its fields (libsignal's `SenderKeyDistributionMessage::new`). */
  static create(fields: SenderKeyDistributionMessageFields): SenderKeyDistributionMessage {
    const version = fields.messageVersion ?? SENDER_KEY_MESSAGE_CURRENT_VERSION;
    checkU32(fields.chainId, 'chain id');
    checkU32(fields.iteration, 'iteration');
    if (fields.chainKey.length !== SENDER_KEY_CHAIN_KEY_LENGTH) {
      throw new ProtocolError(ProtocolErrorCode.InvalidArgument, `chain key must be ${SENDER_KEY_CHAIN_KEY_LENGTH} bytes`);
    }
    const chainKey = copyBytes(fields.chainKey);
    const proto = toBinary(
      SenderKeyDistributionMessageSchema,
      create(SenderKeyDistributionMessageSchema, {
        distributionUuid: distributionIdToBytes(fields.distributionId),
        chainId: fields.chainId,
        iteration: fields.iteration,
        chainKey,
        signingKey: fields.signingKey.serialized,
      }),
    );
    return new SenderKeyDistributionMessage(
      version,
      canonicalDistributionId(fields.distributionId),
      fields.chainId,
      fields.iteration,
      chainKey,
      fields.signingKey,
      concatBytes(versionByte(version), proto),
    );
  }

  /**
   * Parses a serialized message. Too short, too long, undecodable, missing a field, or a field of the wrong
   * size (distribution id 16, chain key 32, signing key 33 bytes with type 0x05) gives `InvalidMessage`; a
   * version nibble below 3 gives `LegacyVersion`, above 3 `UnrecognizedVersion`.
   */
  static deserialize(bytes: Uint8Array): SenderKeyDistributionMessage {
    if (bytes.length < MIN_DISTRIBUTION_MESSAGE_BYTES) {
      throw invalidMessage(`SenderKeyDistributionMessage of ${bytes.length} bytes is too short`);
    }
    if (bytes.length > MAX_SENDER_KEY_DISTRIBUTION_MESSAGE_BYTES) {
      throw invalidMessage(`SenderKeyDistributionMessage of ${bytes.length} bytes exceeds ${MAX_SENDER_KEY_DISTRIBUTION_MESSAGE_BYTES}`);
    }
    const version = checkVersion(bytes[0] as number);
    // Decode from our own copy: protobuf-es returns bytes fields as views into its input.
    const serialized = copyBytes(bytes);
    let proto;
    try {
      proto = fromBinary(SenderKeyDistributionMessageSchema, serialized.subarray(1));
    } catch (cause) {
      throw invalidMessage('SenderKeyDistributionMessage protobuf does not decode', cause);
    }
    const f = SenderKeyDistributionMessageSchema.field;
    if (!isFieldSet(proto, f.distributionUuid) || proto.distributionUuid.length !== DISTRIBUTION_ID_LENGTH) {
      throw invalidMessage('SenderKeyDistributionMessage lacks a 16-byte distribution id');
    }
    if (!isFieldSet(proto, f.chainId) || !isFieldSet(proto, f.iteration)) {
      throw invalidMessage('SenderKeyDistributionMessage lacks chain id or iteration');
    }
    if (!isFieldSet(proto, f.chainKey) || proto.chainKey.length !== SENDER_KEY_CHAIN_KEY_LENGTH) {
      throw invalidMessage('SenderKeyDistributionMessage lacks a 32-byte chain key');
    }
    if (!isFieldSet(proto, f.signingKey) || proto.signingKey.length !== PUBLIC_KEY_LENGTH) {
      throw invalidMessage('SenderKeyDistributionMessage lacks a 33-byte signing key');
    }
    let signingKey: PublicKey;
    try {
      signingKey = PublicKey.deserialize(proto.signingKey);
    } catch (cause) {
      throw invalidMessage('SenderKeyDistributionMessage has an invalid signing key', cause);
    }
    return new SenderKeyDistributionMessage(
      version,
      distributionIdFromBytes(proto.distributionUuid),
      proto.chainId,
      proto.iteration,
      proto.chainKey,
      signingKey,
      serialized,
    );
  }

  /** The serialized message (version byte and protobuf). */
  serialize(): Uint8Array {
    return this.serialized;
  }
}

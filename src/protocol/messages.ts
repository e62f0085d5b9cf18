import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { concatBytes, constantTimeEqual, copyBytes } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage, ProtocolError, ProtocolErrorCode } from './errors.js';
import { PreKeySignalMessageSchema, SignalMessageSchema } from './gen/wire_pb.js';
import { PublicKey } from './keys.js';

/** The message version this implementation speaks (PQXDH sessions). */
export const CIPHERTEXT_MESSAGE_CURRENT_VERSION = 4;
/** The last version before Kyber prekeys (X3DH); its PreKey messages are refused. */
export const CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION = 3;
/** Length of the truncated MAC that ends a SignalMessage. */
export const MAC_LENGTH = 8;
/**
 * Largest serialized message a decoder accepts. Signal's own limit on a message body is far below this;
 * it bounds the work a hostile peer can cause before the MAC is checked.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** Ciphertext message types as libsignal numbers them (and as envelopes carry them). */
export const CiphertextMessageType = {
  Whisper: 2,
  PreKey: 3,
  SenderKey: 7,
  Plaintext: 8,
} as const;
export type CiphertextMessageType = (typeof CiphertextMessageType)[keyof typeof CiphertextMessageType];

/** Checks the high nibble of a version byte and returns the message version. */
export function checkVersionByte(byte: number | undefined, current: number): number {
  if (byte === undefined) throw invalidMessage('empty message');
  const version = byte >> 4;
  if (version < CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.LegacyVersion, `legacy message version ${version}`);
  }
  if (version > current) {
    throw new ProtocolError(ProtocolErrorCode.UnrecognizedVersion, `unrecognized message version ${version}`);
  }
  return version;
}

function checkSize(bytes: Uint8Array): void {
  if (bytes.length > MAX_MESSAGE_BYTES) throw invalidMessage(`message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
}

function decodeKey(bytes: Uint8Array | undefined, what: string): PublicKey {
  if (bytes === undefined || bytes.length === 0) throw invalidMessage(`missing ${what}`);
  try {
    return PublicKey.deserialize(bytes);
  } catch (cause) {
    throw invalidMessage(`invalid ${what}`, cause);
  }
}

/** A Double Ratchet message: version byte, protobuf, 8-byte MAC. */
export class SignalMessage {
  /** The envelope type of this message. */
  readonly type = CiphertextMessageType.Whisper;

  private constructor(
    readonly messageVersion: number,
    readonly senderRatchetKey: PublicKey,
    readonly counter: number,
    readonly previousCounter: number,
    readonly body: Uint8Array,
    /** The whole serialized message (version byte, protobuf, MAC). */
    readonly serialized: Uint8Array,
  ) {}

  /**
   * Builds and MACs a message. The MAC covers the sender's identity, the receiver's identity, the version
   * byte and the protobuf, in that order, and is truncated to 8 bytes.
   */
  static async create(
    crypto: CryptoProvider,
    args: {
      messageVersion: number;
      macKey: Uint8Array;
      senderRatchetKey: PublicKey;
      counter: number;
      previousCounter: number;
      body: Uint8Array;
      senderIdentityKey: PublicKey;
      receiverIdentityKey: PublicKey;
    },
  ): Promise<SignalMessage> {
    const versionByte = new Uint8Array([(args.messageVersion << 4) | CIPHERTEXT_MESSAGE_CURRENT_VERSION]);
    const proto = toBinary(
      SignalMessageSchema,
      create(SignalMessageSchema, {
        ratchetKey: args.senderRatchetKey.serialized,
        counter: args.counter,
        previousCounter: args.previousCounter,
        ciphertext: args.body,
      }),
    );
    const mac = await crypto.hmacSha256(args.macKey, args.senderIdentityKey.serialized, args.receiverIdentityKey.serialized, versionByte, proto);
    const serialized = concatBytes(versionByte, proto, mac.subarray(0, MAC_LENGTH));
    return new SignalMessage(args.messageVersion, args.senderRatchetKey, args.counter, args.previousCounter, args.body, serialized);
  }

  /** Parses a serialized SignalMessage; malformed input gives `InvalidMessage` (or a version error). */
  static deserialize(bytes: Uint8Array): SignalMessage {
    checkSize(bytes);
    if (bytes.length < MAC_LENGTH + 1) throw invalidMessage('SignalMessage too short');
    const version = checkVersionByte(bytes[0], CIPHERTEXT_MESSAGE_CURRENT_VERSION);
    let proto;
    try {
      proto = fromBinary(SignalMessageSchema, bytes.subarray(1, bytes.length - MAC_LENGTH));
    } catch (cause) {
      throw invalidMessage('SignalMessage protobuf does not decode', cause);
    }
    const f = SignalMessageSchema.field;
    if (!isFieldSet(proto, f.counter) || !isFieldSet(proto, f.ciphertext)) throw invalidMessage('SignalMessage lacks counter or ciphertext');
    return new SignalMessage(
      version,
      decodeKey(isFieldSet(proto, f.ratchetKey) ? proto.ratchetKey : undefined, 'ratchet key'),
      proto.counter,
      proto.previousCounter,
      proto.ciphertext,
      copyBytes(bytes),
    );
  }

  /** Verifies the truncated MAC in constant time. */
  async verifyMac(crypto: CryptoProvider, senderIdentityKey: PublicKey, receiverIdentityKey: PublicKey, macKey: Uint8Array): Promise<boolean> {
    const s = this.serialized;
    const mac = await crypto.hmacSha256(macKey, senderIdentityKey.serialized, receiverIdentityKey.serialized, s.subarray(0, s.length - MAC_LENGTH));
    return constantTimeEqual(mac.subarray(0, MAC_LENGTH), s.subarray(s.length - MAC_LENGTH));
  }
}

/** The first message(s) of a session: a SignalMessage wrapped with what the receiver needs to run PQXDH. */
export class PreKeySignalMessage {
  /** The envelope type of this message. */
  readonly type = CiphertextMessageType.PreKey;

  private constructor(
    readonly messageVersion: number,
    readonly registrationId: number,
    readonly preKeyId: number | undefined,
    readonly signedPreKeyId: number,
    readonly kyberPreKeyId: number | undefined,
    readonly kyberCiphertext: Uint8Array | undefined,
    readonly baseKey: PublicKey,
    readonly identityKey: PublicKey,
    readonly message: SignalMessage,
    readonly serialized: Uint8Array,
  ) {}

  static create(args: {
    messageVersion: number;
    registrationId: number;
    preKeyId: number | undefined;
    signedPreKeyId: number;
    kyberPreKeyId: number;
    kyberCiphertext: Uint8Array;
    baseKey: PublicKey;
    identityKey: PublicKey;
    message: SignalMessage;
  }): PreKeySignalMessage {
    const versionByte = new Uint8Array([(args.messageVersion << 4) | CIPHERTEXT_MESSAGE_CURRENT_VERSION]);
    const proto = toBinary(
      PreKeySignalMessageSchema,
      create(PreKeySignalMessageSchema, {
        registrationId: args.registrationId,
        ...(args.preKeyId === undefined ? {} : { preKeyId: args.preKeyId }),
        signedPreKeyId: args.signedPreKeyId,
        kyberPreKeyId: args.kyberPreKeyId,
        kyberCiphertext: args.kyberCiphertext,
        baseKey: args.baseKey.serialized,
        identityKey: args.identityKey.serialized,
        message: args.message.serialized,
      }),
    );
    return new PreKeySignalMessage(
      args.messageVersion,
      args.registrationId,
      args.preKeyId,
      args.signedPreKeyId,
      args.kyberPreKeyId,
      args.kyberCiphertext,
      args.baseKey,
      args.identityKey,
      args.message,
      concatBytes(versionByte, proto),
    );
  }

  /** Parses a serialized PreKeySignalMessage; malformed input gives `InvalidMessage` (or a version error). */
  static deserialize(bytes: Uint8Array): PreKeySignalMessage {
    checkSize(bytes);
    const version = checkVersionByte(bytes[0], CIPHERTEXT_MESSAGE_CURRENT_VERSION);
    let proto;
    try {
      proto = fromBinary(PreKeySignalMessageSchema, bytes.subarray(1));
    } catch (cause) {
      throw invalidMessage('PreKeySignalMessage protobuf does not decode', cause);
    }
    const f = PreKeySignalMessageSchema.field;
    const has = (field: (typeof f)[keyof typeof f]): boolean => isFieldSet(proto, field);
    if (!has(f.signedPreKeyId) || !has(f.message)) throw invalidMessage('PreKeySignalMessage lacks a required field');
    const hasKyberId = has(f.kyberPreKeyId);
    const hasKyberCiphertext = has(f.kyberCiphertext);
    if (hasKyberId !== hasKyberCiphertext) throw invalidMessage('PreKeySignalMessage has half a Kyber payload');
    if (version > CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION && !hasKyberId) {
      throw invalidMessage('a version 4 PreKeySignalMessage must carry a Kyber prekey id and ciphertext');
    }
    return new PreKeySignalMessage(
      version,
      has(f.registrationId) ? proto.registrationId : 0,
      has(f.preKeyId) ? proto.preKeyId : undefined,
      proto.signedPreKeyId,
      hasKyberId ? proto.kyberPreKeyId : undefined,
      hasKyberCiphertext ? proto.kyberCiphertext : undefined,
      decodeKey(has(f.baseKey) ? proto.baseKey : undefined, 'base key'),
      decodeKey(has(f.identityKey) ? proto.identityKey : undefined, 'identity key'),
      SignalMessage.deserialize(proto.message),
      copyBytes(bytes),
    );
  }
}

/** What 1:1 encryption produces: a PreKey message until the peer has answered, then plain SignalMessages. */
export type CiphertextMessage = SignalMessage | PreKeySignalMessage;

/**
 * Typed errors of the protocol layer. Every failure the core can report is a {@link ProtocolError} with a
 * stable `code` from {@link ProtocolErrorCode}; callers branch on `err.is(code)`, never on messages.
 * The list of codes is mirrored in docs/errors.md and a test keeps the two equal.
 */

/** Stable error codes of `src/protocol`. */
export const ProtocolErrorCode = {
  /** Bytes that do not decode: truncated, oversized, random, or fields missing or of the wrong size. */
  InvalidMessage: 'PROTOCOL_INVALID_MESSAGE',
  /** A key of the wrong type byte, length, or a non-canonical / low-order point. */
  InvalidKey: 'PROTOCOL_INVALID_KEY',
  /** A signature (signed prekey, Kyber prekey, sender-key message) that does not verify. */
  InvalidSignature: 'PROTOCOL_INVALID_SIGNATURE',
  /** The message MAC does not verify against any session state. */
  BadMac: 'PROTOCOL_BAD_MAC',
  /** A message whose key was already used (replay or duplicate delivery). */
  DuplicateMessage: 'PROTOCOL_DUPLICATE_MESSAGE',
  /** A message of a version older than this implementation accepts (below 3, or a v3 PreKey message). */
  LegacyVersion: 'PROTOCOL_LEGACY_VERSION',
  /** A message of a version newer than this implementation knows. */
  UnrecognizedVersion: 'PROTOCOL_UNRECOGNIZED_VERSION',
  /** The peer's identity key differs from the one trusted for that address. */
  UntrustedIdentity: 'PROTOCOL_UNTRUSTED_IDENTITY',
  /** A PreKey message names a one-time EC prekey we do not hold (used already or never issued). */
  InvalidPreKeyId: 'PROTOCOL_INVALID_PREKEY_ID',
  /** A PreKey message names a signed prekey we do not hold. */
  InvalidSignedPreKeyId: 'PROTOCOL_INVALID_SIGNED_PREKEY_ID',
  /** A PreKey message names a Kyber prekey we do not hold. */
  InvalidKyberPreKeyId: 'PROTOCOL_INVALID_KYBER_PREKEY_ID',
  /** No session exists for the address (or none usable for sending). */
  NoSession: 'PROTOCOL_NO_SESSION',
  /** A message counter too far ahead of the chain (more than the skipped-key bound). */
  TooFarInFuture: 'PROTOCOL_TOO_FAR_IN_FUTURE',
  /** No sender-key state for the distribution id / chain id of a group message. */
  NoSenderKeyState: 'PROTOCOL_NO_SENDER_KEY_STATE',
  /** A stored record (session, prekey, sender key) that cannot be decoded or is of an unknown version. */
  InvalidRecord: 'PROTOCOL_INVALID_RECORD',
  /** A session whose PreKey message was never acknowledged for too long: it must be re-established. */
  SessionExpired: 'PROTOCOL_SESSION_EXPIRED',
  /** An argument of the wrong shape passed by the caller (a bug in the caller, not hostile input). */
  InvalidArgument: 'PROTOCOL_INVALID_ARGUMENT',
  /** A linked device's identity whose account or device signature does not verify, or whose details name another account or device. */
  InvalidDeviceIdentity: 'PROTOCOL_INVALID_DEVICE_IDENTITY',
  /** A signed device list whose signature does not verify, that names another account, or whose entries are not a valid set of companions. */
  InvalidDeviceList: 'PROTOCOL_INVALID_DEVICE_LIST',
} as const;

/** One of the codes of {@link ProtocolErrorCode}. */
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** The base (and only) error class of the protocol layer. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** True when this error carries `code`. */
  is(code: ProtocolErrorCode): boolean {
    return this.code === code;
  }

  /** True when `err` is a ProtocolError, optionally of `code`. */
  static is(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
    return err instanceof ProtocolError && (code === undefined || err.code === code);
  }
}

/**
 * Raised when a peer's identity key is not the trusted one. Carries the address and the new key so that
 * the caller can show the change and decide (as libsignal's UntrustedIdentity error).
 */
export class UntrustedIdentityError extends ProtocolError {
  readonly address: string;
  readonly identityKey: Uint8Array;

  constructor(address: string, identityKey: Uint8Array) {
    super(ProtocolErrorCode.UntrustedIdentity, `untrusted identity for ${address}`);
    this.address = address;
    this.identityKey = identityKey;
  }
}

/** Shorthand: a decoder failure. */
export function invalidMessage(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidMessage, message, cause === undefined ? undefined : { cause });
}

/**
 * Safety numbers, as libsignal 0.90's `fingerprint.rs`: a 60-digit displayable fingerprint and a scannable
 * (QR code) one, computed from both parties' identity keys and stable identifiers.
 *
 * Per side: h = SHA-512(0x00 0x00 || key || identifier || key), then h = SHA-512(h || key) until `iterations`
 * hashes in all (5,200 in Signal). Displayed: the first 30 bytes as six 5-byte big-endian numbers, each mod
 * 100,000 as five digits; the two 30-digit halves in ascending order. Scannable: a protobuf of the version and
 * the first 32 bytes of each side's hash.
 */
import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { constantTimeEqual, copyBytes } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage, ProtocolError, ProtocolErrorCode } from './errors.js';
import { CombinedFingerprintsSchema, LogicalFingerprintSchema, type LogicalFingerprint } from './gen/fingerprint_pb.js';
import type { PublicKey } from './keys.js';

/** The hash iterations Signal uses for safety numbers. */
export const FINGERPRINT_ITERATIONS = 5200;
/** The scannable fingerprint version Signal uses (identifiers are service ids). */
export const FINGERPRINT_VERSION = 2;
/** Bytes of each side's hash that the scannable fingerprint carries. */
export const SCANNABLE_FINGERPRINT_LENGTH = 32;
/** Largest serialized scannable fingerprint a decoder accepts (a well-formed one is 74 bytes). */
export const MAX_SCANNABLE_FINGERPRINT_BYTES = 1024;
/** libsignal refuses iteration counts of 1 or less and above this. */
const MAX_ITERATIONS = 1_000_000;
const FINGERPRINT_HASH_VERSION = Uint8Array.of(0x00, 0x00);

/**
 * Raised by {@link ScannableFingerprint.compare} when the other fingerprint has another version (libsignal's
 * `FingerprintVersionMismatch`). Its code says which side is behind: `UnrecognizedVersion` when theirs is
 * newer than ours (we must upgrade), `LegacyVersion` when theirs is older (they must).
 */
export class FingerprintVersionMismatchError extends ProtocolError {
  constructor(
    readonly theirs: number,
    readonly ours: number,
  ) {
    super(
      theirs > ours ? ProtocolErrorCode.UnrecognizedVersion : ProtocolErrorCode.LegacyVersion,
      `fingerprint version mismatch: theirs ${theirs}, ours ${ours}`,
    );
  }
}

function readFiveDigits(hash: Uint8Array, offset: number): string {
  let n = 0;
  // At most 2^40: exact in a double.
  for (let i = 0; i < 5; i++) n = n * 256 + (hash[offset + i] as number);
  return String(n % 100_000).padStart(5, '0');
}

/** The 30 digits of one side's hash. */
function encodeDigits(hash: Uint8Array): string {
  let s = '';
  for (let offset = 0; offset < 30; offset += 5) s += readFiveDigits(hash, offset);
  return s;
}

/** The 60-digit safety number both parties see alike. */
export class DisplayableFingerprint {
  readonly #digits: string;

  private constructor(digits: string) {
    this.#digits = digits;
  }

  /** From both sides' fingerprint hashes (at least 30 bytes each). @internal */
  static fromHashes(local: Uint8Array, remote: Uint8Array): DisplayableFingerprint {
    if (local.length < 30 || remote.length < 30) throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'fingerprint hash too short');
    const a = encodeDigits(local);
    const b = encodeDigits(remote);
    return new DisplayableFingerprint(a < b ? a + b : b + a);
  }

  /** The 60 digits. */
  toString(): string {
    return this.#digits;
  }
}

/** Decodes a CombinedFingerprints protobuf; undecodable or oversized bytes give `InvalidMessage`. */
function decodeCombined(bytes: Uint8Array): ReturnType<typeof fromBinary<typeof CombinedFingerprintsSchema>> {
  if (bytes.length > MAX_SCANNABLE_FINGERPRINT_BYTES) throw invalidMessage(`scannable fingerprint of ${bytes.length} bytes is too long`);
  try {
    return fromBinary(CombinedFingerprintsSchema, copyBytes(bytes));
  } catch (cause) {
    throw invalidMessage('scannable fingerprint does not decode', cause);
  }
}

/** The content of one side of a decoded CombinedFingerprints, or undefined when absent. */
function sideContent(side: LogicalFingerprint | undefined): Uint8Array | undefined {
  return side !== undefined && isFieldSet(side, LogicalFingerprintSchema.field.content) ? side.content : undefined;
}

/** The safety number in the form a QR code carries: version and 32 bytes of each side's hash. */
export class ScannableFingerprint {
  private constructor(
    readonly version: number,
    /** The first 32 bytes of our side's hash. */
    readonly localFingerprint: Uint8Array,
    /** The first 32 bytes of the other side's hash. */
    readonly remoteFingerprint: Uint8Array,
  ) {}

  /** From both sides' fingerprint hashes (at least 32 bytes each). @internal */
  static fromHashes(version: number, local: Uint8Array, remote: Uint8Array): ScannableFingerprint {
    if (local.length < SCANNABLE_FINGERPRINT_LENGTH || remote.length < SCANNABLE_FINGERPRINT_LENGTH) {
      throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'fingerprint hash too short');
    }
    return new ScannableFingerprint(version, local.slice(0, SCANNABLE_FINGERPRINT_LENGTH), remote.slice(0, SCANNABLE_FINGERPRINT_LENGTH));
  }

  /**
   * Parses a scannable fingerprint (as read from a QR code). Bytes that do not decode, or lack the version or
   * either side, or whose sides are not 32 bytes, give `InvalidMessage`.
   */
  static deserialize(bytes: Uint8Array): ScannableFingerprint {
    const proto = decodeCombined(bytes);
    const local = sideContent(proto.localFingerprint);
    const remote = sideContent(proto.remoteFingerprint);
    if (!isFieldSet(proto, CombinedFingerprintsSchema.field.version) || local === undefined || remote === undefined) {
      throw invalidMessage('scannable fingerprint lacks its version or a side');
    }
    if (local.length !== SCANNABLE_FINGERPRINT_LENGTH || remote.length !== SCANNABLE_FINGERPRINT_LENGTH) {
      throw invalidMessage('scannable fingerprint sides must be 32 bytes');
    }
    return new ScannableFingerprint(proto.version, local, remote);
  }

  /** The protobuf a QR code carries (byte-identical to libsignal's). */
  serialize(): Uint8Array {
    return toBinary(
      CombinedFingerprintsSchema,
      create(CombinedFingerprintsSchema, {
        version: this.version,
        localFingerprint: { content: this.localFingerprint },
        remoteFingerprint: { content: this.remoteFingerprint },
      }),
    );
  }

  /**
   * Whether `other` (the fingerprint the other party shows, as an object or as scanned bytes) is the mirror
   * of ours: their local side equals our remote side and theirs remote our local, compared in constant time.
   * As libsignal: bytes that do not decode, or lack a side, give `InvalidMessage`; another version (an
   * absent one reads as 0) gives {@link FingerprintVersionMismatchError}; sides of another length compare
   * unequal.
   */
  compare(other: ScannableFingerprint | Uint8Array): boolean {
    let version: number;
    let theirLocal: Uint8Array | undefined;
    let theirRemote: Uint8Array | undefined;
    if (other instanceof ScannableFingerprint) {
      ({ version, localFingerprint: theirLocal, remoteFingerprint: theirRemote } = other);
    } else {
      const proto = decodeCombined(other);
      version = isFieldSet(proto, CombinedFingerprintsSchema.field.version) ? proto.version : 0;
      theirLocal = sideContent(proto.localFingerprint);
      theirRemote = sideContent(proto.remoteFingerprint);
    }
    if (version !== this.version) throw new FingerprintVersionMismatchError(version, this.version);
    if (theirLocal === undefined || theirRemote === undefined) throw invalidMessage('scannable fingerprint lacks a side');
    const same1 = constantTimeEqual(theirLocal, this.remoteFingerprint);
    const same2 = constantTimeEqual(theirRemote, this.localFingerprint);
    return same1 && same2;
  }
}

/** One side's iterated hash. */
async function fingerprintHash(crypto: CryptoProvider, iterations: number, identifier: Uint8Array, key: PublicKey): Promise<Uint8Array> {
  const keyBytes = key.serialized;
  let hash = await crypto.sha512(FINGERPRINT_HASH_VERSION, keyBytes, identifier, keyBytes);
  for (let i = 1; i < iterations; i++) hash = await crypto.sha512(hash, keyBytes);
  return hash;
}

/** A safety number: the displayable and the scannable form. */
export class Fingerprint {
  private constructor(
    readonly displayable: DisplayableFingerprint,
    readonly scannable: ScannableFingerprint,
  ) {}

  /**
   * Computes the safety number of a conversation, as libsignal's `Fingerprint.new(iterations, version,
   * localIdentifier, localKey, remoteIdentifier, remoteKey)`. Identifiers are bytes (for version 2, the
   * service id's binary form). Signal uses {@link FINGERPRINT_ITERATIONS} and {@link FINGERPRINT_VERSION}.
   * An iteration count of 1 or less, or above 1,000,000, or a version that is not a 32-bit unsigned integer,
   * gives `InvalidArgument`.
   */
  static async create(
    crypto: CryptoProvider,
    iterations: number,
    version: number,
    localIdentifier: Uint8Array,
    localKey: PublicKey,
    remoteIdentifier: Uint8Array,
    remoteKey: PublicKey,
  ): Promise<Fingerprint> {
    if (!Number.isInteger(iterations) || iterations <= 1 || iterations > MAX_ITERATIONS) {
      throw new ProtocolError(ProtocolErrorCode.InvalidArgument, `invalid fingerprint iteration count ${iterations}`);
    }
    if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) {
      throw new ProtocolError(ProtocolErrorCode.InvalidArgument, `invalid fingerprint version ${version}`);
    }
    const [local, remote] = await Promise.all([
      fingerprintHash(crypto, iterations, localIdentifier, localKey),
      fingerprintHash(crypto, iterations, remoteIdentifier, remoteKey),
    ]);
    return new Fingerprint(DisplayableFingerprint.fromHashes(local, remote), ScannableFingerprint.fromHashes(version, local, remote));
  }
}

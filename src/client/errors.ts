/**
 * Typed errors of the client SDK. Every failure the SDK reports on purpose is a {@link ClientError} with a
 * stable `code` from {@link ClientErrorCode}; callers branch on `err.is(code)`, never on messages. The list
 * of codes is mirrored in docs/errors.md and a test keeps the two equal.
 */

/** Stable error codes of `src/client`. */
export const ClientErrorCode = {
  /** A request got no response in time. */
  Timeout: 'CLIENT_TIMEOUT',
  /** The caller aborted the operation through its AbortSignal. */
  Aborted: 'CLIENT_ABORTED',
  /** The connection closed (or could not be opened) before the response arrived. */
  ConnectionClosed: 'CLIENT_CONNECTION_CLOSED',
  /** The server refused the device's credentials (401), or the account was re-registered elsewhere. */
  Unauthorized: 'CLIENT_UNAUTHORIZED',
  /** The server answered with an error status; `serverCode`, `status` and `retryAfterMs` say which. */
  ServerRejected: 'CLIENT_SERVER_REJECTED',
  /** A response or push that does not decode. */
  BadResponse: 'CLIENT_BAD_RESPONSE',
  /** The phone number is not registered on the server. */
  UnknownRecipient: 'CLIENT_UNKNOWN_RECIPIENT',
  /** Sending is blocked: a contact the user had verified has a new identity key that is not verified yet. */
  IdentityNotVerified: 'CLIENT_IDENTITY_NOT_VERIFIED',
  /** The recipient's device set kept changing while the message was being sent; it was not delivered. */
  DeviceRepairFailed: 'CLIENT_DEVICE_REPAIR_FAILED',
  /** Decrypted content that does not decode (bad padding, not a Content message, or no known body). */
  InvalidContent: 'CLIENT_INVALID_CONTENT',
  /** The profile holds no account: register first. */
  NotRegistered: 'CLIENT_NOT_REGISTERED',
  /** An argument of the wrong shape (a phone number that is not E.164, an empty message). */
  InvalidArgument: 'CLIENT_INVALID_ARGUMENT',
  /** The client was closed; the operation did not run (or did not finish). */
  Closed: 'CLIENT_CLOSED',
  /** Stored client data that does not decode, or a store written by a newer release. */
  StoreCorrupt: 'CLIENT_STORE_CORRUPT',
  /** The group is not known here (or the server has no such group). */
  UnknownGroup: 'CLIENT_UNKNOWN_GROUP',
  /** This account is not (or no longer) a member of the group. */
  NotGroupMember: 'CLIENT_NOT_GROUP_MEMBER',
  /** The group would exceed 1,024 members. */
  GroupFull: 'CLIENT_GROUP_FULL',
  /** A group call that already has its 8 participants. */
  CallFull: 'CLIENT_CALL_FULL',
  /** The group's settings do not allow this member to do that (only admins may); the server's 403. */
  Forbidden: 'CLIENT_FORBIDDEN',
  /** An invite link that does not parse, or that the server refused (revoked or wrong). */
  BadInviteLink: 'CLIENT_BAD_INVITE_LINK',
  /** Encrypted group attributes that fail authentication under the master key (tampered, or the wrong key). */
  BadGroupAttributes: 'CLIENT_BAD_GROUP_ATTRIBUTES',
  /**
   * A device of an account that its validly signed device list does not name (or names with another identity
   * key): nothing is encrypted to it. A compromised server, or a list not yet published.
   */
  UntrustedDevice: 'CLIENT_UNTRUSTED_DEVICE',
  /** A device-linking URI (`parley://link/...`) that does not parse. */
  BadLinkUri: 'CLIENT_BAD_LINK_URI',
  /**
   * Linking failed: the provisioning message failed authentication or its signature, the code expired, or the
   * server refused the link.
   */
  LinkFailed: 'CLIENT_LINK_FAILED',
  /** Only the primary device of an account can do that (link or remove other devices). */
  NotPrimary: 'CLIENT_NOT_PRIMARY',
  /** An encrypted blob (a history bundle) whose hash or MAC does not match: tampered, truncated or the wrong key. */
  BadBlob: 'CLIENT_BAD_BLOB',
  /**
   * An encrypted media file whose SHA-256, MAC, padding or size does not match what the message announced:
   * tampered, truncated or the wrong key. Plaintext already streamed out of it must be discarded.
   */
  BadMedia: 'CLIENT_BAD_MEDIA',
  /** `ffmpeg` or `ffprobe`, needed to prepare a video or audio file, is not installed (or not at its configured path). */
  MediaToolMissing: 'CLIENT_MEDIA_TOOL_MISSING',
  /**
   * A file to send that cannot be prepared: not a readable regular file, changed while being read, or
   * recognised as an image, video or audio file that the converter then failed on.
   */
  BadMediaInput: 'CLIENT_BAD_MEDIA_INPUT',
  /**
   * A backup that cannot be restored: not a Parley backup, a format this release does not read, truncated,
   * tampered with, or records that do not parse. Nothing of it was imported.
   */
  BadBackup: 'CLIENT_BAD_BACKUP',
  /** The recovery key or password does not open the backup (for a password, the server counted the attempt). */
  WrongBackupKey: 'CLIENT_WRONG_BACKUP_KEY',
  /** The server deleted the backup's password share after too many wrong passwords: only the recovery key opens it. */
  BackupLocked: 'CLIENT_BACKUP_LOCKED',
  /** The account has no backup on the server (or none with the password slot this file needs). */
  NoBackup: 'CLIENT_NO_BACKUP',
} as const;

/** One of the codes of {@link ClientErrorCode}. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Options of a {@link ClientError} beyond code and message. */
export interface ClientErrorOptions {
  /** Milliseconds after which retrying can succeed (the server's `retry_after_ms`); undefined when unknown. */
  retryAfterMs?: number;
  /** HTTP status of the server's answer, for `CLIENT_SERVER_REJECTED` and friends. */
  status?: number;
  /** The server's stable error code (`SERVER_*`), when the server answered with one. */
  serverCode?: string;
  /** Whether trying again (after `retryAfterMs`) can succeed. Defaults per code. */
  retryable?: boolean;
  cause?: unknown;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  ClientErrorCode.Timeout,
  ClientErrorCode.ConnectionClosed,
]);

/** The base (and only) error class of the client layer. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;
  /** Whether the same operation can succeed when tried again (after {@link retryAfterMs}, when set). */
  readonly retryable: boolean;

  /** `message` must never contain plaintext, keys or phone numbers. */
  constructor(code: ClientErrorCode, message: string, options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
    this.serverCode = options.serverCode;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
  }

  /** True when this error carries `code`. */
  is(code: ClientErrorCode): boolean {
    return this.code === code;
  }

  /** True when `err` is a ClientError, optionally of `code`. */
  static is(err: unknown, code?: ClientErrorCode): err is ClientError {
    return err instanceof ClientError && (code === undefined || err.code === code);
  }
}

/** The error an aborted signal stands for: its reason when that is a ClientError, else `CLIENT_ABORTED`. */
export function abortError(signal: AbortSignal): ClientError {
  const reason: unknown = signal.reason;
  if (reason instanceof ClientError) return reason;
  return new ClientError(ClientErrorCode.Aborted, 'operation aborted', { cause: reason });
}

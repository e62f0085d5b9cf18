/**
 * Branded identifiers. A brand makes the compiler refuse an account id where a phone number is expected;
 * the `as*` functions are the only places that create them from strings, and they validate.
 */
import { ClientError, ClientErrorCode } from './errors.js';

declare const brand: unique symbol;
/** `T` tagged with a compile-time-only brand. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A server account id (a UUID, stable for a phone number across re-registrations). */
export type AccountId = Brand<string, 'AccountId'>;
/** A phone number in E.164 form: `+` and 8 to 15 digits, the first not 0. */
export type E164 = Brand<string, 'E164'>;
/** A group chat's id: 32 lowercase hex digits (16 random bytes chosen by the group's creator). */
export type GroupId = Brand<string, 'GroupId'>;
/** A conversation: the peer's account (1:1 chat) or a group. */
export type ConversationId = AccountId | GroupId;
/** A stored message's id: `<sender account id>:<sender timestamp>`, unique per message. */
export type MessageId = Brand<string, 'MessageId'>;

const E164_RE = /^\+[1-9][0-9]{7,14}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `s` is an E.164 phone number. */
export function isE164(s: string): s is E164 {
  return E164_RE.test(s);
}

/** Validates an E.164 phone number (`CLIENT_INVALID_ARGUMENT` otherwise). */
export function asE164(s: string): E164 {
  if (!isE164(s)) throw new ClientError(ClientErrorCode.InvalidArgument, 'not an E.164 phone number (+ and 8 to 15 digits)');
  return s;
}

/** Whether `s` looks like an account id (a lower-case UUID). */
export function isAccountId(s: string): s is AccountId {
  return UUID_RE.test(s);
}

/** Validates an account id as the server issues them (`CLIENT_BAD_RESPONSE` otherwise: it comes from the server). */
export function asAccountId(s: string): AccountId {
  if (!isAccountId(s)) throw new ClientError(ClientErrorCode.BadResponse, 'the server sent an account id that is not a UUID');
  return s;
}

const GROUP_ID_RE = /^[0-9a-f]{32}$/;

/** Whether `s` is a group id. */
export function isGroupId(s: string): s is GroupId {
  return GROUP_ID_RE.test(s);
}

/** Validates a group id (`CLIENT_INVALID_ARGUMENT` otherwise). */
export function asGroupId(s: string): GroupId {
  if (!isGroupId(s)) throw new ClientError(ClientErrorCode.InvalidArgument, 'not a group id (32 lowercase hex digits)');
  return s;
}

/** The id of the message `sender` sent at `timestamp`. */
export function messageId(sender: AccountId, timestamp: number): MessageId {
  return `${sender}:${timestamp}` as MessageId;
}

/** The 16 bytes of a UUID account id (the identifier safety numbers hash, as Signal's service ids). */
export function accountIdBytes(id: AccountId): Uint8Array {
  const hex = id.replaceAll('-', '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Errors in words: what the user reads instead of an error code. */
import { ClientError, ClientErrorCode } from '../../client/index.js';

const SERVER_WORDS: Readonly<Record<string, string>> = {
  SERVER_RATE_LIMITED: 'Too many attempts. Wait a moment and try again.',
  SERVER_INVALID_CODE: 'That code is not right, or it expired. Check it or ask for a new one.',
  SERVER_UNAUTHORIZED: 'The server did not accept these credentials.',
  SERVER_FORBIDDEN: 'The server does not allow that.',
  SERVER_QUOTA_EXCEEDED: 'Your storage on the server is full.',
  SERVER_TOO_MANY_DEVICES: 'This account has as many linked devices as it may have.',
  SERVER_BAD_REQUEST: 'The server could not understand the request.',
  SERVER_UNAVAILABLE: 'The server is busy right now. Try again in a moment.',
  SERVER_INTERNAL: 'The server ran into a problem. Try again later.',
  SERVER_NOT_FOUND: 'The server does not know that.',
  SERVER_PAYLOAD_TOO_LARGE: 'That is too large for the server.',
};

/** A sentence for any error, never an error code alone. */
export function errorInWords(err: unknown): string {
  if (err instanceof ClientError) {
    switch (err.code) {
      case ClientErrorCode.Timeout:
        return 'The server did not answer in time. Check your connection and try again.';
      case ClientErrorCode.ConnectionClosed:
        return 'The connection to the server was lost. Try again once you are back online.';
      case ClientErrorCode.Unauthorized:
        return 'The server no longer accepts this device. Register or link it again.';
      case ClientErrorCode.UnknownRecipient:
        return 'That number is not on Parley.';
      case ClientErrorCode.IdentityNotVerified:
        return 'This contact’s safety number changed. Check it before sending.';
      case ClientErrorCode.NotRegistered:
        return 'This browser is not registered.';
      case ClientErrorCode.Forbidden:
        return 'Only group admins may do that.';
      case ClientErrorCode.NotGroupMember:
        return 'You are no longer a member of this group.';
      case ClientErrorCode.GroupFull:
        return 'The group is full.';
      case ClientErrorCode.CallFull:
        return 'The call is full (8 people at most).';
      case ClientErrorCode.BadLinkUri:
        return 'That is not a Parley linking code.';
      case ClientErrorCode.LinkFailed:
        return `Linking failed: ${err.message}.`;
      case ClientErrorCode.NotPrimary:
        return 'Only your primary device can link new devices.';
      case ClientErrorCode.InvalidArgument:
        return capitalise(err.message);
      case ClientErrorCode.ServerRejected: {
        const words = err.serverCode === undefined ? undefined : SERVER_WORDS[err.serverCode];
        if (words) return words;
        if (err.status === 429) return SERVER_WORDS.SERVER_RATE_LIMITED as string;
        if (err.status !== undefined && err.status >= 500) return SERVER_WORDS.SERVER_INTERNAL as string;
        return `The server refused: ${err.message}.`;
      }
      default:
        return capitalise(err.message);
    }
  }
  if (err instanceof Error && err.name === 'StoreInUseError') return 'Parley is open in another tab or window. Close it there, then reload this page.';
  if (err instanceof Error && err.name === 'QuotaExceededError') return 'This browser has no room left for Parley’s data.';
  if (err instanceof TypeError && /fetch|network/i.test(err.message)) return 'Cannot reach the server. Check your connection.';
  if (err instanceof Error) return capitalise(err.message);
  return 'Something went wrong.';
}

function capitalise(s: string): string {
  const t = s.trim();
  if (t === '') return 'Something went wrong.';
  const c = t[0]?.toUpperCase() + t.slice(1);
  return /[.!?]$/.test(c) ? c : `${c}.`;
}

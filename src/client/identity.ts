/**
 * Safety numbers and verification. A safety number is computed from both parties' identity keys and account
 * ids (Signal's fingerprint, version 2, 5,200 iterations); the two users compare it out of band and mark the
 * contact verified. Once verified, a change of the contact's key blocks sending until they compare again.
 */
import { FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, Fingerprint } from '../protocol/fingerprint.js';
import { PublicKey, type CryptoProvider } from '../protocol/index.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { accountIdBytes, type AccountId } from './ids.js';
import { requireAccount } from './protocol-stores.js';
import type { ClientStore, IdentityRecord, VerificationStatus } from './store/types.js';

/** The safety number of the conversation with one contact. */
export interface SafetyNumber {
  readonly accountId: AccountId;
  /** 60 digits. */
  readonly digits: string;
  /** The 60 digits in twelve groups of five, as Signal shows them. */
  readonly formatted: string;
  /** The scannable form (the protobuf a QR code carries). */
  readonly scannable: Uint8Array;
  readonly status: VerificationStatus;
  /** The contact's identity key it was computed from (33 bytes). */
  readonly identityKey: Uint8Array;
}

/** Groups of five digits separated by spaces. */
export function formatSafetyNumber(digits: string): string {
  return (digits.match(/.{1,5}/g) ?? []).join(' ');
}

/** The contact's identity record, or `CLIENT_INVALID_ARGUMENT` when no key is known yet (no message exchanged). */
async function identityOf(store: ClientStore, accountId: AccountId): Promise<IdentityRecord> {
  const rec = await store.transaction((tx) => tx.identities.get(accountId));
  if (!rec) throw new ClientError(ClientErrorCode.InvalidArgument, 'no identity key known for this contact yet: exchange a message first');
  return rec;
}

/** Computes the safety number with `accountId`. */
export async function safetyNumber(crypto: CryptoProvider, store: ClientStore, accountId: AccountId): Promise<SafetyNumber> {
  const account = await store.transaction((tx) => requireAccount(tx));
  const remote = await identityOf(store, accountId);
  const fp = await Fingerprint.create(
    crypto,
    FINGERPRINT_ITERATIONS,
    FINGERPRINT_VERSION,
    accountIdBytes(account.accountId),
    PublicKey.deserialize(account.identityPublicKey),
    accountIdBytes(accountId),
    PublicKey.deserialize(remote.identityKey),
  );
  const digits = fp.displayable.toString();
  return { accountId, digits, formatted: formatSafetyNumber(digits), scannable: fp.scannable.serialize(), status: remote.status, identityKey: remote.identityKey };
}

/**
 * Sets the verification status of a contact's current key. `identityKey`, when given, must be the key the
 * user compared (the one {@link safetyNumber} returned): if the key changed in the meantime the call fails
 * with `CLIENT_INVALID_ARGUMENT` rather than verify a key the user never saw.
 */
export async function setVerificationStatus(
  store: ClientStore,
  accountId: AccountId,
  status: 'verified' | 'unverified',
  identityKey?: Uint8Array,
): Promise<IdentityRecord> {
  return store.transaction(async (tx) => {
    const rec = await tx.identities.get(accountId);
    if (!rec) throw new ClientError(ClientErrorCode.InvalidArgument, 'no identity key known for this contact yet');
    if (identityKey && !sameBytes(identityKey, rec.identityKey)) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'the identity key changed since the safety number was shown: compare again');
    }
    const next = { ...rec, status };
    await tx.identities.put(next);
    return next;
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Contacts: phone numbers to accounts (the server's directory, GET /v1/accounts/lookup) and back. A number
 * is shown as a sender's only once the directory confirmed it: what a sender writes into its messages is a
 * claim, checked here once per contact.
 */
import type { ServiceApi } from './api.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { isE164, type AccountId, type E164 } from './ids.js';
import type { RequestOptions } from './transport/types.js';
import type { ClientStore, ContactRecord, VerificationStatus } from './store/types.js';

/** A contact with what we know about its identity. */
export interface ContactView extends ContactRecord {
  /** Undefined until a message has been exchanged. */
  readonly identityStatus: VerificationStatus | undefined;
}

export class ContactDirectory {
  readonly #store: ClientStore;
  readonly #api: () => ServiceApi;
  readonly #now: () => number;
  /** Accounts whose claimed number was looked up in this process (a failed lookup is not repeated per message). */
  readonly #checked = new Set<AccountId>();

  constructor(options: { store: ClientStore; api: () => ServiceApi; now: () => number }) {
    this.#store = options.store;
    this.#api = options.api;
    this.#now = options.now;
  }

  /** The account of `number`: from the contacts when confirmed, else from the server's directory (then saved). */
  async resolve(number: E164, options?: RequestOptions): Promise<AccountId> {
    const known = await this.#store.transaction((tx) => tx.contacts.getByNumber(number));
    if (known?.numberVerified) return known.accountId;
    const accountId = await this.#api().lookup(number, options);
    await this.#saveConfirmed(accountId, number);
    return accountId;
  }

  /**
   * Confirms a contact's claimed number against the directory (once per process): kept and marked confirmed
   * when the directory agrees, dropped when it names another account. Network failures leave it unconfirmed.
   */
  async confirm(accountId: AccountId, options?: RequestOptions): Promise<ContactRecord | undefined> {
    const contact = await this.#store.transaction((tx) => tx.contacts.get(accountId));
    if (!contact?.number || contact.numberVerified || this.#checked.has(accountId)) return contact;
    this.#checked.add(accountId);
    const number = contact.number;
    let owner: AccountId | undefined;
    try {
      owner = await this.#api().lookup(number, options);
    } catch (err) {
      if (!ClientError.is(err, ClientErrorCode.UnknownRecipient)) return contact;
    }
    return this.#store.transaction(async (tx) => {
      const current = await tx.contacts.get(accountId);
      if (!current || current.number !== number) return current;
      const next: ContactRecord =
        owner === accountId
          ? { ...current, numberVerified: true, updatedAt: this.#now() }
          : { ...current, number: undefined, numberVerified: false, updatedAt: this.#now() };
      await tx.contacts.put(next);
      return next;
    });
  }

  async #saveConfirmed(accountId: AccountId, number: E164): Promise<void> {
    const now = this.#now();
    await this.#store.transaction(async (tx) => {
      // Another contact that claimed this number does not own it.
      const previous = await tx.contacts.getByNumber(number);
      if (previous && previous.accountId !== accountId) await tx.contacts.put({ ...previous, number: undefined, numberVerified: false, updatedAt: now });
      const existing = await tx.contacts.get(accountId);
      await tx.contacts.put(
        existing
          ? { ...existing, number, numberVerified: true, updatedAt: now }
          : { accountId, number, numberVerified: true, expireTimer: 0, createdAt: now, updatedAt: now },
      );
    });
    this.#checked.add(accountId);
  }

  /** All contacts with their identity status. */
  async list(): Promise<ContactView[]> {
    return this.#store.transaction(async (tx) => {
      const out: ContactView[] = [];
      for (const c of await tx.contacts.list()) out.push({ ...c, identityStatus: (await tx.identities.get(c.accountId))?.status });
      return out;
    });
  }

  /** The contact with `number` (confirmed or claimed), if any. */
  async byNumber(number: string): Promise<ContactRecord | undefined> {
    if (!isE164(number)) return undefined;
    return this.#store.transaction((tx) => tx.contacts.getByNumber(number));
  }
}

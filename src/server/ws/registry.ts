/**
 * The sockets connected to this process, by device and by account. One socket per device: a new
 * connection of the same device replaces the old one (closed with 4409), as Signal-Server does; across
 * nodes the bus's `connected` event does the same. Presence "online" on this node is read from here.
 */
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { AccountId, DeviceRef } from '../ids.js';
import { CloseCode } from './close-codes.js';

/** What the registry needs of a socket. */
export interface RegisteredSocket {
  readonly device: AuthenticatedDevice;
  close(code: number, reason: string): void;
}

/** Connected sockets. */
export class ConnectionRegistry {
  readonly #byDevice = new Map<DeviceRef, RegisteredSocket>();
  readonly #byAccount = new Map<AccountId, Set<RegisteredSocket>>();

  /**
   * Adds a socket, closing an older socket of the same device. True when it is its account's first
   * socket here (the account just came online on this node).
   */
  add(socket: RegisteredSocket): boolean {
    const previous = this.#byDevice.get(socket.device.ref);
    if (previous !== undefined) {
      this.remove(previous);
      previous.close(CloseCode.Replaced, 'replaced by a newer connection');
    }
    this.#byDevice.set(socket.device.ref, socket);
    let sockets = this.#byAccount.get(socket.device.accountId);
    const first = sockets === undefined;
    if (sockets === undefined) {
      sockets = new Set();
      this.#byAccount.set(socket.device.accountId, sockets);
    }
    sockets.add(socket);
    return first;
  }

  /** Removes a socket; true when its account has no socket left (it just went offline). */
  remove(socket: RegisteredSocket): boolean {
    if (this.#byDevice.get(socket.device.ref) === socket) this.#byDevice.delete(socket.device.ref);
    const sockets = this.#byAccount.get(socket.device.accountId);
    if (sockets === undefined || !sockets.delete(socket)) return false;
    if (sockets.size > 0) return false;
    this.#byAccount.delete(socket.device.accountId);
    return true;
  }

  /** True while any device of the account has a socket here. */
  isOnline(accountId: AccountId): boolean {
    return this.#byAccount.has(accountId);
  }

  /** The number of connected sockets. */
  get size(): number {
    return this.#byDevice.size;
  }

  /** Every connected socket (for shutdown). */
  sockets(): RegisteredSocket[] {
    return [...this.#byDevice.values()];
  }
}

/**
 * Linked devices (docs/multi-device.md): an account has one primary (device 1) and up to 4 companions.
 *
 * - `parley link --server URL`: on a new, empty profile; shows a `parley://link/...` code (a QR code and its
 *   text), waits until the primary approved it, and leaves the profile a registered companion.
 * - `parley devices`: the account's devices.
 * - `parley devices link <uri>`: on the primary; asks for approval (unless `--yes`), links the companion,
 *   publishes the signed device list and sends the companion the recent history.
 * - `parley devices remove <id>`: the primary removes a companion; a companion removing its own id (or
 *   `parley unlink`) logs itself out.
 */
import { hostname } from 'node:os';
import QRCode from 'qrcode';
import type { Client } from '../../client/client.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import { LINK_URI_PREFIX, parseLinkUri } from '../../client/link-crypto.js';
import { startLinking } from '../../client/linking.js';
import { ask, type Io, type Printer } from '../io.js';
import { crypto, openStore } from '../profile.js';
import { withClient } from './send.js';

/** How long `parley link` waits for the primary by default, s (the primary's provisioning code lives 10 minutes). */
export const DEFAULT_LINK_TIMEOUT_S = 300;
/** How long `parley devices link` waits for the new device by default, s. */
export const DEFAULT_APPROVE_TIMEOUT_S = 120;
/** How long `devices link` lets the history and the device-list sync go out before exiting, ms. */
const HISTORY_SETTLE_MS = 30_000;

/** A device of this account as the JSON interfaces show it (`parley devices --json`, the daemon's `devices`). */
export interface DeviceLine {
  readonly deviceId: number;
  readonly name: string | null;
  readonly primary: boolean;
  readonly self: boolean;
  /** Named in the account's signed device list (the primary always is). */
  readonly listed: boolean;
  readonly createdAt: number;
  readonly lastSeen: number;
}

/** The account's devices, by device id. */
export async function deviceLines(client: Client): Promise<DeviceLine[]> {
  const devices = await client.devices();
  return devices
    .map((d) => ({
      deviceId: d.deviceId,
      name: d.name ?? null,
      primary: d.primary,
      self: d.self,
      listed: d.listed,
      createdAt: d.createdAt,
      lastSeen: d.lastSeen,
    }))
    .sort((a, b) => a.deviceId - b.deviceId);
}

const day = (ms: number): string => (ms > 0 ? new Date(ms).toISOString().slice(0, 10) : 'never');

/** One readable line of a device. */
export function deviceText(d: DeviceLine): string {
  const role = d.primary ? 'primary' : 'companion';
  const tags = [d.self ? 'this device' : '', d.listed ? '' : 'not in the signed device list yet'].filter((t) => t !== '');
  return `${String(d.deviceId).padStart(2)}  ${role.padEnd(9)}  ${(d.name ?? '(no name)').padEnd(20)}  created ${day(d.createdAt)}  last seen ${day(d.lastSeen)}${
    tags.length > 0 ? `  (${tags.join(', ')})` : ''
  }`;
}

/** Refuses a text that is not a linking code (before the profile is opened or anything is asked). */
export function checkLinkUri(uri: string): string {
  try {
    parseLinkUri(uri);
  } catch (err) {
    if (!ClientError.is(err, ClientErrorCode.BadLinkUri)) throw err;
    throw new ClientError(ClientErrorCode.BadLinkUri, `not a linking code: ${err.message}; copy the whole ${LINK_URI_PREFIX}... text the new device shows (parley link)`);
  }
  return uri.trim();
}

/** A signal that aborts after `seconds` with a `CLIENT_TIMEOUT` saying `what` (and on Ctrl-C with `sigint`); dispose when done. */
export function timeoutSignal(seconds: number, what: string, options: { sigint?: boolean } = {}): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new ClientError(ClientErrorCode.Timeout, what)), seconds * 1000);
  const onSigint = (): void => controller.abort(new ClientError(ClientErrorCode.Aborted, 'cancelled'));
  if (options.sigint === true) process.once('SIGINT', onSigint);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      process.off('SIGINT', onSigint);
    },
  };
}

/** Resolves with `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}

/** `parley link`: makes this (empty) profile a companion of an account whose primary approves the code it shows. */
export async function linkCommand(
  args: { server: string; name: string | undefined; timeout: number | undefined; profile: string },
  out: Printer,
): Promise<number> {
  let serverUrl: string;
  try {
    serverUrl = new URL(args.server).origin;
  } catch {
    throw new ClientError(ClientErrorCode.InvalidArgument, `not a server URL: ${args.server}`);
  }
  const seconds = args.timeout ?? DEFAULT_LINK_TIMEOUT_S;
  const store = openStore(args.profile);
  try {
    const existing = await store.transaction((tx) => tx.account.get());
    if (existing) {
      throw new ClientError(
        ClientErrorCode.InvalidArgument,
        `this profile already belongs to ${existing.number} (device ${existing.deviceId}): link into a new profile folder (--profile DIR)`,
      );
    }
    const linking = await startLinking({ serverUrl, crypto, store, deviceName: args.name ?? `parley on ${hostname()}` });
    const { signal, dispose } = timeoutSignal(seconds, `no primary device approved this code within ${seconds} s: run parley link again for a new code`, { sigint: true });
    try {
      if (out.json) {
        out.result({ uri: linking.uri }, linking.uri);
      } else {
        const qr = await QRCode.toString(linking.uri, { type: 'terminal', small: true });
        out.io.stdout.write(`${qr}\nOn the primary device, scan this code or run:\n  parley devices link ${linking.uri}\n`);
        out.io.stderr.write(`Waiting for the primary device to approve (at most ${seconds} s)...\n`);
      }
      let account;
      try {
        account = await untilAborted(linking.done, signal);
      } catch (err) {
        linking.cancel();
        throw err;
      }
      out.result(
        { accountId: account.accountId, deviceId: account.deviceId, number: account.number, profile: args.profile },
        `Linked: this profile is device ${account.deviceId} of ${account.number} (account ${account.accountId}).`,
      );
      return 0;
    } finally {
      dispose();
    }
  } finally {
    await store.close();
  }
}

export async function devicesCommand(args: { profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    for (const d of await deviceLines(client)) out.result({ ...d }, deviceText(d));
    return 0;
  }, 0);
}

/** Links the companion that shows `uri` (the primary only); shared with the daemon. */
export async function linkDevice(client: Client, uri: string, signal?: AbortSignal): Promise<{ deviceId: number }> {
  if (!client.isPrimary) {
    throw new ClientError(ClientErrorCode.NotPrimary, `only the primary device (device 1) links new devices; this is device ${client.deviceId}`);
  }
  return client.linkDevice(checkLinkUri(uri), signal === undefined ? {} : { signal });
}

export async function devicesLinkCommand(args: { uri: string; yes: boolean; timeout: number | undefined; profile: string }, io: Io, out: Printer): Promise<number> {
  const uri = checkLinkUri(args.uri);
  const seconds = args.timeout ?? DEFAULT_APPROVE_TIMEOUT_S;
  return withClient(
    args.profile,
    async (client) => {
      if (!client.isPrimary) {
        throw new ClientError(ClientErrorCode.NotPrimary, `only the primary device (device 1) links new devices; this is device ${client.deviceId}`);
      }
      if (!args.yes) {
        const answer = await ask(io, `Link a new device to ${client.number}? It will read and send your messages. [y/N] `, 'no answer on stdin: nothing was linked (pass --yes to approve without asking)');
        if (!/^y(es)?$/i.test(answer)) throw new ClientError(ClientErrorCode.Aborted, 'not approved: nothing was linked');
      }
      const { signal, dispose } = timeoutSignal(seconds, `the new device did not finish linking within ${seconds} s; if it still shows its code, run this again`, { sigint: true });
      try {
        const { deviceId } = await linkDevice(client, uri, signal);
        out.result({ deviceId, number: client.number, accountId: client.accountId }, `Linked device ${deviceId} to ${client.number}; it receives the recent history now.`);
        return 0;
      } finally {
        dispose();
      }
    },
    HISTORY_SETTLE_MS,
    out,
  );
}

/** Removes device `deviceId` of this account (the primary: a companion; a companion: itself); shared with the daemon. */
export async function removeDevice(client: Client, deviceId: number): Promise<{ deviceId: number; self: boolean }> {
  const self = deviceId === client.deviceId;
  if (self && client.isPrimary) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'the primary device cannot remove itself (its key is the account\'s): register the number again to start over');
  }
  if (!self && !client.isPrimary) {
    throw new ClientError(ClientErrorCode.NotPrimary, `only the primary device removes other devices; this companion can only unlink itself (device ${client.deviceId})`);
  }
  await client.removeDevice(deviceId);
  return { deviceId, self };
}

export async function devicesRemoveCommand(args: { deviceId: number | undefined; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const { deviceId, self } = await removeDevice(client, args.deviceId ?? client.deviceId);
    out.result(
      { deviceId, removed: true, self },
      self
        ? `Unlinked this device (device ${deviceId}) from ${client.number}: it receives nothing more. Its history stays in this profile; link again with parley link and a new profile folder.`
        : `Removed device ${deviceId} from ${client.number}: it receives nothing more.`,
    );
    return 0;
  }, 10_000);
}

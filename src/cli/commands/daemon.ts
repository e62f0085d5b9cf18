/**
 * `parley daemon`: keeps the profile connected and offers JSON-RPC 2.0 (one JSON object per line) on stdio and
 * on a unix socket in the profile folder (`parley.sock`, or `--socket PATH`), for bots and integrations.
 *
 * Methods: `send` {to | groupId, text, quote?, viewOnce?}, `receive` {timeout?} (the events that arrived since
 * the last call, waiting up to `timeout` seconds for one), `contacts`, `safetyNumber` {to}; and `markRead`
 * {conversation}, `markVerified` {to}, `typing` {to, started?}, `messages` {conversation, limit?} (a
 * conversation is a phone number, an account id or a group id). Groups: `groupCreate` {name, members,
 * description?}, `groupAdd` / `groupRemove` / `groupPromote` / `groupDemote` {groupId, members},
 * `groupLeave` {groupId}, `groupInfo` {groupId, refresh?}, `groupList`, `groupUpdate` {groupId, name?,
 * description?, adminsSend?, adminsEdit?, adminsManage?}, `groupLink` {groupId, revoke?} and `groupJoin`
 * {link}; each answers with the group as `parley group info --json` prints it. Linked devices: `devices` (the
 * account's devices as `parley devices --json` prints them), `devicesLink` {uri, timeout?} (the primary: links the
 * companion showing that code, the call being the approval; answers {deviceId}) and `devicesRemove` {deviceId}
 * (the primary removes a companion; a companion its own id, which logs it out). Media: `sendFile` {to | groupId,
 * path, caption?, original?, voiceNote?, viewOnce?} (as `parley send-file`), `download` {id, index?} (as
 * `parley download`) and `view` {id, out} (as `parley view`); attachments of incoming messages (not view-once
 * ones) are downloaded before their notification, which carries `attachment` as `parley receive --json` does. Backups: `backupCreate` (as `parley backup create` with the
 * profile's set-up) and `backupStatus` (as `parley backup status --json`); with a backup interval
 * (`--backup-every`, or `parley backup schedule`) the daemon makes backups on its own.
 * Every incoming event is also sent to every connected peer as a `message` notification whose params are
 * the object `parley receive --json` prints.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { waitAtMost } from '../../client/async.js';
import type { Client } from '../../client/client.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { GroupView } from '../../client/groups/state.js';
import type { MessageId } from '../../client/ids.js';
import { explainGroupErrors, groupIdArg, groupJson } from '../groups.js';
import { describeError, type Io } from '../io.js';
import { DEFAULT_APPROVE_TIMEOUT_S, deviceLines, linkDevice, removeDevice, timeoutSignal } from './devices.js';
import { changeMembers, checkMemberCount, updateGroup } from './group.js';
import { groupContext, messageLine } from './info.js';
import { openClient, openStore } from '../profile.js';
import { subscribeEvents, type EventLine } from '../events.js';
import { viewOnceFiles } from './media.js';
import { attachmentFields, attachmentLine, outgoingDir } from '../media.js';
import { prepareFile } from '../../node/media/prepare.js';
import { startBackupSchedule } from '../daemon/backup-schedule.js';
import { backupResultJson, statusJson } from './backup.js';
import {
  MAX_LINE_BYTES,
  RpcError,
  RpcErrorCode,
  RpcServer,
  booleanParam,
  notification,
  numberParam,
  optionalStringParam,
  stringArrayParam,
  stringParam,
  type RpcMethod,
} from '../daemon/jsonrpc.js';

/** The socket file in the profile folder. */
export const SOCKET_FILE = 'parley.sock';
/** Events kept for `receive` calls at most (older ones are dropped first). */
const MAX_BUFFERED_EVENTS = 10_000;

/** The daemon's methods over a client. */
export function daemonMethods(client: Client, buffer: EventBuffer, profile: string): Record<string, RpcMethod> {
  const view = (g: GroupView): Record<string, unknown> => groupJson(g, client.number);
  return {
    backupCreate: async () => backupResultJson(await client.createBackup()),
    backupStatus: async () => statusJson(await client.backupStatus()),
    sendFile: async (p) => {
      const group = optionalStringParam(p, 'groupId');
      if ((group === undefined) === (p.to === undefined)) throw new RpcError(RpcErrorCode.InvalidParams, 'give exactly one of "to" and "groupId"');
      const prepared = await prepareFile(stringParam(p, 'path'), {
        original: booleanParam(p, 'original') ?? false,
        voiceNote: booleanParam(p, 'voiceNote') ?? false,
        workDir: outgoingDir(profile),
      });
      const options = { caption: optionalStringParam(p, 'caption'), viewOnce: booleanParam(p, 'viewOnce') ?? false };
      const m =
        group !== undefined
          ? await explainGroupErrors('send', () => client.sendAttachment(groupIdArg(group), prepared.input, options))
          : await client.sendAttachment(stringParam(p, 'to'), prepared.input, options);
      await prepared.cleanup();
      return {
        id: m.id,
        timestamp: m.timestamp,
        status: m.status,
        ...(group !== undefined ? { groupId: m.conversationId } : { toAccountId: m.conversationId }),
        ...attachmentFields(m.attachments),
      };
    },
    download: async (p) => {
      const id = stringParam(p, 'id') as MessageId;
      const a = await client.downloadAttachment(id, { index: numberParam(p, 'index') ?? 0 });
      return { id, attachment: attachmentLine(a) };
    },
    view: async (p) => {
      const id = stringParam(p, 'id') as MessageId;
      return { id, viewed: true, files: await viewOnceFiles(client, id, stringParam(p, 'out')) };
    },
    send: async (p) => {
      const quoteId = optionalStringParam(p, 'quote');
      const quote = quoteId === undefined ? undefined : await client.message(quoteId as MessageId);
      const group = optionalStringParam(p, 'groupId');
      if ((group === undefined) === (p.to === undefined)) throw new RpcError(RpcErrorCode.InvalidParams, 'give exactly one of "to" and "groupId"');
      const text = stringParam(p, 'text');
      const options = { quote, viewOnce: booleanParam(p, 'viewOnce') ?? false };
      if (group !== undefined) {
        const id = groupIdArg(group);
        const m = await explainGroupErrors('send', () => client.sendText(id, text, options));
        return { id: m.id, timestamp: m.timestamp, status: m.status, groupId: id };
      }
      const m = await client.sendText(stringParam(p, 'to'), text, options);
      return { id: m.id, timestamp: m.timestamp, status: m.status, toAccountId: m.conversationId };
    },
    receive: async (p) => buffer.take(numberParam(p, 'timeout') ?? 0),
    contacts: async () =>
      (await client.contacts()).map((c) => ({
        accountId: c.accountId,
        number: c.number ?? null,
        numberVerified: c.numberVerified,
        identity: c.identityStatus ?? null,
        expireTimer: c.expireTimer,
      })),
    safetyNumber: async (p) => {
      const sn = await client.safetyNumber(stringParam(p, 'to'));
      return { accountId: sn.accountId, safetyNumber: sn.digits, formatted: sn.formatted, status: sn.status, scannable: Buffer.from(sn.scannable).toString('base64') };
    },
    markRead: async (p) => ({ read: (await client.markRead(stringParam(p, 'conversation'))).map((m) => m.id) }),
    markVerified: async (p) => ({ status: (await client.markVerified(stringParam(p, 'to'))).status }),
    typing: async (p) => {
      await client.sendTyping(stringParam(p, 'to'), booleanParam(p, 'started') ?? true);
      return {};
    },
    messages: async (p) => {
      const limit = numberParam(p, 'limit');
      const conversation = stringParam(p, 'conversation');
      const ctx = await groupContext(client, conversation);
      return (await client.messages(ctx ? ctx.group.id : conversation, limit === undefined ? {} : { limit })).map((m) => messageLine(m, ctx));
    },
    groupCreate: async (p) => {
      const description = optionalStringParam(p, 'description');
      const name = stringParam(p, 'name');
      const members = stringArrayParam(p, 'members');
      checkMemberCount(members, 1);
      return view(await explainGroupErrors('create groups', () => client.createGroup(name, members, description === undefined ? {} : { description })));
    },
    groupAdd: async (p) => view(await changeMembers(client, 'add', stringParam(p, 'groupId'), stringArrayParam(p, 'members'))),
    groupRemove: async (p) => view(await changeMembers(client, 'remove', stringParam(p, 'groupId'), stringArrayParam(p, 'members'))),
    groupPromote: async (p) => view(await changeMembers(client, 'promote', stringParam(p, 'groupId'), stringArrayParam(p, 'members'))),
    groupDemote: async (p) => view(await changeMembers(client, 'demote', stringParam(p, 'groupId'), stringArrayParam(p, 'members'))),
    groupLeave: async (p) => {
      const id = groupIdArg(stringParam(p, 'groupId'));
      await explainGroupErrors('leave', () => client.leaveGroup(id));
      return { groupId: id, left: true };
    },
    groupInfo: async (p) => {
      const id = groupIdArg(stringParam(p, 'groupId'));
      const g = await explainGroupErrors('see the group', async () => ((booleanParam(p, 'refresh') ?? false) ? client.refreshGroup(id) : client.group(id)));
      if (!g) throw new ClientError(ClientErrorCode.UnknownGroup, 'unknown group: this profile is not in a group with that id');
      return view(g);
    },
    groupList: async () => (await client.groups()).map(view),
    groupUpdate: async (p) =>
      view(
        await updateGroup(client, {
          groupId: stringParam(p, 'groupId'),
          name: optionalStringParam(p, 'name'),
          description: optionalStringParam(p, 'description'),
          adminsSend: booleanParam(p, 'adminsSend'),
          adminsEdit: booleanParam(p, 'adminsEdit'),
          adminsManage: booleanParam(p, 'adminsManage'),
        }),
      ),
    groupLink: async (p) => {
      const id = groupIdArg(stringParam(p, 'groupId'));
      if (booleanParam(p, 'revoke') ?? false) {
        await explainGroupErrors('manage invite links', () => client.revokeInviteLink(id));
        return { groupId: id, inviteLinkEnabled: false, link: null };
      }
      return { groupId: id, inviteLinkEnabled: true, link: await explainGroupErrors('manage invite links', () => client.createInviteLink(id)) };
    },
    groupJoin: async (p) => {
      const link = stringParam(p, 'link');
      return view(await explainGroupErrors('join', () => client.joinGroup(link.trim())));
    },
    devices: async () => deviceLines(client),
    devicesLink: async (p) => {
      const uri = stringParam(p, 'uri');
      const seconds = numberParam(p, 'timeout') ?? DEFAULT_APPROVE_TIMEOUT_S;
      const { signal, dispose } = timeoutSignal(seconds, `the new device did not finish linking within ${seconds} s`);
      try {
        return { deviceId: (await linkDevice(client, uri, signal)).deviceId };
      } finally {
        dispose();
      }
    },
    devicesRemove: async (p) => {
      const deviceId = numberParam(p, 'deviceId');
      if (deviceId === undefined || !Number.isSafeInteger(deviceId) || deviceId < 1) throw new RpcError(RpcErrorCode.InvalidParams, '"deviceId" must be a device id (a whole number)');
      return { ...(await removeDevice(client, deviceId)), removed: true };
    },
  };
}

/** Events waiting for a `receive` call. */
export class EventBuffer {
  #events: EventLine[] = [];
  #waiters: Array<() => void> = [];

  push(line: EventLine): void {
    this.#events.push(line);
    if (this.#events.length > MAX_BUFFERED_EVENTS) this.#events.shift();
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The buffered events (waiting up to `timeoutS` seconds for one when there is none). */
  async take(timeoutS: number): Promise<EventLine[]> {
    if (this.#events.length === 0 && timeoutS > 0) {
      await waitAtMost(new Promise<void>((r) => this.#waiters.push(r)), timeoutS * 1000);
    }
    const out = this.#events;
    this.#events = [];
    return out;
  }
}

function toRpcError(err: unknown): RpcError {
  const { message, code } = describeError(err);
  return new RpcError(RpcErrorCode.ApplicationError, message, code === undefined ? undefined : { code });
}

/** Serves newline-delimited JSON-RPC on a pair of streams; returns a function that sends a line to the peer. */
function serveStream(rpc: RpcServer, input: NodeJS.ReadableStream, write: (line: string) => void, onEnd: () => void): void {
  const rl = createInterface({ input, terminal: false, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (line.length > MAX_LINE_BYTES) {
      write(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InvalidRequest, message: 'request too large' } }));
      return;
    }
    void rpc.handleLine(line).then((res) => {
      if (res !== undefined) write(res);
    });
  });
  rl.on('close', onEnd);
}

export async function daemonCommand(args: { profile: string; socket: string | undefined; stdio: boolean; backupEveryMs?: number | undefined }, io: Io): Promise<number> {
  const store = openStore(args.profile);
  const client = await openClient(args.profile, store).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const buffer = new EventBuffer();
  const rpc = new RpcServer(daemonMethods(client, buffer, args.profile), toRpcError);
  const peers = new Set<(line: string) => void>();
  const stopEvents = subscribeEvents(
    client,
    (line) => {
      buffer.push(line);
      const n = notification('message', line);
      for (const send of peers) send(n);
    },
    { downloadAttachments: true },
  );

  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const socketPath = args.socket ?? path.join(args.profile, SOCKET_FILE);
  if (existsSync(socketPath)) rmSync(socketPath);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const send = (line: string): void => {
      if (!socket.destroyed) socket.write(`${line}\n`);
    };
    peers.add(send);
    socket.on('error', () => undefined);
    serveStream(rpc, socket, send, () => {
      peers.delete(send);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);

  if (args.stdio) {
    const send = (line: string): void => {
      io.stdout.write(`${line}\n`);
    };
    peers.add(send);
    serveStream(rpc, io.stdin, send, finish);
  }
  client.on('error', ({ context, error }) => {
    const { message, code } = describeError(error);
    io.stderr.write(`parley daemon: ${context}: ${message}${code ? ` [${code}]` : ''}\n`);
  });
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  io.stderr.write(`parley daemon: listening on ${socketPath}${args.stdio ? ' and stdio' : ''}\n`);
  client.connect();
  const stopBackups = await startBackupSchedule(client, {
    everyMs: args.backupEveryMs,
    onBackup: (r) => io.stderr.write(`parley daemon: backup made (${r.size} bytes, ${r.counts.messages} messages)\n`),
    onError: (error) => {
      const { message, code } = describeError(error);
      io.stderr.write(`parley daemon: backup: ${message}${code ? ` [${code}]` : ''}\n`);
    },
  });

  await finished;
  await stopBackups();
  await stopEvents();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (existsSync(socketPath)) rmSync(socketPath);
  await waitAtMost(client.whenIdle(), 5_000);
  await client.close();
  await store.close();
  return 0;
}

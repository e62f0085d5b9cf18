/**
 * Groups as the terminal client shows them: one JSON object per group (`parley group info --json`, the
 * daemon's `groupInfo`), readable text, descriptions of group system messages ("Alice added Bob"), and the
 * errors of group commands with the reason in words.
 */
import type { Client } from '../client/client.js';
import type { GroupView } from '../client/groups/state.js';
import { ClientError, ClientErrorCode } from '../client/errors.js';
import { asGroupId, isGroupId, type GroupId } from '../client/ids.js';
import type { GroupUpdateRecord, MessageRecord } from '../client/store/types.js';

/** A member's number: the one the SDK knows, and this profile's own for itself. */
function memberNumber(m: GroupView['members'][number], selfNumber: string): string | undefined {
  return m.number ?? (m.self ? selfNumber : undefined);
}

/** The JSON object of a group (`groupId` first: what scripts read after `group create --json`); `selfNumber` is this profile's. */
export function groupJson(g: GroupView, selfNumber: string): Record<string, unknown> {
  const self = g.members.find((m) => m.self);
  return {
    groupId: g.id,
    name: g.name,
    description: g.description,
    revision: g.revision,
    active: g.active,
    role: !g.active || !self ? 'none' : self.admin ? 'admin' : 'member',
    memberCount: g.members.length,
    members: g.members.map((m) => ({ accountId: m.accountId, number: memberNumber(m, selfNumber) ?? null, admin: m.admin, self: m.self })),
    settings: { ...g.settings },
    inviteLinkEnabled: g.inviteLinkEnabled,
    expireTimer: g.expireTimer,
    createdAt: g.createdAt,
  };
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** A one-line summary (`parley group list`). */
export function groupSummary(g: GroupView): string {
  const self = g.members.find((m) => m.self);
  const role = !g.active ? 'left' : self?.admin ? 'admin' : 'member';
  return `${g.id}  ${g.name || '(no name)'}  ${g.members.length} member(s), ${role}`;
}

/** Every detail, readable (`parley group info`). */
export function groupText(g: GroupView, selfNumber: string): string {
  const self = g.members.find((m) => m.self);
  const lines = [
    `${g.name || '(no name)'}  (${g.id})`,
    ...(g.description ? [`  ${g.description}`] : []),
    `  revision ${g.revision}; you are ${!g.active || !self ? 'not a member (left or removed)' : self.admin ? 'an admin' : 'a member'}`,
    `  members (${g.members.length}):`,
    ...g.members.map((m) => `    ${(memberNumber(m, selfNumber) ?? m.accountId).padEnd(17)}${m.admin ? ' admin' : ''}${m.self ? ' (you)' : ''}`),
    `  only admins manage members: ${onOff(g.settings.adminsManageMembers)}; edit name and description: ${onOff(g.settings.adminsEditInfo)}; send: ${onOff(g.settings.adminsSend)}`,
    `  invite link: ${onOff(g.inviteLinkEnabled)}; disappearing messages: ${g.expireTimer === 0 ? 'off' : `${g.expireTimer} s`}`,
  ];
  return lines.join('\n');
}

/** Validates a group id argument (`CLIENT_INVALID_ARGUMENT`). */
export function groupIdArg(s: string): GroupId {
  return asGroupId(s.trim().toLowerCase());
}

/** Whether a conversation argument names a group (32 hex digits) rather than a phone number or account. */
export function isGroupArg(s: string): boolean {
  return isGroupId(s.trim().toLowerCase());
}

/** A name for an account in the lines below: its number when `names` knows it, else the account id. */
export type NameOf = (accountId: string) => string;

function list(ids: readonly string[], nameOf: NameOf): string {
  const names = ids.map(nameOf);
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}`;
}

/** The numbers this profile knows for accounts (group members and contacts; "you" for itself), for readable group lines. */
export async function namesFor(client: Client, group: GroupView | undefined): Promise<NameOf> {
  const names = new Map<string, string>();
  for (const c of await client.contacts()) if (c.number !== undefined) names.set(c.accountId, c.number);
  for (const m of group?.members ?? []) if (m.number !== undefined) names.set(m.accountId, m.number);
  // Group lines say "you" for this profile (its own number is not a contact).
  names.set(client.accountId, 'you');
  return (id) => names.get(id) ?? id;
}

/** What a group system message says, in words: "Alice added Bob and Carol", "Carol left". */
export function describeGroupUpdate(u: GroupUpdateRecord, nameOf: NameOf): string {
  const actor = nameOf(u.actorId);
  const parts: string[] = [];
  const added = u.added.filter((id) => id !== u.actorId);
  if (u.created) parts.push(`${actor} created the group${added.length > 0 ? ` with ${list(added, nameOf)}` : ''}`);
  else if (added.length > 0) parts.push(`${actor} added ${list(added, nameOf)}`);
  if (u.joinedByLink) parts.push(`${actor} joined through the invite link`);
  if (u.left) parts.push(`${actor} left`);
  const removed = u.left ? u.removed.filter((id) => id !== u.actorId) : u.removed;
  if (removed.length > 0) parts.push(`${actor} removed ${list(removed, nameOf)}`);
  if (u.promoted.length > 0) parts.push(`${actor} made ${list(u.promoted, nameOf)} admin`);
  if (u.demoted.length > 0) parts.push(`${actor} removed admin rights from ${list(u.demoted, nameOf)}`);
  if (u.name !== undefined) parts.push(`${actor} changed the name to "${u.name}"`);
  if (u.descriptionChanged) parts.push(`${actor} changed the description`);
  if (u.avatarChanged) parts.push(`${actor} changed the avatar`);
  if (u.settingsChanged) parts.push(`${actor} changed the group settings`);
  if (u.inviteLinkChanged) parts.push(`${actor} changed the invite link`);
  if (parts.length === 0) parts.push(`${actor} updated the group (revision ${u.revision})`);
  // Several changes by one actor: "Alice added Bob; Alice made Bob admin" reads as "Alice added Bob, made Bob admin".
  return parts.map((p, i) => (i > 0 && p.startsWith(`${actor} `) ? p.slice(actor.length + 1) : p)).join(', ');
}

/**
 * "read by 3 of 5": an outgoing group message's receipts from the group's other current members (a member
 * who left no longer counts); undefined when there is nothing to say.
 */
export function receiptSummary(m: MessageRecord, group: GroupView): string | undefined {
  if (m.direction !== 'outgoing' || m.kind !== 'text') return undefined;
  const others = new Set(group.members.filter((x) => !x.self).map((x) => x.accountId as string));
  if (others.size === 0) return undefined;
  const current = m.receipts.filter((r) => others.has(r.accountId));
  const read = current.filter((r) => r.status === 'read' || r.status === 'viewed').length;
  if (read > 0) return `read by ${read} of ${others.size}${current.length > read ? `, delivered to ${current.length}` : ''}`;
  if (current.length > 0) return `delivered to ${current.length} of ${others.size}`;
  return `delivered to 0 of ${others.size}`;
}

/**
 * The error of a group command with the reason in words (the code stays: scripts branch on it). `action`
 * completes "only admins may ...".
 */
export function groupError(err: unknown, action: string): unknown {
  if (!(err instanceof ClientError)) return err;
  const again = (message: string): ClientError =>
    new ClientError(err.code, message, { cause: err, status: err.status, serverCode: err.serverCode, retryAfterMs: err.retryAfterMs, retryable: err.retryable });
  switch (err.code) {
    case ClientErrorCode.Forbidden:
      return again(`not allowed: only admins may ${action} in this group (${err.message})`);
    case ClientErrorCode.NotGroupMember:
      return again(`you are not a member of this group (you left or were removed): cannot ${action}`);
    case ClientErrorCode.UnknownGroup:
      return again(`unknown group: this profile is not in a group with that id (${err.message})`);
    case ClientErrorCode.GroupFull:
      return again(`the group is full: at most 1,024 members, the creator included (${err.message})`);
    case ClientErrorCode.BadInviteLink:
      return again(`bad invite link: ${err.message}`);
    default:
      return err;
  }
}

/** Runs `fn`, rewording its group errors (see {@link groupError}). */
export async function explainGroupErrors<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw groupError(err, action);
  }
}

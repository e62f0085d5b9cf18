/**
 * The rules of groups as pure functions from the current state to the next one: who may change what
 * (service.proto's comments), how members, roles, attributes, settings and the invite link change, and a
 * summary of what changed (the content of the type 9 update). No I/O: `services/groups.ts` runs these
 * inside the store's transaction, so every decision is taken on the state it is applied to.
 *
 * Decisions where the proto leaves room:
 * - A group always keeps at least one admin: a change that would demote (or remove) every admin is
 *   refused with 409 SERVER_CONFLICT (so an admin may demote themselves only while another admin remains).
 * - Members leave through `/leave`, not by removing themselves in a change (400).
 * - Permissions are checked on what a request asks, not on its effect: a non-admin sending settings equal
 *   to the current ones is still refused.
 * - Promoting or demoting an account that is not a member (after this change's removals and additions)
 *   is ignored, as adding a member or removing a non-member is.
 */
import { timingSafeEqual } from 'node:crypto';
import { badRequest, forbidden, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, GroupId } from '../ids.js';
import type { GroupMemberRecord, GroupRecord, GroupSettingsRecord } from '../storage/stores.js';

/** A validated change request (ids parsed and deduplicated). */
export interface ParsedChange {
  readonly add: readonly AccountId[];
  readonly remove: readonly AccountId[];
  readonly promote: readonly AccountId[];
  readonly demote: readonly AccountId[];
  readonly attributes: Uint8Array | undefined;
  readonly settings: GroupSettingsRecord | undefined;
  /** A new invite link password's SHA-256; null turns the link off; undefined leaves it. */
  readonly inviteHash: Uint8Array | null | undefined;
}

/** What an accepted change did (the type 9 update's fields, without the state). */
export interface ChangeSummary {
  readonly created: boolean;
  readonly added: readonly AccountId[];
  readonly removed: readonly AccountId[];
  readonly promoted: readonly AccountId[];
  readonly demoted: readonly AccountId[];
  readonly attributesChanged: boolean;
  readonly settingsChanged: boolean;
  readonly inviteLinkChanged: boolean;
  readonly joinedByLink: boolean;
  readonly left: boolean;
}

/** The next state and what changed; undefined `next` deletes the group. */
export interface Transition {
  readonly next: GroupRecord | undefined;
  readonly summary: ChangeSummary;
}

/** Limits the rules enforce. */
export interface GroupLimits {
  readonly maxGroupMembers: number;
}

const NOTHING: ChangeSummary = {
  created: false,
  added: [],
  removed: [],
  promoted: [],
  demoted: [],
  attributesChanged: false,
  settingsChanged: false,
  inviteLinkChanged: false,
  joinedByLink: false,
  left: false,
};

/** The settings of a group created without any. */
export const DEFAULT_SETTINGS: GroupSettingsRecord = { adminsManageMembers: true, adminsEditInfo: false, adminsSend: false };

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

const sameSettings = (a: GroupSettingsRecord, b: GroupSettingsRecord): boolean =>
  a.adminsManageMembers === b.adminsManageMembers && a.adminsEditInfo === b.adminsEditInfo && a.adminsSend === b.adminsSend;

const byAccount = (a: GroupMemberRecord, b: GroupMemberRecord): number => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0);

/** The member record of `account`, or undefined. */
export function memberOf(group: GroupRecord, account: AccountId): GroupMemberRecord | undefined {
  return group.members.find((m) => m.accountId === account);
}

/** The caller's membership, or 403. */
export function requireMember(group: GroupRecord, account: AccountId): GroupMemberRecord {
  const member = memberOf(group, account);
  if (member === undefined) throw forbidden('not a member of this group');
  return member;
}

function checkSize(count: number, limits: GroupLimits): void {
  if (count > limits.maxGroupMembers) throw new ServerError(ServerErrorCode.GroupFull, `a group has at most ${limits.maxGroupMembers} members`);
}

/** A new group: the creator its only admin, the others members, all at revision 0. */
export function createGroup(
  id: GroupId,
  creator: AccountId,
  others: readonly AccountId[],
  init: { attributes: Uint8Array; settings: GroupSettingsRecord; now: number },
  limits: GroupLimits,
): Transition {
  checkSize(others.length + 1, limits);
  const member = (accountId: AccountId, admin: boolean): GroupMemberRecord => ({ accountId, admin, joinedAt: init.now, joinedRevision: 0 });
  const members = [member(creator, true), ...others.map((a) => member(a, false))].sort(byAccount);
  const next: GroupRecord = { id, revision: 0, settings: init.settings, attributes: init.attributes, inviteHash: undefined, createdAt: init.now, creator, members };
  return { next, summary: { ...NOTHING, created: true, added: [...others] } };
}

/** 403 unless the actor may make every part of `change`. */
function checkPermissions(group: GroupRecord, actor: GroupMemberRecord, change: ParsedChange): void {
  if (actor.admin) return;
  const { settings } = group;
  const managesMembers = change.add.length + change.remove.length + change.promote.length + change.demote.length > 0;
  if (managesMembers && settings.adminsManageMembers) throw forbidden('only admins manage the members of this group');
  const admins = new Set(group.members.filter((m) => m.admin).map((m) => m.accountId));
  if (change.remove.some((a) => admins.has(a)) || change.demote.some((a) => admins.has(a))) throw forbidden('only admins remove or demote an admin');
  if (change.attributes !== undefined && settings.adminsEditInfo) throw forbidden('only admins edit the information of this group');
  if (change.settings !== undefined) throw forbidden('only admins change the settings');
  if (change.inviteHash !== undefined) throw forbidden('only admins manage the invite link');
}

/** Applies the member operations in order: removals, additions, promotions, demotions. */
function applyMembers(group: GroupRecord, change: ParsedChange, revision: number, now: number): { members: GroupMemberRecord[]; summary: Partial<ChangeSummary> } {
  const members = new Map(group.members.map((m) => [m.accountId, m]));
  const removed = change.remove.filter((a) => members.delete(a));
  const added = change.add.filter((a) => !members.has(a));
  for (const accountId of added) members.set(accountId, { accountId, admin: false, joinedAt: now, joinedRevision: revision });
  const setAdmin = (accounts: readonly AccountId[], admin: boolean): AccountId[] =>
    accounts.filter((a) => {
      const m = members.get(a);
      if (m === undefined || m.admin === admin) return false;
      members.set(a, { ...m, admin });
      return true;
    });
  const promoted = setAdmin(change.promote, true);
  const demoted = setAdmin(change.demote, false);
  return { members: [...members.values()].sort(byAccount), summary: { added, removed, promoted, demoted } };
}

/**
 * Applies a change request by `actor`; undefined when it changes nothing. Throws 403 (permissions), 400
 * (removing oneself), 413 SERVER_GROUP_FULL, 409 SERVER_CONFLICT (no admin left).
 */
export function changeGroup(group: GroupRecord, actorId: AccountId, change: ParsedChange, now: number, limits: GroupLimits): Transition | undefined {
  const actor = requireMember(group, actorId);
  checkPermissions(group, actor, change);
  if (change.remove.includes(actorId)) throw badRequest('members leave through /leave, not by removing themselves');
  const revision = group.revision + 1;
  const { members, summary: memberSummary } = applyMembers(group, change, revision, now);
  const attributesChanged = change.attributes !== undefined && !sameBytes(change.attributes, group.attributes);
  const settingsChanged = change.settings !== undefined && !sameSettings(change.settings, group.settings);
  const inviteHash = change.inviteHash === undefined ? group.inviteHash : (change.inviteHash ?? undefined);
  const inviteLinkChanged = !sameBytes(inviteHash, group.inviteHash);
  const summary: ChangeSummary = { ...NOTHING, ...memberSummary, attributesChanged, settingsChanged, inviteLinkChanged };
  const changed = summary.added.length + summary.removed.length + summary.promoted.length + summary.demoted.length > 0 || attributesChanged || settingsChanged || inviteLinkChanged;
  if (!changed) return undefined;
  checkSize(members.length, limits);
  if (!members.some((m) => m.admin)) throw new ServerError(ServerErrorCode.Conflict, 'a group keeps at least one admin');
  const next: GroupRecord = {
    ...group,
    revision,
    members,
    attributes: attributesChanged ? change.attributes : group.attributes,
    settings: settingsChanged ? change.settings : group.settings,
    inviteHash,
  };
  return { next, summary };
}

/** Joins through the invite link; undefined when the caller is a member already. 403 for a wrong or revoked link. */
export function joinGroup(group: GroupRecord, account: AccountId, passwordHash: Uint8Array, now: number, limits: GroupLimits): Transition | undefined {
  if (memberOf(group, account) !== undefined) return undefined;
  const stored = group.inviteHash;
  // Compared in constant time; a revoked link compares against a stand-in so both failures look alike.
  const reference = Buffer.from(stored ?? new Uint8Array(passwordHash.length));
  const given = Buffer.from(passwordHash);
  const matches = reference.length === given.length && timingSafeEqual(reference, given);
  if (stored === undefined || !matches) throw forbidden('the invite link is wrong or was revoked');
  checkSize(group.members.length + 1, limits);
  const revision = group.revision + 1;
  const members = [...group.members, { accountId: account, admin: false, joinedAt: now, joinedRevision: revision }].sort(byAccount);
  return { next: { ...group, revision, members }, summary: { ...NOTHING, added: [account], joinedByLink: true } };
}

/** The member who has been in the group longest (ties: lower revision, then account id). */
function longestStanding(members: readonly GroupMemberRecord[]): GroupMemberRecord | undefined {
  return [...members].sort((a, b) => a.joinedAt - b.joinedAt || a.joinedRevision - b.joinedRevision || byAccount(a, b))[0];
}

/**
 * The caller leaves; undefined when not a member. The last admin leaving promotes the longest-standing
 * remaining member; the last member leaving deletes the group (`next` undefined).
 */
export function leaveGroup(group: GroupRecord, account: AccountId): Transition | undefined {
  if (memberOf(group, account) === undefined) return undefined;
  const left: ChangeSummary = { ...NOTHING, removed: [account], left: true };
  const remaining = group.members.filter((m) => m.accountId !== account);
  if (remaining.length === 0) return { next: undefined, summary: left };
  const heir = remaining.some((m) => m.admin) ? undefined : longestStanding(remaining);
  const members = remaining.map((m) => (m === heir ? { ...m, admin: true } : m));
  return { next: { ...group, revision: group.revision + 1, members }, summary: { ...left, promoted: heir === undefined ? [] : [heir.accountId] } };
}

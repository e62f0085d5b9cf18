/**
 * A group's local record, kept in step with the server's state: applying a GroupState (newer revisions only),
 * decrypting its attributes when the master key is known, rotating our sender key when a member who held it
 * left, the group system messages, the sender-key store adapter, and the view handed to the app.
 */
import type { GroupState, GroupUpdate } from '../../protocol/gen/service_pb.js';
import { ProtocolAddress, SenderKeyRecord, type CryptoProvider, type SenderKeyStore } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { isAccountId, isGroupId, type AccountId, type E164, type GroupId, type MessageId } from '../ids.js';
import type { GroupMemberRecord, GroupRecord, GroupSettingsRecord, GroupUpdateRecord, MessageRecord, StoreTx } from '../store/types.js';
import { newMessageRecord } from '../message-records.js';
import { decryptAttributes } from './crypto.js';

/** What the app sees of a group. */
export interface GroupView {
  readonly id: GroupId;
  readonly name: string;
  readonly description: string;
  readonly revision: number;
  /** False once this account left or was removed. */
  readonly active: boolean;
  readonly members: Array<{ accountId: AccountId; number: E164 | undefined; admin: boolean; self: boolean }>;
  readonly settings: GroupSettingsRecord;
  readonly inviteLinkEnabled: boolean;
  readonly expireTimer: number;
  readonly createdAt: number;
}

/** The settings a new group gets unless told otherwise. */
export const DEFAULT_GROUP_SETTINGS: GroupSettingsRecord = { adminsManageMembers: true, adminsEditInfo: true, adminsSend: false };

/** A record for a group known only by id so far (a sender key arrived before its state): revision -1, inactive. */
export function placeholderGroup(id: GroupId, now: number): GroupRecord {
  return {
    id,
    masterKey: undefined,
    revision: -1,
    name: '',
    description: '',
    avatar: undefined,
    avatarContentType: undefined,
    encryptedAttributes: undefined,
    members: [],
    settings: DEFAULT_GROUP_SETTINGS,
    creatorId: '' as AccountId,
    inviteLinkEnabled: false,
    inviteLinkPassword: undefined,
    expireTimer: 0,
    active: false,
    distributionId: undefined,
    senderKeySharedWith: [],
    createdAt: now,
    updatedAt: now,
  };
}

export function isMember(group: GroupRecord, accountId: AccountId): boolean {
  return group.members.some((m) => m.accountId === accountId);
}

export function isAdmin(group: GroupRecord, accountId: AccountId): boolean {
  return group.members.some((m) => m.accountId === accountId && m.admin);
}

/** The group, or `CLIENT_UNKNOWN_GROUP`. */
export async function requireGroup(tx: StoreTx, id: GroupId): Promise<GroupRecord> {
  const g = await tx.groups.get(id);
  if (!g || g.revision < 0) throw new ClientError(ClientErrorCode.UnknownGroup, 'no such group on this device');
  return g;
}

/** The group when this account is a current member (`CLIENT_NOT_GROUP_MEMBER` otherwise). */
export async function requireActiveGroup(tx: StoreTx, id: GroupId, self: AccountId): Promise<GroupRecord> {
  const g = await requireGroup(tx, id);
  if (!g.active || !isMember(g, self)) throw new ClientError(ClientErrorCode.NotGroupMember, 'this account is not a member of the group');
  return g;
}

/** A copy of `group` whose sender key will be replaced before the next send (a member who held it left). */
export function rotated(group: GroupRecord): GroupRecord {
  return { ...group, distributionId: undefined, senderKeySharedWith: [] };
}

/** The outcome of applying a server state. */
export interface AppliedState {
  readonly group: GroupRecord;
  /** Whether the state was newer than the record (and so applied). */
  readonly applied: boolean;
  /** Members of the previous revision who are gone in this one. */
  readonly departed: readonly AccountId[];
}

function membersOf(state: GroupState): GroupMemberRecord[] {
  const out: GroupMemberRecord[] = [];
  for (const m of state.members) {
    if (!isAccountId(m.accountId)) throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a group member id that is not a UUID');
    out.push({ accountId: m.accountId, admin: m.admin, joinedAt: Number(m.joinedAt), joinedRevision: m.joinedRevision });
  }
  return out;
}

/**
 * Applies the server's `state` to the stored group (creating it) when it is newer than what is stored (or
 * `force`, for a state fetched on demand): members, settings, invite link, attributes (decrypted when the
 * master key is known; attributes that fail to authenticate are not taken). Members who are gone lose their
 * sender keys here, and when any of them held ours, ours is rotated; when we are gone, the group turns
 * inactive and every sender key of it is deleted.
 */
export async function applyGroupState(
  tx: StoreTx,
  crypto: CryptoProvider,
  self: AccountId,
  state: GroupState,
  options: { now: number; masterKey?: Uint8Array | undefined; force?: boolean },
): Promise<AppliedState> {
  if (!isGroupId(state.groupId)) throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a malformed group id');
  const id = state.groupId;
  const existing = await tx.groups.get(id);
  const base = existing ?? placeholderGroup(id, options.now);
  if (existing && existing.revision >= state.revision && !(options.force === true && existing.revision === state.revision)) {
    if (options.masterKey && !existing.masterKey) {
      const withKey = await adoptMasterKey(crypto, existing, options.masterKey, options.now);
      if (withKey !== existing) await tx.groups.put(withKey);
      return { group: withKey, applied: false, departed: [] };
    }
    return { group: existing, applied: false, departed: [] };
  }
  const members = membersOf(state);
  const now = options.now;
  const masterKey = base.masterKey ?? options.masterKey;
  const attributes = state.attributes.length > 0 ? state.attributes : undefined;
  let group: GroupRecord = {
    ...base,
    revision: state.revision,
    members,
    settings: {
      adminsManageMembers: state.settings?.adminsManageMembers ?? DEFAULT_GROUP_SETTINGS.adminsManageMembers,
      adminsEditInfo: state.settings?.adminsEditInfo ?? DEFAULT_GROUP_SETTINGS.adminsEditInfo,
      adminsSend: state.settings?.adminsSend ?? DEFAULT_GROUP_SETTINGS.adminsSend,
    },
    creatorId: isAccountId(state.creatorAccountId) ? state.creatorAccountId : base.creatorId,
    inviteLinkEnabled: state.inviteLinkEnabled,
    inviteLinkPassword: state.inviteLinkEnabled ? base.inviteLinkPassword : undefined,
    encryptedAttributes: attributes,
    active: members.some((m) => m.accountId === self),
    createdAt: state.createdAt > 0n ? Number(state.createdAt) : base.createdAt,
    updatedAt: now,
  };
  if (masterKey) group = (await withAttributes(crypto, { ...group, masterKey: base.masterKey }, masterKey)) ?? group;
  const departed = existing ? existing.members.map((m) => m.accountId).filter((a) => a !== self && !members.some((m) => m.accountId === a)) : [];
  group = await forgetDeparted(tx, group, departed, self);
  if (!group.active) {
    await tx.senderKeys.removeGroup(id);
    group = rotated(group);
  }
  await tx.groups.put(group);
  return { group, applied: true, departed };
}

/** Deletes departed members' sender keys, and rotates ours when one of them held it. */
export async function forgetDeparted(tx: StoreTx, group: GroupRecord, departed: readonly AccountId[], self: AccountId): Promise<GroupRecord> {
  let g = group;
  for (const a of departed) {
    if (a === self) continue;
    await tx.senderKeys.removeGroup(g.id, a);
    if (g.distributionId !== undefined && g.senderKeySharedWith.some((k) => k.startsWith(`${a}.`))) g = rotated(g);
  }
  // Whether or not they held it yet, devices of departed members must never get it.
  return { ...g, senderKeySharedWith: g.senderKeySharedWith.filter((k) => !departed.some((a) => k.startsWith(`${a}.`))) };
}

/** `group` with `masterKey` and the attributes it decrypts; undefined when they do not authenticate under it. */
async function withAttributes(crypto: CryptoProvider, group: GroupRecord, masterKey: Uint8Array): Promise<GroupRecord | undefined> {
  if (!group.encryptedAttributes) return { ...group, masterKey };
  try {
    const a = await decryptAttributes(crypto, masterKey, group.encryptedAttributes);
    return { ...group, masterKey, name: a.name, description: a.description, avatar: a.avatar, avatarContentType: a.avatarContentType };
  } catch (err) {
    if (ClientError.is(err, ClientErrorCode.BadGroupAttributes)) return undefined;
    throw err;
  }
}

/**
 * Takes a master key a member sent for a group whose key we lack: kept when it decrypts the stored attributes
 * (or when there are none yet); a key that does not is ignored.
 */
export async function adoptMasterKey(crypto: CryptoProvider, group: GroupRecord, masterKey: Uint8Array, now: number): Promise<GroupRecord> {
  if (group.masterKey || masterKey.length !== 32) return group;
  const next = await withAttributes(crypto, group, masterKey);
  return next ? { ...next, updatedAt: now } : group;
}

/** The stable id of the system message of a group revision. */
export function groupUpdateMessageId(actor: AccountId, revision: number, groupId: GroupId): MessageId {
  return `${actor}:g${revision}:${groupId}` as MessageId;
}

/**
 * The record of what a server GroupUpdate says. Which attributes changed is read from the decrypted attributes
 * before and after (the server cannot tell: they are encrypted); without the master key, an attribute change
 * is reported as a description and avatar change with no name.
 */
export function updateRecordOf(update: GroupUpdate, actor: AccountId, before: GroupRecord | undefined, after: GroupRecord): GroupUpdateRecord {
  const ids = (xs: readonly string[]): AccountId[] => xs.filter(isAccountId);
  // Comparable only when the record was not at this revision already (our own change was applied on the spot).
  const known = after.masterKey !== undefined && before !== undefined && before.revision >= 0 && before.revision < update.revision && before.masterKey !== undefined;
  const changed = update.attributesChanged;
  const sameAvatar = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
    a === undefined || b === undefined ? a === b : a.length === b.length && a.every((x, i) => x === b[i]);
  return {
    revision: update.revision,
    actorId: actor,
    created: update.created,
    added: ids(update.added),
    removed: ids(update.removed),
    promoted: ids(update.promoted),
    demoted: ids(update.demoted),
    name: changed && after.masterKey !== undefined && (!known || before.name !== after.name) ? after.name : undefined,
    descriptionChanged: changed && (!known || before.description !== after.description),
    avatarChanged: changed && (!known || !sameAvatar(before.avatar, after.avatar)),
    settingsChanged: update.settingsChanged,
    inviteLinkChanged: update.inviteLinkChanged,
    joinedByLink: update.joinedByLink,
    left: update.left,
  };
}

/** Writes the system message of a group change once (a redelivered update finds it and writes nothing). */
export async function recordGroupUpdate(
  tx: StoreTx,
  groupId: GroupId,
  self: AccountId,
  update: GroupUpdateRecord,
  fields: { now: number; serverTimestamp: number | undefined },
): Promise<MessageRecord | undefined> {
  const id = groupUpdateMessageId(update.actorId, update.revision, groupId);
  if (await tx.messages.get(id)) return undefined;
  const mine = update.actorId === self;
  const message = newMessageRecord({
    id,
    conversationId: groupId,
    senderId: update.actorId,
    direction: mine ? 'outgoing' : 'incoming',
    timestamp: fields.serverTimestamp ?? fields.now,
    serverTimestamp: fields.serverTimestamp,
    receivedAt: fields.now,
    kind: 'group-update',
    status: mine ? 'sent' : 'received',
    groupUpdate: update,
  });
  await tx.messages.put(message);
  return message;
}

/** The view of a group (numbers from the contacts). */
export async function groupView(tx: StoreTx, group: GroupRecord, self: AccountId): Promise<GroupView> {
  const members: GroupView['members'] = [];
  for (const m of group.members) {
    const c = await tx.contacts.get(m.accountId);
    members.push({ accountId: m.accountId, number: c?.number, admin: m.admin, self: m.accountId === self });
  }
  return {
    id: group.id,
    name: group.name,
    description: group.description,
    revision: group.revision,
    active: group.active,
    members,
    settings: { ...group.settings },
    inviteLinkEnabled: group.inviteLinkEnabled,
    expireTimer: group.expireTimer,
    createdAt: group.createdAt,
  };
}

/**
 * The protocol's SenderKeyStore over `tx.senderKeys` for one group: a stored key of another group is not
 * seen (so a member cannot make us file one group's messages under another), and keys are stored with the group.
 */
export function senderKeyStore(tx: StoreTx, groupId: GroupId): SenderKeyStore {
  return {
    async loadSenderKey(sender: ProtocolAddress, distributionId: string): Promise<SenderKeyRecord | null> {
      const stored = await tx.senderKeys.get(sender.name as AccountId, sender.deviceId, distributionId);
      if (!stored || stored.groupId !== groupId) return null;
      return SenderKeyRecord.deserialize(stored.record);
    },
    async storeSenderKey(sender: ProtocolAddress, distributionId: string, record: SenderKeyRecord): Promise<void> {
      await tx.senderKeys.put(sender.name as AccountId, sender.deviceId, distributionId, { groupId, record: record.serialize() });
    },
  };
}

/** Our own address (the sender of our group messages). */
export function selfAddress(accountId: AccountId, deviceId: number): ProtocolAddress {
  return new ProtocolAddress(accountId, deviceId);
}

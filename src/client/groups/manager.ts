/**
 * The user's group verbs: create, add / remove / promote / demote, edit the attributes and settings, leave,
 * invite links (create, revoke, join), and reading the groups this device knows.
 *
 * Each change is one request to the server, which checks permissions (403 becomes `CLIENT_FORBIDDEN` with a
 * message saying what only admins may do) and answers with the new state; the state is applied here at once,
 * and the server's GroupUpdate envelope (queued for every member device, this one included) writes the
 * system message. After a change that adds members, our sender key (with the master key, so that they can
 * read the group's name) goes to the new member devices.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { GroupChangeRequestSchema, GroupState } from '../../protocol/gen/service_pb.js';
import type { CryptoProvider } from '../../protocol/index.js';
import type { ServiceApi } from '../api.js';
import type { ContactDirectory } from '../contacts.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { asGroupId, isAccountId, isE164, type AccountId, type GroupId } from '../ids.js';
import { requireAccount } from '../protocol-stores.js';
import type { AccountRecord, ClientStore, GroupRecord, GroupSettingsRecord } from '../store/types.js';
import {
  INVITE_PASSWORD_BYTES,
  MAX_GROUP_MEMBERS,
  checkAttributes,
  encodeInviteLink,
  encryptAttributes,
  newGroupId,
  newMasterKey,
  parseInviteLink,
  type GroupAttributesPlain,
} from './crypto.js';
import type { GroupSender } from './sender.js';
import { DEFAULT_GROUP_SETTINGS, applyGroupState, groupView, isMember, requireActiveGroup, rotated, type GroupView } from './state.js';

/** Options of the group verbs. */
export interface GroupOptions {
  readonly signal?: AbortSignal | undefined;
}

/** What {@link GroupManager.update} changes; absent fields stay. */
export interface GroupChange {
  readonly name?: string;
  readonly description?: string;
  /** A new avatar (at most 48 KiB), or null to remove it. */
  readonly avatar?: { readonly bytes: Uint8Array; readonly contentType: string } | null;
  readonly settings?: Partial<GroupSettingsRecord>;
}

export interface GroupManagerOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly api: () => ServiceApi;
  readonly contacts: ContactDirectory;
  readonly groups: GroupSender;
  readonly now: () => number;
  /** Background failures (a sender key that could not be handed out now goes out with the next message). */
  readonly onError: (error: unknown) => void;
}

type ChangeInit = MessageInitShape<typeof GroupChangeRequestSchema>;

export class GroupManager {
  readonly #o: GroupManagerOptions;

  constructor(options: GroupManagerOptions) {
    this.#o = options;
  }

  /** Creates a group with us as its only admin and `members` (numbers or account ids) as members. */
  async create(
    name: string,
    members: readonly string[],
    options: { description?: string; settings?: Partial<GroupSettingsRecord>; signal?: AbortSignal } = {},
  ): Promise<GroupView> {
    const account = await this.#account();
    const attributes: GroupAttributesPlain = { name, description: options.description ?? '', avatar: undefined, avatarContentType: undefined };
    checkName(name);
    checkAttributes(attributes);
    const others = await this.#resolveAll(members, account, options);
    if (others.length + 1 > MAX_GROUP_MEMBERS) throw new ClientError(ClientErrorCode.GroupFull, `a group has at most ${MAX_GROUP_MEMBERS} members, its creator included`);
    const id = newGroupId(this.#o.crypto);
    const masterKey = newMasterKey(this.#o.crypto);
    const settings = { ...DEFAULT_GROUP_SETTINGS, ...options.settings };
    const state = await this.#o.api().createGroup(
      id,
      { memberAccountIds: others, attributes: await encryptAttributes(this.#o.crypto, masterKey, attributes), settings },
      { signal: options.signal },
    );
    await this.#apply(state, account, { masterKey });
    await this.#distribute(id, options);
    return this.#view(id);
  }

  /** Adds members (numbers or account ids); resolves with the new state. */
  async addMembers(groupId: string, members: readonly string[], options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    const group = await this.#active(id, account);
    const adding = (await this.#resolveAll(members, account, options)).filter((a) => !isMember(group, a));
    if (adding.length === 0) return this.#view(id);
    if (group.members.length + adding.length > MAX_GROUP_MEMBERS) throw new ClientError(ClientErrorCode.GroupFull, `a group has at most ${MAX_GROUP_MEMBERS} members`);
    await this.#change(id, account, { addMembers: adding }, 'only admins can add members to this group', options);
    await this.#distribute(id, options);
    return this.#view(id);
  }

  /** Removes members; resolves with the new state. Their copies of the sender keys are replaced by every member. */
  async removeMembers(groupId: string, members: readonly string[], options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    const group = await this.#active(id, account);
    const removing = await this.#resolveAll(members, account, options);
    if (removing.length === 0) return this.#view(id);
    const anyAdmin = removing.some((a) => group.members.some((m) => m.accountId === a && m.admin));
    await this.#change(id, account, { removeMembers: removing }, anyAdmin ? 'only admins can remove an admin' : 'only admins can remove members from this group', options);
    return this.#view(id);
  }

  /** Makes members admins. */
  async promote(groupId: string, members: readonly string[], options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    await this.#active(id, account);
    await this.#change(id, account, { promote: await this.#resolveAll(members, account, options) }, 'only admins can promote members of this group', options);
    return this.#view(id);
  }

  /** Makes admins plain members. */
  async demote(groupId: string, members: readonly string[], options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    await this.#active(id, account);
    await this.#change(id, account, { demote: await this.#resolveAll(members, account, options, true) }, 'only admins can demote an admin', options);
    return this.#view(id);
  }

  /** Changes the name, description, avatar and/or settings. */
  async update(groupId: string, change: GroupChange, options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    const group = await this.#active(id, account);
    const init: ChangeInit = {};
    const info = change.name !== undefined || change.description !== undefined || change.avatar !== undefined;
    if (info) {
      if (!group.masterKey) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group\'s master key has not arrived here yet: no member has sent it');
      if (change.name !== undefined) checkName(change.name);
      const next: GroupAttributesPlain = {
        name: change.name ?? group.name,
        description: change.description ?? group.description,
        avatar: change.avatar === undefined ? group.avatar : (change.avatar?.bytes ?? undefined),
        avatarContentType: change.avatar === undefined ? group.avatarContentType : (change.avatar?.contentType ?? undefined),
      };
      init.attributes = await encryptAttributes(this.#o.crypto, group.masterKey, next);
    }
    if (change.settings !== undefined) init.settings = { ...group.settings, ...change.settings };
    if (!info && change.settings === undefined) throw new ClientError(ClientErrorCode.InvalidArgument, 'nothing to change');
    const forbidden = info ? 'only admins can edit the name, description and avatar of this group' : 'only admins can change the settings of this group';
    await this.#change(id, account, init, forbidden, options);
    return this.#view(id);
  }

  /** Leaves the group: the history stays here, sending stops, and every sender key of the group is deleted. */
  async leave(groupId: string, options: GroupOptions = {}): Promise<void> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    await this.#active(id, account);
    await this.#o.api().leaveGroup(id, { signal: options.signal });
    await this.#o.store.transaction(async (tx) => {
      const g = await tx.groups.get(id);
      if (!g) return;
      await tx.senderKeys.removeGroup(id);
      await tx.groups.put(rotated({ ...g, active: false, members: g.members.filter((m) => m.accountId !== account.accountId), updatedAt: this.#o.now() }));
    });
  }

  /** A new invite link (the previous one stops working). Admins only. */
  async createInviteLink(groupId: string, options: GroupOptions = {}): Promise<string> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    const group = await this.#active(id, account);
    if (!group.masterKey) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group\'s master key has not arrived here yet: no member has sent it');
    const password = this.#o.crypto.randomBytes(INVITE_PASSWORD_BYTES);
    await this.#change(id, account, { inviteLinkPassword: password }, 'only admins can create invite links for this group', options, password);
    return encodeInviteLink({ groupId: id, password, masterKey: group.masterKey });
  }

  /** Turns the invite link off. Admins only. */
  async revokeInviteLink(groupId: string, options: GroupOptions = {}): Promise<void> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    await this.#active(id, account);
    await this.#change(id, account, { revokeInviteLink: true }, 'only admins can revoke the invite link of this group', options);
  }

  /** Joins through an invite link (`CLIENT_BAD_INVITE_LINK` when it does not parse or was revoked). */
  async join(link: string, options: GroupOptions = {}): Promise<GroupView> {
    const parsed = parseInviteLink(link);
    const account = await this.#account();
    const state = await this.#o.api().joinGroup(parsed.groupId, parsed.password, { signal: options.signal });
    await this.#apply(state, account, { masterKey: parsed.masterKey, force: true });
    await this.#distribute(parsed.groupId, options);
    return this.#view(parsed.groupId);
  }

  /** Fetches the group's state from the server and applies it. */
  async refresh(groupId: string, options: GroupOptions = {}): Promise<GroupView> {
    const id = asGroupId(groupId);
    const account = await this.#account();
    const state = await this.#o.api().getGroup(id, { signal: options.signal });
    await this.#apply(state, account, { force: true });
    return this.#view(id);
  }

  /** The view of a group this device knows (undefined when unknown). */
  async view(groupId: string): Promise<GroupView | undefined> {
    const id = asGroupId(groupId);
    return this.#o.store.transaction(async (tx) => {
      const g = await tx.groups.get(id);
      if (!g || g.revision < 0) return undefined;
      return groupView(tx, g, (await requireAccount(tx)).accountId);
    });
  }

  /** Every group this device knows, by name. */
  async list(): Promise<GroupView[]> {
    return this.#o.store.transaction(async (tx) => {
      const self = (await requireAccount(tx)).accountId;
      const out: GroupView[] = [];
      for (const g of await tx.groups.list()) if (g.revision >= 0) out.push(await groupView(tx, g, self));
      return out;
    });
  }

  async #view(id: GroupId): Promise<GroupView> {
    const v = await this.view(id);
    if (!v) throw new ClientError(ClientErrorCode.UnknownGroup, 'no such group on this device');
    return v;
  }

  async #account(): Promise<AccountRecord> {
    return this.#o.store.transaction((tx) => requireAccount(tx));
  }

  async #active(id: GroupId, account: AccountRecord): Promise<GroupRecord> {
    return this.#o.store.transaction((tx) => requireActiveGroup(tx, id, account.accountId));
  }

  /** Sends one change; applies the state the server answers with. */
  async #change(id: GroupId, account: AccountRecord, init: ChangeInit, forbidden: string, options: GroupOptions, invitePassword?: Uint8Array): Promise<void> {
    const state = await this.#o.api().changeGroup(id, init, { signal: options.signal, forbidden });
    await this.#apply(state, account, { invitePassword });
  }

  async #apply(state: GroupState, account: AccountRecord, options: { masterKey?: Uint8Array; force?: boolean; invitePassword?: Uint8Array | undefined }): Promise<void> {
    const now = this.#o.now();
    await this.#o.store.transaction(async (tx) => {
      const { group } = await applyGroupState(tx, this.#o.crypto, account.accountId, state, { now, masterKey: options.masterKey, force: options.force ?? true });
      if (options.invitePassword && group.inviteLinkEnabled) await tx.groups.put({ ...group, inviteLinkPassword: options.invitePassword });
    });
  }

  /** Hands our sender key to member devices that lack it; a failure is reported, and the next send repairs it. */
  async #distribute(id: GroupId, options: GroupOptions): Promise<void> {
    try {
      await this.#o.groups.distribute(id, { signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      this.#o.onError(err);
    }
  }

  /** Account ids of `members` (E.164 numbers or account ids), without us and without repeats. */
  async #resolveAll(members: readonly string[], account: AccountRecord, options: GroupOptions, includeSelf = false): Promise<AccountId[]> {
    const out = new Set<AccountId>();
    for (const m of members) {
      if (m === account.number || m === account.accountId) {
        if (includeSelf) out.add(account.accountId);
        continue;
      }
      if (isE164(m)) out.add(await this.#o.contacts.resolve(m, { signal: options.signal }));
      else if (isAccountId(m)) out.add(m);
      else throw new ClientError(ClientErrorCode.InvalidArgument, 'a member must be an E.164 phone number or an account id');
    }
    return [...out];
  }
}

function checkName(name: string): void {
  if (name.trim().length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'a group needs a name');
}


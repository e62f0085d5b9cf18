/**
 * `parley group ...`: create a group, change its members and roles, its name, description and settings, its
 * invite link, join one, leave, and show groups. Every change goes to the server (which checks who may make
 * it) and reaches the other members as a group update; a refused change exits 1 with the reason and its
 * code (`CLIENT_FORBIDDEN`, `CLIENT_NOT_GROUP_MEMBER`, `CLIENT_UNKNOWN_GROUP`, `CLIENT_GROUP_FULL`,
 * `CLIENT_BAD_INVITE_LINK`).
 */
import type { Client } from '../../client/client.js';
import type { GroupView } from '../../client/groups/state.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { GroupSettingsRecord } from '../../client/store/types.js';
import { explainGroupErrors, groupIdArg, groupJson, groupSummary, groupText } from '../groups.js';
import type { Printer } from '../io.js';
import { withClient } from './send.js';

/** The most members one group has, the creator included (the server's limit). */
export const MAX_GROUP_MEMBERS = 1024;

function printGroup(client: Client, out: Printer, g: GroupView, headline?: string): void {
  const text = groupText(g, client.number);
  out.result(groupJson(g, client.number), headline === undefined ? text : `${headline}\n${text}`);
}

/** Refuses more members than a group holds before anything is sent. */
export function checkMemberCount(members: readonly string[], already: number): void {
  const distinct = new Set(members).size;
  if (already + distinct > MAX_GROUP_MEMBERS) {
    throw new ClientError(ClientErrorCode.GroupFull, `a group has at most ${MAX_GROUP_MEMBERS} members, the creator included; this would make ${already + distinct}`);
  }
}

export async function groupCreateCommand(
  args: { name: string; members: readonly string[]; description: string | undefined; profile: string },
  out: Printer,
): Promise<number> {
  checkMemberCount(args.members, 1);
  return withClient(args.profile, async (client) => {
    const g = await explainGroupErrors('create groups', () =>
      client.createGroup(args.name, args.members, args.description === undefined ? {} : { description: args.description }),
    );
    out.result(groupJson(g, client.number), `Created group ${g.id} "${g.name}" with ${g.members.length} member(s).`);
    return 0;
  });
}

export type MemberChange = 'add' | 'remove' | 'promote' | 'demote';

const CHANGE_VERB: Record<MemberChange, { action: string; done: string }> = {
  add: { action: 'add members', done: 'Added' },
  remove: { action: 'remove members', done: 'Removed' },
  promote: { action: 'promote members', done: 'Promoted' },
  demote: { action: 'demote admins', done: 'Demoted' },
};

/** Applies one member change through the client (shared with the daemon). */
export async function changeMembers(client: Client, change: MemberChange, groupId: string, members: readonly string[]): Promise<GroupView> {
  const id = groupIdArg(groupId);
  if (members.length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'name at least one member (a phone number or an account id)');
  return explainGroupErrors(CHANGE_VERB[change].action, async () => {
    if (change === 'add') {
      const current = await client.group(id);
      const present = new Set<string>(current?.members.flatMap((m) => (m.number === undefined ? [m.accountId] : [m.accountId, m.number])) ?? []);
      checkMemberCount(members.filter((m) => !present.has(m)), current?.members.length ?? 0);
      return client.addMembers(id, members);
    }
    if (change === 'remove') return client.removeMembers(id, members);
    if (change === 'promote') return client.promote(id, members);
    return client.demote(id, members);
  });
}

export async function groupMembersCommand(
  args: { change: MemberChange; groupId: string; members: readonly string[]; profile: string },
  out: Printer,
): Promise<number> {
  groupIdArg(args.groupId);
  return withClient(args.profile, async (client) => {
    const g = await changeMembers(client, args.change, args.groupId, args.members);
    printGroup(client, out, g, `${CHANGE_VERB[args.change].done} ${args.members.join(', ')}.`);
    return 0;
  });
}

export async function groupLeaveCommand(args: { groupId: string; profile: string }, out: Printer): Promise<number> {
  const id = groupIdArg(args.groupId);
  return withClient(args.profile, async (client) => {
    await explainGroupErrors('leave', () => client.leaveGroup(id));
    out.result({ groupId: id, left: true }, `Left group ${id}.`);
    return 0;
  });
}

export async function groupInfoCommand(args: { groupId: string; refresh: boolean; profile: string }, out: Printer): Promise<number> {
  const id = groupIdArg(args.groupId);
  return withClient(
    args.profile,
    async (client) => {
      const g = await explainGroupErrors('see the group', async () => (args.refresh ? client.refreshGroup(id) : client.group(id)));
      if (!g) throw new ClientError(ClientErrorCode.UnknownGroup, 'unknown group: this profile is not in a group with that id');
      printGroup(client, out, g);
      return 0;
    },
    0,
  );
}

export async function groupListCommand(args: { profile: string }, out: Printer): Promise<number> {
  return withClient(
    args.profile,
    async (client) => {
      const groups = await client.groups();
      for (const g of groups) out.result(groupJson(g, client.number), groupSummary(g));
      if (groups.length === 0) out.note('No groups yet.');
      return 0;
    },
    0,
  );
}

/** `on`/`off` (and yes/no, true/false) as a boolean; `RangeError` otherwise. */
export function onOffArg(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['on', 'yes', 'true', '1'].includes(v)) return true;
  if (['off', 'no', 'false', '0'].includes(v)) return false;
  throw new RangeError(`expected on or off, not "${value}"`);
}

const NOTHING_TO_CHANGE = 'nothing to change: give a name, a description or a setting';

export interface GroupSetArgs {
  readonly groupId: string;
  readonly name: string | undefined;
  readonly description: string | undefined;
  readonly adminsSend: boolean | undefined;
  readonly adminsEdit: boolean | undefined;
  readonly adminsManage: boolean | undefined;
  readonly profile: string;
}

/** Applies `group set` through the client (shared with the daemon). */
export async function updateGroup(client: Client, a: Omit<GroupSetArgs, 'profile'>): Promise<GroupView> {
  const id = groupIdArg(a.groupId);
  const settings: { -readonly [K in keyof GroupSettingsRecord]?: boolean } = {};
  if (a.adminsManage !== undefined) settings.adminsManageMembers = a.adminsManage;
  if (a.adminsEdit !== undefined) settings.adminsEditInfo = a.adminsEdit;
  if (a.adminsSend !== undefined) settings.adminsSend = a.adminsSend;
  const changes = {
    ...(a.name === undefined ? {} : { name: a.name }),
    ...(a.description === undefined ? {} : { description: a.description }),
    ...(Object.keys(settings).length === 0 ? {} : { settings }),
  };
  if (Object.keys(changes).length === 0) {
    throw new ClientError(ClientErrorCode.InvalidArgument, NOTHING_TO_CHANGE);
  }
  return explainGroupErrors(changes.settings ? 'change the settings' : 'change the name and description', () => client.updateGroup(id, changes));
}

export async function groupSetCommand(args: GroupSetArgs, out: Printer): Promise<number> {
  groupIdArg(args.groupId);
  if ([args.name, args.description, args.adminsSend, args.adminsEdit, args.adminsManage].every((v) => v === undefined)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, NOTHING_TO_CHANGE);
  }
  return withClient(args.profile, async (client) => {
    printGroup(client, out, await updateGroup(client, args), 'Group updated.');
    return 0;
  });
}

export async function groupLinkCommand(args: { groupId: string; revoke: boolean; profile: string }, out: Printer): Promise<number> {
  const id = groupIdArg(args.groupId);
  return withClient(args.profile, async (client) => {
    if (args.revoke) {
      await explainGroupErrors('manage invite links', () => client.revokeInviteLink(id));
      out.result({ groupId: id, inviteLinkEnabled: false, link: null }, 'Invite link revoked: the old link no longer works.');
    } else {
      const link = await explainGroupErrors('manage invite links', () => client.createInviteLink(id));
      out.result({ groupId: id, inviteLinkEnabled: true, link }, link);
    }
    return 0;
  });
}

export async function groupJoinCommand(args: { link: string; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const g = await explainGroupErrors('join', () => client.joinGroup(args.link.trim()));
    printGroup(client, out, g, `Joined group ${g.id}.`);
    return 0;
  });
}

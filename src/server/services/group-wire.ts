/**
 * Groups on the wire: records to `GroupState`, `GroupDevices` and type 9 `GroupUpdate` contents, and the
 * devices digest a group message is checked against (service.proto).
 */
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  GroupDeviceSchema,
  GroupDevicesSchema,
  GroupMemberSchema,
  GroupSettingsSchema,
  GroupStateSchema,
  GroupUpdateSchema,
  type GroupDevices,
  type GroupSettings,
  type GroupState,
} from '../../protocol/gen/service_pb.js';
import type { AccountId } from '../ids.js';
import type { GroupDeviceRecord, GroupRecord, GroupSettingsRecord } from '../storage/stores.js';
import type { ChangeSummary } from './group-rules.js';

/** Envelope type of a group update (written by the server only). */
export const GROUP_UPDATE_TYPE = 9;
/** Envelope type of a SenderKey message. */
export const SENDER_KEY_TYPE = 7;

export function settingsFromWire(s: GroupSettings): GroupSettingsRecord {
  return { adminsManageMembers: s.adminsManageMembers, adminsEditInfo: s.adminsEditInfo, adminsSend: s.adminsSend };
}

/** The state a member sees. */
export function toGroupState(g: GroupRecord): GroupState {
  return create(GroupStateSchema, {
    groupId: g.id,
    revision: g.revision,
    members: g.members.map((m) => create(GroupMemberSchema, { accountId: m.accountId, admin: m.admin, joinedAt: BigInt(m.joinedAt), joinedRevision: m.joinedRevision })),
    settings: create(GroupSettingsSchema, g.settings),
    attributes: g.attributes,
    inviteLinkEnabled: g.inviteHash !== undefined,
    createdAt: BigInt(g.createdAt),
    creatorAccountId: g.creator,
  });
}

/** The content of a type 9 envelope; `state` only in the copies for members after the change. */
export function groupUpdateContent(groupId: string, revision: number, actor: AccountId, summary: ChangeSummary, state: GroupState | undefined): Uint8Array {
  return toBinary(
    GroupUpdateSchema,
    create(GroupUpdateSchema, {
      groupId,
      revision,
      actorAccountId: actor,
      created: summary.created,
      added: [...summary.added],
      removed: [...summary.removed],
      promoted: [...summary.promoted],
      demoted: [...summary.demoted],
      attributesChanged: summary.attributesChanged,
      settingsChanged: summary.settingsChanged,
      inviteLinkChanged: summary.inviteLinkChanged,
      joinedByLink: summary.joinedByLink,
      left: summary.left,
      state,
    }),
  );
}

/** `GroupDevices` for the given devices (already in account id, device id order). */
export function toGroupDevices(devices: readonly GroupDeviceRecord[], revision: number): GroupDevices {
  return create(GroupDevicesSchema, {
    devices: devices.map((d) => create(GroupDeviceSchema, { accountId: d.accountId, deviceId: d.deviceId, registrationId: d.registrationId })),
    revision,
  });
}

/** SHA-256 over the lines `<account_id>.<device_id>.<registration_id>\n`, in the given order. */
export function devicesDigest(devices: readonly GroupDeviceRecord[]): Uint8Array {
  const hash = createHash('sha256');
  for (const d of devices) hash.update(`${d.accountId}.${d.deviceId}.${d.registrationId}\n`, 'utf8');
  return new Uint8Array(hash.digest());
}

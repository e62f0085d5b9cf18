/** The queue row of an envelope as both storage backends select it, and the record it maps to. */
import type { AccountId, DeviceId, DeviceRef, GroupId } from '../ids.js';
import type { StoredEnvelope } from './stores.js';

export interface EnvelopeRow {
  seq: number;
  device_ref: number;
  guid: Uint8Array;
  type: number;
  source_account_id: string;
  source_device_id: number;
  destination_device_id: number;
  timestamp: number;
  server_timestamp: number;
  content: Uint8Array;
  group_id: string | null;
}

export const toEnvelope = (row: EnvelopeRow): StoredEnvelope => ({
  seq: row.seq,
  ref: row.device_ref as DeviceRef,
  guid: row.guid,
  type: row.type,
  sourceAccountId: row.source_account_id as AccountId,
  sourceDeviceId: row.source_device_id as DeviceId,
  destinationDeviceId: row.destination_device_id as DeviceId,
  timestamp: row.timestamp,
  serverTimestamp: row.server_timestamp,
  content: row.content,
  ...(row.group_id === null ? {} : { groupId: row.group_id as GroupId }),
});

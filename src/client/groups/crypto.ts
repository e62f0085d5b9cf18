/**
 * The pure parts of groups: ids and master keys, the encrypted attributes (name, description, avatar), the
 * devices digest of a group send, invite links, and distribution ids.
 *
 * Attributes are encrypted under keys derived from the group's master key, which only members hold:
 *   HKDF-SHA256(masterKey, salt none, "Parley group attributes v1", 64) = AES-256 key (32) || HMAC key (32)
 *   blob = the sealed box of sealed-box.ts: 0x01 || iv (16) || AES-256-CBC(GroupAttributes) || HMAC-SHA256
 * (the MAC is checked in constant time before anything is decrypted).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, distributionIdFromBytes, toHex, utf8, type CryptoProvider } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { GroupAttributesSchema } from '../gen/content_pb.js';
import { isGroupId, type GroupId } from '../ids.js';
import { deriveSealKeys, open, seal, type SealKeys } from '../sealed-box.js';

/** A group has at most this many members, its creator included (the server's limit too). */
export const MAX_GROUP_MEMBERS = 1024;
/** The largest avatar, bytes. */
export const MAX_AVATAR_BYTES = 48 * 1024;
/** The server keeps at most this many bytes of encrypted attributes. */
export const MAX_ATTRIBUTES_BYTES = 64 * 1024;
/** The longest name and description, UTF-8 bytes. */
export const MAX_GROUP_NAME_BYTES = 256;
export const MAX_GROUP_DESCRIPTION_BYTES = 2048;
export const MASTER_KEY_BYTES = 32;
export const INVITE_PASSWORD_BYTES = 16;
/** Invite links start with this. */
export const INVITE_LINK_PREFIX = 'parley://join#';

const ATTRIBUTES_INFO = utf8('Parley group attributes v1');

/** The plaintext attributes of a group. */
export interface GroupAttributesPlain {
  readonly name: string;
  readonly description: string;
  readonly avatar: Uint8Array | undefined;
  readonly avatarContentType: string | undefined;
}

/** A new group id: 16 random bytes as 32 lowercase hex digits. */
export function newGroupId(crypto: CryptoProvider): GroupId {
  return toHex(crypto.randomBytes(16)) as GroupId;
}

/** A new master key (32 random bytes). */
export function newMasterKey(crypto: CryptoProvider): Uint8Array {
  return crypto.randomBytes(MASTER_KEY_BYTES);
}

/** A random (version 4) UUID, lowercase: a new sender-key distribution id. */
export function newDistributionId(crypto: CryptoProvider): string {
  const b = crypto.randomBytes(16);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  return distributionIdFromBytes(b);
}

async function attributeKeys(crypto: CryptoProvider, masterKey: Uint8Array): Promise<SealKeys> {
  if (masterKey.length !== MASTER_KEY_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'a group master key is 32 bytes');
  return deriveSealKeys(crypto, masterKey, undefined, ATTRIBUTES_INFO);
}

/** Checks the sizes of attributes (`CLIENT_INVALID_ARGUMENT`). */
export function checkAttributes(a: GroupAttributesPlain): void {
  const enc = new TextEncoder();
  if (enc.encode(a.name).length > MAX_GROUP_NAME_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, `a group name is at most ${MAX_GROUP_NAME_BYTES} bytes`);
  if (enc.encode(a.description).length > MAX_GROUP_DESCRIPTION_BYTES) {
    throw new ClientError(ClientErrorCode.InvalidArgument, `a group description is at most ${MAX_GROUP_DESCRIPTION_BYTES} bytes`);
  }
  if (a.avatar !== undefined) {
    if (a.avatar.length > MAX_AVATAR_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, `a group avatar is at most ${MAX_AVATAR_BYTES / 1024} KiB`);
    if (!/^[a-z]+\/[a-z0-9.+-]+$/i.test(a.avatarContentType ?? '')) throw new ClientError(ClientErrorCode.InvalidArgument, 'an avatar needs a content type such as image/png');
  }
}

/** Encrypts attributes under the master key (the blob the server stores). */
export async function encryptAttributes(crypto: CryptoProvider, masterKey: Uint8Array, a: GroupAttributesPlain): Promise<Uint8Array> {
  checkAttributes(a);
  const plaintext = toBinary(
    GroupAttributesSchema,
    create(GroupAttributesSchema, { name: a.name, description: a.description, avatar: a.avatar ?? new Uint8Array(0), avatarContentType: a.avatar ? (a.avatarContentType ?? '') : '' }),
  );
  const blob = await seal(crypto, await attributeKeys(crypto, masterKey), plaintext);
  if (blob.length > MAX_ATTRIBUTES_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group attributes are too large');
  return blob;
}

/**
 * Decrypts an attributes blob; `CLIENT_BAD_GROUP_ATTRIBUTES` when it is malformed or its MAC does not verify
 * under this master key (nothing is decrypted then).
 */
export async function decryptAttributes(crypto: CryptoProvider, masterKey: Uint8Array, blob: Uint8Array): Promise<GroupAttributesPlain> {
  const plaintext = await open(crypto, await attributeKeys(crypto, masterKey), blob, ClientErrorCode.BadGroupAttributes, 'group attributes');
  try {
    const a = fromBinary(GroupAttributesSchema, plaintext);
    return {
      name: a.name,
      description: a.description,
      avatar: a.avatar.length > 0 ? a.avatar : undefined,
      avatarContentType: a.avatar.length > 0 ? a.avatarContentType : undefined,
    };
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadGroupAttributes, 'group attributes do not decode', { cause });
  }
}

/** One device holding (or to hold) our sender key: `<account id>.<device id>.<registration id>`. */
export function deviceKey(accountId: string, deviceId: number, registrationId: number): string {
  return `${accountId}.${deviceId}.${registrationId}`;
}

/** The parts of a {@link deviceKey}. */
export function parseDeviceKey(key: string): { accountId: string; deviceId: number; registrationId: number } {
  const [accountId = '', deviceId = '', registrationId = ''] = key.split('.');
  return { accountId, deviceId: Number(deviceId), registrationId: Number(registrationId) };
}

/** Orders device keys as GroupDevices does: account id (string order), then device id. */
export function sortDeviceKeys(keys: readonly string[]): string[] {
  return [...new Set(keys)].sort((a, b) => {
    const x = parseDeviceKey(a);
    const y = parseDeviceKey(b);
    return x.accountId < y.accountId ? -1 : x.accountId > y.accountId ? 1 : x.deviceId - y.deviceId;
  });
}

/**
 * The devices digest of a group send: SHA-256 of the lines "<account>.<device>.<registration>\n" in GroupDevices'
 * order (account id, then device id).
 */
export function devicesDigest(sharedWith: readonly string[]): Uint8Array {
  return sha256(utf8(sortDeviceKeys(sharedWith).map((k) => `${k}\n`).join('')));
}

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  try {
    const bin = atob(s.replaceAll('-', '+').replaceAll('_', '/'));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** What an invite link carries. */
export interface InviteLink {
  readonly groupId: GroupId;
  readonly password: Uint8Array;
  readonly masterKey: Uint8Array;
}

/** `parley://join#<base64url(group id (16 bytes) || password (16) || master key (32))>`. */
export function encodeInviteLink(link: InviteLink): string {
  if (link.password.length !== INVITE_PASSWORD_BYTES || link.masterKey.length !== MASTER_KEY_BYTES || !isGroupId(link.groupId)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'an invite link needs a group id, a 16-byte password and a 32-byte master key');
  }
  const id = Uint8Array.from({ length: 16 }, (_, i) => parseInt(link.groupId.slice(i * 2, i * 2 + 2), 16));
  return INVITE_LINK_PREFIX + base64url(concatBytes(id, link.password, link.masterKey));
}

/** Parses an invite link (surrounding whitespace allowed); `CLIENT_BAD_INVITE_LINK` when it is not one. */
export function parseInviteLink(text: string): InviteLink {
  const s = text.trim();
  if (!s.startsWith(INVITE_LINK_PREFIX)) throw new ClientError(ClientErrorCode.BadInviteLink, `an invite link starts with ${INVITE_LINK_PREFIX}`);
  const bytes = fromBase64url(s.slice(INVITE_LINK_PREFIX.length));
  if (!bytes) throw new ClientError(ClientErrorCode.BadInviteLink, 'the invite link is not valid base64url');
  if (bytes.length !== 16 + INVITE_PASSWORD_BYTES + MASTER_KEY_BYTES) throw new ClientError(ClientErrorCode.BadInviteLink, 'the invite link has the wrong length');
  return {
    groupId: toHex(bytes.subarray(0, 16)) as GroupId,
    password: bytes.slice(16, 16 + INVITE_PASSWORD_BYTES),
    masterKey: bytes.slice(16 + INVITE_PASSWORD_BYTES),
  };
}

/**
 * Typed calls of the client-server API (docs/api.md) over any {@link Requester}. This is the one place where
 * server statuses become {@link ClientError}s.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import {
  CreateGroupRequestSchema,
  DevicesResponseSchema,
  LinkDeviceRequestSchema,
  LinkDeviceResponseSchema,
  ProvisionEnvelopeSchema,
  ProvisioningResponseSchema,
  PutBlobResponseSchema,
  SignedDeviceListSchema,
  type DevicesResponse,
  type LinkDeviceResponse,
  type ProvisioningResponse,
  type PutBlobResponse,
  type SignedDeviceList,
  GroupChangeRequestSchema,
  GroupDevicesSchema,
  GroupStateSchema,
  JoinGroupRequestSchema,
  SendGroupMessageRequestSchema,
  KeyStatusResponseSchema,
  LookupResponseSchema,
  MismatchedDevicesSchema,
  PreKeyResponseSchema,
  PresenceResponseSchema,
  PresenceSettingsSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
  SetKeysRequestSchema,
  StaleDevicesSchema,
  VerificationCodeRequestSchema,
  VerificationCodeResponseSchema,
  WhoAmIResponseSchema,
  type GroupDevices,
  type GroupState,
  type KeyStatusResponse,
  type PreKeyResponse,
  type PresenceResponse,
  type RegisterResponse,
  type WhoAmIResponse,
} from '../protocol/gen/service_pb.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { asAccountId, type AccountId, type E164, type GroupId } from './ids.js';
import type { ApiResponse, RequestOptions, Requester } from './transport/types.js';

/** The outcome of PUT /v1/messages: stored, or the device set to repair (409, 410). */
export type SendOutcome =
  | { readonly kind: 'ok'; readonly stored: number }
  | { readonly kind: 'mismatched'; readonly missing: readonly number[]; readonly extra: readonly number[] }
  | { readonly kind: 'stale'; readonly stale: readonly number[] };

/** The error for a non-2xx response. */
export function responseError(res: ApiResponse, what: string): ClientError {
  const options = {
    status: res.status,
    serverCode: res.code || undefined,
    retryAfterMs: res.retryAfterMs > 0 ? res.retryAfterMs : undefined,
  };
  if (res.status === 401) return new ClientError(ClientErrorCode.Unauthorized, `${what}: credentials refused`, options);
  const retryable = res.status === 429 || res.status === 507 || res.status >= 500;
  return new ClientError(ClientErrorCode.ServerRejected, `${what}: server answered ${res.status} ${res.code}`.trim(), { ...options, retryable });
}

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadResponse, `${what}: response does not decode`, { cause });
  }
}

function encode<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

const ok = (status: number): boolean => status >= 200 && status < 300;

/** The outcome of PUT /v1/groups/{id}/messages: stored, or (409) the devices the sender key must reach. */
export type GroupSendOutcome = { readonly kind: 'ok'; readonly stored: number } | { readonly kind: 'mismatched'; readonly devices: GroupDevices };

/**
 * The error of a group route: 403 `CLIENT_FORBIDDEN` (with `forbidden` as its message, e.g. "only admins can
 * add members"), 404 `CLIENT_UNKNOWN_GROUP`, 413 `CLIENT_GROUP_FULL`, otherwise as {@link responseError}.
 */
export function groupError(res: ApiResponse, what: string, forbidden?: string): ClientError {
  const options = { status: res.status, serverCode: res.code || undefined };
  if (res.status === 403) return new ClientError(ClientErrorCode.Forbidden, forbidden ?? `${what}: not allowed in this group`, options);
  if (res.status === 404) return new ClientError(ClientErrorCode.UnknownGroup, `${what}: no such group on the server`, options);
  if (res.status === 413 && res.code === 'SERVER_GROUP_FULL') return new ClientError(ClientErrorCode.GroupFull, `${what}: a group has at most 1,024 members`, options);
  return responseError(res, what);
}

/** The API, route by route. */
export class ServiceApi {
  readonly #requester: Requester;

  constructor(requester: Requester) {
    this.#requester = requester;
  }

  async #call(verb: string, path: string, body: Uint8Array | undefined, what: string, options?: RequestOptions): Promise<Uint8Array> {
    const res = await this.#requester.request({ verb, path, body }, options);
    if (!ok(res.status)) throw responseError(res, what);
    return res.body;
  }

  /** POST /v1/verification/request: the server sends a code; resolves to its lifetime in seconds. */
  async requestVerificationCode(number: E164, options?: RequestOptions): Promise<number> {
    const body = await this.#call('POST', '/v1/verification/request', encode(VerificationCodeRequestSchema, { number }), 'verification request', options);
    return decode(VerificationCodeResponseSchema, body, 'verification request').expiresInSeconds;
  }

  /** POST /v1/accounts/register. */
  async register(init: MessageInitShape<typeof RegisterRequestSchema>, options?: RequestOptions): Promise<RegisterResponse> {
    const body = await this.#call('POST', '/v1/accounts/register', encode(RegisterRequestSchema, init), 'register', options);
    return decode(RegisterResponseSchema, body, 'register');
  }

  /** GET /v1/accounts/whoami. */
  async whoami(options?: RequestOptions): Promise<WhoAmIResponse> {
    return decode(WhoAmIResponseSchema, await this.#call('GET', '/v1/accounts/whoami', undefined, 'whoami', options), 'whoami');
  }

  /** GET /v1/accounts/lookup/{number}: the account of a phone number; `CLIENT_UNKNOWN_RECIPIENT` when none. */
  async lookup(number: E164, options?: RequestOptions): Promise<AccountId> {
    const res = await this.#requester.request({ verb: 'GET', path: `/v1/accounts/lookup/${encodeURIComponent(number)}` }, options);
    if (res.status === 404) throw new ClientError(ClientErrorCode.UnknownRecipient, 'that number is not registered', { status: 404, serverCode: res.code });
    if (!ok(res.status)) throw responseError(res, 'lookup');
    return asAccountId(decode(LookupResponseSchema, res.body, 'lookup').accountId);
  }

  /** PUT /v1/keys. */
  async setKeys(init: MessageInitShape<typeof SetKeysRequestSchema>, options?: RequestOptions): Promise<void> {
    await this.#call('PUT', '/v1/keys', encode(SetKeysRequestSchema, init), 'key upload', options);
  }

  /** GET /v1/keys/status. */
  async keyStatus(options?: RequestOptions): Promise<KeyStatusResponse> {
    return decode(KeyStatusResponseSchema, await this.#call('GET', '/v1/keys/status', undefined, 'key status', options), 'key status');
  }

  /** GET /v1/keys/{account}/{device} or /* (all devices); `CLIENT_UNKNOWN_RECIPIENT` on 404. */
  async getKeys(accountId: AccountId, deviceId: number | '*', options?: RequestOptions): Promise<PreKeyResponse> {
    const res = await this.#requester.request({ verb: 'GET', path: `/v1/keys/${accountId}/${deviceId}` }, options);
    if (res.status === 404) throw new ClientError(ClientErrorCode.UnknownRecipient, 'no such account or device', { status: 404, serverCode: res.code });
    if (!ok(res.status)) throw responseError(res, 'key fetch');
    return decode(PreKeyResponseSchema, res.body, 'key fetch');
  }

  /** PUT /v1/messages/{account} with an already serialized SendMessageRequest (so a retry sends the same bytes). */
  async sendMessage(accountId: AccountId, requestBody: Uint8Array, options?: RequestOptions): Promise<SendOutcome> {
    const res = await this.#requester.request({ verb: 'PUT', path: `/v1/messages/${accountId}`, body: requestBody }, options);
    if (ok(res.status)) return { kind: 'ok', stored: decode(SendMessageResponseSchema, res.body, 'send').stored };
    if (res.status === 409) {
      const d = decode(MismatchedDevicesSchema, res.body, 'send (409)');
      return { kind: 'mismatched', missing: d.missingDevices, extra: d.extraDevices };
    }
    if (res.status === 410) return { kind: 'stale', stale: decode(StaleDevicesSchema, res.body, 'send (410)').staleDevices };
    if (res.status === 404) throw new ClientError(ClientErrorCode.UnknownRecipient, 'the recipient account does not exist', { status: 404, serverCode: res.code });
    throw responseError(res, 'send');
  }

  async #group(verb: string, path: string, body: Uint8Array | undefined, what: string, options?: RequestOptions & { forbidden?: string }): Promise<Uint8Array> {
    const res = await this.#requester.request({ verb, path, body }, options);
    if (!ok(res.status)) throw groupError(res, what, options?.forbidden);
    return res.body;
  }

  /** PUT /v1/groups/{id}: creates a group with the caller as its only admin; resolves with its state. */
  async createGroup(groupId: GroupId, init: MessageInitShape<typeof CreateGroupRequestSchema>, options?: RequestOptions): Promise<GroupState> {
    const body = await this.#group('PUT', `/v1/groups/${groupId}`, encode(CreateGroupRequestSchema, init), 'create group', options);
    return decode(GroupStateSchema, body, 'create group');
  }

  /** GET /v1/groups/{id}: the group's current state (members only). */
  async getGroup(groupId: GroupId, options?: RequestOptions): Promise<GroupState> {
    return decode(GroupStateSchema, await this.#group('GET', `/v1/groups/${groupId}`, undefined, 'group state', options), 'group state');
  }

  /** POST /v1/groups/{id}/changes: one atomic change; resolves with the new state. */
  async changeGroup(
    groupId: GroupId,
    init: MessageInitShape<typeof GroupChangeRequestSchema>,
    options?: RequestOptions & { forbidden?: string },
  ): Promise<GroupState> {
    const body = await this.#group('POST', `/v1/groups/${groupId}/changes`, encode(GroupChangeRequestSchema, init), 'group change', options);
    return decode(GroupStateSchema, body, 'group change');
  }

  /** POST /v1/groups/{id}/join: joins through an invite link's password; a refused link is `CLIENT_BAD_INVITE_LINK`. */
  async joinGroup(groupId: GroupId, password: Uint8Array, options?: RequestOptions): Promise<GroupState> {
    const res = await this.#requester.request({ verb: 'POST', path: `/v1/groups/${groupId}/join`, body: encode(JoinGroupRequestSchema, { inviteLinkPassword: password }) }, options);
    if (res.status === 403 || res.status === 404) {
      throw new ClientError(ClientErrorCode.BadInviteLink, 'the invite link was revoked, replaced or is wrong', { status: res.status, serverCode: res.code || undefined });
    }
    if (!ok(res.status)) throw groupError(res, 'join group');
    return decode(GroupStateSchema, res.body, 'join group');
  }

  /** POST /v1/groups/{id}/leave. */
  async leaveGroup(groupId: GroupId, options?: RequestOptions): Promise<void> {
    await this.#group('POST', `/v1/groups/${groupId}/leave`, undefined, 'leave group', options);
  }

  /** GET /v1/groups/{id}/devices: every device of every member except this one. */
  async groupDevices(groupId: GroupId, options?: RequestOptions): Promise<GroupDevices> {
    return decode(GroupDevicesSchema, await this.#group('GET', `/v1/groups/${groupId}/devices`, undefined, 'group devices', options), 'group devices');
  }

  /** PUT /v1/groups/{id}/messages with an already serialized SendGroupMessageRequest (a retry sends the same bytes). */
  async sendGroupMessage(groupId: GroupId, requestBody: Uint8Array, options?: RequestOptions & { forbidden?: string }): Promise<GroupSendOutcome> {
    const res = await this.#requester.request({ verb: 'PUT', path: `/v1/groups/${groupId}/messages`, body: requestBody }, options);
    if (ok(res.status)) return { kind: 'ok', stored: decode(SendMessageResponseSchema, res.body, 'group send').stored };
    if (res.status === 409) return { kind: 'mismatched', devices: decode(GroupDevicesSchema, res.body, 'group send (409)') };
    throw groupError(res, 'group send', options?.forbidden);
  }

  // ---- linked devices ------------------------------------------------------------------------------------

  /** POST /v1/devices/provisioning (the primary): a device id and a one-time code for one companion. */
  async provisionDevice(options?: RequestOptions): Promise<ProvisioningResponse> {
    const res = await this.#requester.request({ verb: 'POST', path: '/v1/devices/provisioning' }, options);
    if (res.status === 403) throw new ClientError(ClientErrorCode.NotPrimary, 'only the primary device links companions', { status: 403, serverCode: res.code || undefined });
    if (!ok(res.status)) throw responseError(res, 'device provisioning');
    return decode(ProvisioningResponseSchema, res.body, 'device provisioning');
  }

  /** PUT /v1/provisioning/{link id}: leaves the encrypted ProvisionMessage for the companion that showed the code. */
  async putProvisioning(linkIdHex: string, body: Uint8Array, options?: RequestOptions): Promise<void> {
    await this.#call('PUT', `/v1/provisioning/${linkIdHex}`, encode(ProvisionEnvelopeSchema, { body }), 'provisioning', options);
  }

  /** GET /v1/provisioning/{link id} (unauthenticated): the encrypted ProvisionMessage, or undefined while it is not there (404). */
  async getProvisioning(linkIdHex: string, options?: RequestOptions): Promise<Uint8Array | undefined> {
    const res = await this.#requester.request({ verb: 'GET', path: `/v1/provisioning/${linkIdHex}` }, options);
    if (res.status === 404) return undefined;
    if (!ok(res.status)) throw responseError(res, 'provisioning');
    return decode(ProvisionEnvelopeSchema, res.body, 'provisioning').body;
  }

  /** POST /v1/devices/link (unauthenticated; the provisioning code authorises it): registers a companion. */
  async linkDevice(init: MessageInitShape<typeof LinkDeviceRequestSchema>, options?: RequestOptions): Promise<LinkDeviceResponse> {
    const res = await this.#requester.request({ verb: 'POST', path: '/v1/devices/link', body: encode(LinkDeviceRequestSchema, init) }, options);
    if (res.status === 400 || res.status === 403 || res.status === 404 || res.status === 409 || res.status === 410) {
      throw new ClientError(ClientErrorCode.LinkFailed, `the server refused the link (${res.status} ${res.code})`.trim(), { status: res.status, serverCode: res.code || undefined });
    }
    if (!ok(res.status)) throw responseError(res, 'link device');
    return decode(LinkDeviceResponseSchema, res.body, 'link device');
  }

  /** GET /v1/devices: this account's devices and its current signed device list. */
  async devices(options?: RequestOptions): Promise<DevicesResponse> {
    return decode(DevicesResponseSchema, await this.#call('GET', '/v1/devices', undefined, 'devices', options), 'devices');
  }

  /** PUT /v1/devices/list (the primary): publishes a new signed device list. */
  async putDeviceList(list: SignedDeviceList, options?: RequestOptions): Promise<void> {
    const res = await this.#requester.request({ verb: 'PUT', path: '/v1/devices/list', body: toBinary(SignedDeviceListSchema, list) }, options);
    if (res.status === 403) throw new ClientError(ClientErrorCode.NotPrimary, 'only the primary device publishes the device list', { status: 403, serverCode: res.code || undefined });
    if (!ok(res.status)) throw responseError(res, 'device list');
  }

  /** DELETE /v1/devices/{id}: the primary removes a companion, or a companion removes itself. */
  async removeDevice(deviceId: number, options?: RequestOptions): Promise<void> {
    const res = await this.#requester.request({ verb: 'DELETE', path: `/v1/devices/${deviceId}` }, options);
    if (res.status === 403) throw new ClientError(ClientErrorCode.NotPrimary, 'only the primary device removes other devices', { status: 403, serverCode: res.code || undefined });
    if (res.status === 404) throw new ClientError(ClientErrorCode.InvalidArgument, 'no such device', { status: 404, serverCode: res.code || undefined });
    if (!ok(res.status)) throw responseError(res, 'remove device');
  }

  // ---- blobs -----------------------------------------------------------------------------------------------

  /** PUT /v1/blobs/{sha256 hex}: stores an (already encrypted) blob. */
  async putBlob(blobId: string, body: Uint8Array, options?: RequestOptions): Promise<PutBlobResponse> {
    return decode(PutBlobResponseSchema, await this.#call('PUT', `/v1/blobs/${blobId}`, body, 'blob upload', options), 'blob upload');
  }

  /** GET /v1/blobs/{sha256 hex}: the blob's bytes. */
  async getBlob(blobId: string, options?: RequestOptions): Promise<Uint8Array> {
    const res = await this.#requester.request({ verb: 'GET', path: `/v1/blobs/${blobId}` }, options);
    if (res.status === 404) throw new ClientError(ClientErrorCode.BadBlob, 'the blob is not on the server (expired or never uploaded)', { status: 404, serverCode: res.code || undefined });
    if (!ok(res.status)) throw responseError(res, 'blob download');
    return res.body;
  }

  /** PUT /v1/presence/settings. */
  async setPresenceSettings(init: MessageInitShape<typeof PresenceSettingsSchema>, options?: RequestOptions): Promise<void> {
    await this.#call('PUT', '/v1/presence/settings', encode(PresenceSettingsSchema, init), 'presence settings', options);
  }

  /** GET /v1/presence/{account}. */
  async presence(accountId: AccountId, options?: RequestOptions): Promise<PresenceResponse> {
    return decode(PresenceResponseSchema, await this.#call('GET', `/v1/presence/${accountId}`, undefined, 'presence', options), 'presence');
  }
}

/** Serializes a SendGroupMessageRequest. */
export function encodeSendGroupMessageRequest(init: MessageInitShape<typeof SendGroupMessageRequestSchema>): Uint8Array {
  return encode(SendGroupMessageRequestSchema, init);
}

/** Serializes a SendMessageRequest (kept as bytes in the outbox, so that a retry repeats it exactly). */
export function encodeSendMessageRequest(init: MessageInitShape<typeof SendMessageRequestSchema>): Uint8Array {
  return encode(SendMessageRequestSchema, init);
}

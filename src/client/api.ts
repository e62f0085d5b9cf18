/**
 * Typed calls of the client-server API (docs/api.md) over any {@link Requester}. This is the one place where
 * server statuses become {@link ClientError}s.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import {
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
  type KeyStatusResponse,
  type PreKeyResponse,
  type PresenceResponse,
  type RegisterResponse,
  type WhoAmIResponse,
} from '../protocol/gen/service_pb.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { asAccountId, type AccountId, type E164 } from './ids.js';
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

  /** PUT /v1/presence/settings. */
  async setPresenceSettings(init: MessageInitShape<typeof PresenceSettingsSchema>, options?: RequestOptions): Promise<void> {
    await this.#call('PUT', '/v1/presence/settings', encode(PresenceSettingsSchema, init), 'presence settings', options);
  }

  /** GET /v1/presence/{account}. */
  async presence(accountId: AccountId, options?: RequestOptions): Promise<PresenceResponse> {
    return decode(PresenceResponseSchema, await this.#call('GET', `/v1/presence/${accountId}`, undefined, 'presence', options), 'presence');
  }
}

/** Serializes a SendMessageRequest (kept as bytes in the outbox, so that a retry repeats it exactly). */
export function encodeSendMessageRequest(init: MessageInitShape<typeof SendMessageRequestSchema>): Uint8Array {
  return encode(SendMessageRequestSchema, init);
}

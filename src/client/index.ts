/**
 * Parley's client SDK. Isomorphic: the same code runs in browsers and in Node; the WebSocket constructor,
 * `fetch`, the crypto provider and the store are injected.
 *
 * Start with {@link requestVerificationCode} and {@link register}, then {@link Client.open} and
 * `client.connect()`; listen for events with `client.on(...)`.
 */
export { Client, DEFAULT_AUTO_DOWNLOAD_BYTES, type AttachmentDownloadOptions, type AttachmentSendOptions, type ClientOptions, type PlaceCallOptions } from './client.js';
export { register, requestVerificationCode, type RegistrationOptions, type RegistrationResult } from './registration.js';
export { ClientError, ClientErrorCode } from './errors.js';
export { startLinking, LINK_TIMEOUT_MS, type LinkingOptions, type PendingLink } from './linking.js';
export { LINK_URI_PREFIX, parseLinkUri, type LinkUri } from './link-crypto.js';
export type { DeviceView } from './linked-devices.js';
export type * from './events.js';
export {
  asE164,
  asGroupId,
  isE164,
  isAccountId,
  isGroupId,
  messageId,
  type AccountId,
  type ConversationId,
  type E164,
  type GroupId,
  type MessageId,
} from './ids.js';
export type { GroupView } from './groups/state.js';
export type { GroupChange, GroupOptions } from './groups/manager.js';
export { groupReceiptCounts, type GroupReceiptCounts } from './groups/receipts.js';
export { MAX_AVATAR_BYTES, MAX_GROUP_MEMBERS, parseInviteLink, type InviteLink } from './groups/crypto.js';
export { formatSafetyNumber, type SafetyNumber } from './identity.js';
export type { ContactView } from './contacts.js';
export { DEFAULT_KEY_POLICY, type KeyPolicy, type MaintenanceReport } from './keys.js';
export { DEFAULT_SEND_POLICY, type SendPolicy } from './sender.js';
export { InMemoryClientStore } from './store/memory.js';
export * from './store/types.js';
export { isUnread } from './store/unread.js';
export { ServiceApi, type SendOutcome } from './api.js';
export { HttpTransport, type FetchLike, type HttpTransportOptions } from './transport/http.js';
export {
  ConnectionReason,
  ConnectionState,
  WebSocketTransport,
  type IncomingRequest,
  type PushHandler,
  type StateChange,
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketTransportOptions,
} from './transport/websocket.js';
export { Backoff, type BackoffOptions } from './transport/backoff.js';
export type { ApiRequest, ApiResponse, DeviceCredentials, RequestOptions, Requester } from './transport/types.js';
export { MAX_BODY_BYTES } from './content.js';
export * from './media/types.js';
export { encryptedMediaSize, type MediaType } from './media/crypto.js';
export { InMemoryMediaFiles } from './media/memory-files.js';
export { MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES, mediaTypeOf } from './media/pointers.js';
export { DEFAULT_UPLOAD_CHUNK_BYTES } from './media/upload.js';
export * from './backup/index.js';
export * from './calls/index.js';

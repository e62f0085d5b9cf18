/**
 * Attachment pointers (content.proto's AttachmentPointer) to and from the attachment records a message keeps:
 * what a received pointer must satisfy before anything is fetched, and the `blob_ids` a send request names.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { constantTimeEqual, toHex } from '../../protocol/index.js';
import { ClientErrorCode } from '../errors.js';
import { AttachmentPointerSchema, AttachmentPointer_Type, type AttachmentPointer, type Content, type DataMessage } from '../gen/content_pb.js';
import { deserializeContent } from '../content.js';
import type { AttachmentRecord } from '../store/types.js';
import { MEDIA_KEY_BYTES, type MediaType } from './crypto.js';
import { MAX_THUMBNAIL_BYTES } from './types.js';

/** Attachments one message carries at most. */
export const MAX_ATTACHMENTS = 10;
/** The largest file (plaintext) a pointer may announce: the server's 2 GiB upload limit. */
export const MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024 * 1024;
/** Longest content type accepted. */
export const MAX_CONTENT_TYPE_LENGTH = 255;
/** Longest file name accepted (longer ones are cut). */
const MAX_FILE_NAME_LENGTH = 255;

const TYPE_OF: Readonly<Record<number, MediaType>> = {
  [AttachmentPointer_Type.DOCUMENT]: 'document',
  [AttachmentPointer_Type.IMAGE]: 'image',
  [AttachmentPointer_Type.VIDEO]: 'video',
  [AttachmentPointer_Type.AUDIO]: 'audio',
};
const WIRE_TYPE: Readonly<Record<MediaType, AttachmentPointer_Type>> = {
  document: AttachmentPointer_Type.DOCUMENT,
  image: AttachmentPointer_Type.IMAGE,
  video: AttachmentPointer_Type.VIDEO,
  audio: AttachmentPointer_Type.AUDIO,
};

const BLOB_ID = /^[0-9a-f]{64}$/;

/** Whether `id` has the shape of a blob id (lowercase hex SHA-256). */
export const isBlobId = (id: string): boolean => BLOB_ID.test(id);

/** The media type a MIME type suggests. */
export function mediaTypeOf(contentType: string): MediaType {
  const major = contentType.split('/')[0]?.trim().toLowerCase();
  return major === 'image' ? 'image' : major === 'video' ? 'video' : major === 'audio' ? 'audio' : 'document';
}

/** The pointer a message sends for an attachment record. */
export function pointerOf(a: AttachmentRecord): AttachmentPointer {
  return create(AttachmentPointerSchema, {
    type: WIRE_TYPE[a.type],
    blobId: a.blobId,
    mediaKey: a.mediaKey,
    plaintextSha256: a.plaintextSha256,
    encryptedSha256: a.encryptedSha256,
    size: BigInt(a.size),
    contentType: a.contentType,
    fileName: a.fileName ?? '',
    width: a.width ?? 0,
    height: a.height ?? 0,
    durationMs: a.durationMs ?? 0,
    thumbnail: a.thumbnail ?? new Uint8Array(0),
    voiceNote: a.voiceNote,
    uploadedAt: BigInt(a.uploadedAt),
  });
}

/** Why a pointer is unusable, or undefined when it is fine. */
function pointerProblem(p: AttachmentPointer): string | undefined {
  if (TYPE_OF[p.type] === undefined) return 'unknown media type';
  if (!isBlobId(p.blobId)) return 'malformed blob id';
  if (p.encryptedSha256.length !== 32 || toHex(p.encryptedSha256) !== p.blobId) return 'blob id is not the SHA-256 of the encrypted file';
  if (p.mediaKey.length !== MEDIA_KEY_BYTES) return 'media key is not 32 bytes';
  if (p.plaintextSha256.length !== 32) return 'plaintext SHA-256 is not 32 bytes';
  if (p.size > BigInt(MAX_ATTACHMENT_BYTES)) return 'file is too large';
  if (p.thumbnail.length > MAX_THUMBNAIL_BYTES) return 'thumbnail is too large';
  if (p.contentType.length > MAX_CONTENT_TYPE_LENGTH) return 'content type is too long';
  return undefined;
}

/** Keeps the last path segment of a file name, without control characters, at most 255 characters. */
function safeFileName(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const base = (name.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_FILE_NAME_LENGTH);
  return base === '' || base === '.' || base === '..' ? undefined : base;
}

/**
 * The record of a received pointer, state `pending`; a pointer that fails validation gives a `failed` record
 * with `CLIENT_BAD_MEDIA` (its fields kept as far as they are harmless; it is never fetched).
 */
export function attachmentFromPointer(p: AttachmentPointer): AttachmentRecord {
  const problem = pointerProblem(p);
  const size = p.size > BigInt(MAX_ATTACHMENT_BYTES) ? 0 : Number(p.size);
  return {
    type: TYPE_OF[p.type] ?? 'document',
    // An invalid pointer keeps no blob id: it is never fetched.
    blobId: problem === undefined ? p.blobId : '',
    mediaKey: p.mediaKey.length === MEDIA_KEY_BYTES ? p.mediaKey.slice() : new Uint8Array(0),
    plaintextSha256: p.plaintextSha256.length === 32 ? p.plaintextSha256.slice() : new Uint8Array(0),
    encryptedSha256: p.encryptedSha256.length === 32 ? p.encryptedSha256.slice() : new Uint8Array(0),
    size,
    contentType: p.contentType.slice(0, MAX_CONTENT_TYPE_LENGTH),
    fileName: safeFileName(p.fileName),
    width: p.width > 0 ? p.width : undefined,
    height: p.height > 0 ? p.height : undefined,
    durationMs: p.durationMs > 0 ? p.durationMs : undefined,
    voiceNote: p.voiceNote,
    thumbnail: p.thumbnail.length > 0 && p.thumbnail.length <= MAX_THUMBNAIL_BYTES ? p.thumbnail.slice() : undefined,
    uploadedAt: Number(p.uploadedAt > BigInt(Number.MAX_SAFE_INTEGER) ? 0n : p.uploadedAt),
    state: problem === undefined ? 'pending' : 'failed',
    path: undefined,
    error: problem === undefined ? undefined : ClientErrorCode.BadMedia,
  };
}

/** The records of a DataMessage's pointers (at most {@link MAX_ATTACHMENTS}; the rest are dropped). */
export function attachmentsOf(data: DataMessage | undefined): AttachmentRecord[] {
  return (data?.attachments ?? []).slice(0, MAX_ATTACHMENTS).map(attachmentFromPointer);
}

/** Whether a record can be fetched (its pointer passed validation). */
export function isFetchable(a: AttachmentRecord): boolean {
  return isBlobId(a.blobId) && a.mediaKey.length === MEDIA_KEY_BYTES && a.plaintextSha256.length === 32 && a.encryptedSha256.length === 32;
}

/** Hex of a serialized pointer (how history bundles carry attachments). */
export function encodePointerHex(a: AttachmentRecord): string {
  return toHex(toBinary(AttachmentPointerSchema, pointerOf(a)));
}

/** The pointer of {@link encodePointerHex}, or undefined when it does not decode. */
export function decodePointer(bytes: Uint8Array): AttachmentPointer | undefined {
  try {
    return fromBinary(AttachmentPointerSchema, bytes);
  } catch {
    return undefined;
  }
}

/** Whether two records name the same file (same blob and key). */
export function sameAttachment(a: AttachmentRecord, b: AttachmentRecord): boolean {
  return a.blobId === b.blobId && a.mediaKey.length === b.mediaKey.length && constantTimeEqual(a.mediaKey, b.mediaKey);
}

/** The blob ids a content's attachments name (its DataMessage's, or those of a SyncMessage.sent's content). */
export function blobIdsOf(content: Content): string[] {
  const ids = new Set<string>();
  const add = (data: DataMessage | undefined): void => {
    for (const p of data?.attachments ?? []) if (isBlobId(p.blobId)) ids.add(p.blobId);
  };
  const body = content.body;
  if (body.case === 'data') add(body.value);
  else if (body.case === 'edit') add(body.value.data);
  else if (body.case === 'sync' && body.value.kind.case === 'sent') {
    try {
      const inner = deserializeContent(body.value.kind.value.content);
      if (inner.body.case === 'data') add(inner.body.value);
    } catch {
      // not our concern here: the content was built by this device
    }
  }
  return [...ids];
}

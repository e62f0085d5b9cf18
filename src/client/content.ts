/**
 * Message content (content.proto) to and from the plaintext that gets encrypted. The plaintext is padded as
 * Signal pads it (the content, 0x80, then zeros to a multiple of 160 bytes), so a ciphertext's length tells
 * the server little about the text inside.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { ContentSchema, type Content } from './gen/content_pb.js';
import { ClientError, ClientErrorCode } from './errors.js';

export { Receipt_Type as ReceiptType, Typing_Action as TypingAction, type Content } from './gen/content_pb.js';

/** The content format version this SDK writes. */
export const CONTENT_VERSION = 1;
/** Plaintext is padded to a multiple of this many bytes. */
export const PADDING_BLOCK = 160;
/** The largest text body the SDK sends, in UTF-8 bytes. */
export const MAX_BODY_BYTES = 64 * 1024;
/** The most timestamps one receipt carries (more are split over several receipts). */
export const MAX_RECEIPT_TIMESTAMPS = 500;

/** Pads `bytes`: `bytes || 0x80 || 0x00...` to a multiple of {@link PADDING_BLOCK}. */
export function pad(bytes: Uint8Array): Uint8Array {
  const length = (Math.floor((bytes.length + 1) / PADDING_BLOCK) + 1) * PADDING_BLOCK;
  const out = new Uint8Array(length);
  out.set(bytes);
  out[bytes.length] = 0x80;
  return out;
}

/** Removes the padding of {@link pad}; `CLIENT_INVALID_CONTENT` when there is none. */
export function unpad(bytes: Uint8Array): Uint8Array {
  let end = bytes.length - 1;
  while (end >= 0 && bytes[end] === 0) end--;
  if (end < 0 || bytes[end] !== 0x80) throw new ClientError(ClientErrorCode.InvalidContent, 'content padding is malformed');
  return bytes.subarray(0, end);
}

/** A Content message with the version filled in. */
export function makeContent(init: MessageInitShape<typeof ContentSchema>): Content {
  return create(ContentSchema, { version: CONTENT_VERSION, ...init });
}

/** The padded plaintext of `content`. */
export function encodeContent(content: Content): Uint8Array {
  return pad(toBinary(ContentSchema, content));
}

/** The serialized (unpadded) form of `content`, as the outbox keeps it. */
export function serializeContent(content: Content): Uint8Array {
  return toBinary(ContentSchema, content);
}

/** Parses a serialized (unpadded) Content; `CLIENT_INVALID_CONTENT` when it does not decode. */
export function deserializeContent(bytes: Uint8Array): Content {
  let content: Content;
  try {
    content = fromBinary(ContentSchema, bytes);
  } catch (cause) {
    throw new ClientError(ClientErrorCode.InvalidContent, 'content does not decode', { cause });
  }
  return content;
}

/** Unpads and parses decrypted plaintext; `CLIENT_INVALID_CONTENT` when it is not a Content with a body. */
export function decodeContent(plaintext: Uint8Array): Content {
  const content = deserializeContent(unpad(plaintext));
  if (content.body.case === undefined) throw new ClientError(ClientErrorCode.InvalidContent, 'content has no known body');
  return content;
}

/** Checks a text message: not empty, not too long (`CLIENT_INVALID_ARGUMENT`). */
export function checkText(text: string): void {
  if (text.length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'empty message');
  checkBody(text);
}

/** Checks a text body's size (`CLIENT_INVALID_ARGUMENT`). */
export function checkBody(body: string): void {
  if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
    throw new ClientError(ClientErrorCode.InvalidArgument, `message text is longer than ${MAX_BODY_BYTES} bytes`);
  }
}

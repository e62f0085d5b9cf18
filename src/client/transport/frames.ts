/**
 * Encoding and decoding of WebSocket frames (transport.proto). The decoder never throws on hostile input: it
 * returns undefined for anything that is not a well-formed Frame within the size limit.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { FrameSchema, type Request, type Response } from '../../protocol/gen/transport_pb.js';

/** The largest frame the client accepts (an envelope's content is at most 256 KiB; headroom for the rest). */
export const MAX_FRAME_BYTES = 512 * 1024;

/** A decoded frame: a request from the server (a push) or a response to one of ours. */
export type DecodedFrame = { kind: 'request'; request: Request } | { kind: 'response'; response: Response };

/** Decodes a frame; undefined when oversized, malformed, or neither a request nor a response. */
export function decodeFrame(bytes: Uint8Array, maxBytes = MAX_FRAME_BYTES): DecodedFrame | undefined {
  if (bytes.length > maxBytes) return undefined;
  try {
    const frame = fromBinary(FrameSchema, bytes);
    switch (frame.kind.case) {
      case 'request':
        return { kind: 'request', request: frame.kind.value };
      case 'response':
        return { kind: 'response', response: frame.kind.value };
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** A request frame. */
export function encodeRequestFrame(id: bigint, verb: string, path: string, body: Uint8Array | undefined): Uint8Array {
  return toBinary(
    FrameSchema,
    create(FrameSchema, { kind: { case: 'request', value: { id, verb, path, body: body ?? new Uint8Array(0) } } }),
  );
}

/** A response frame (the answer to a server push). */
export function encodeResponseFrame(id: bigint, status: number, body?: Uint8Array, message = ''): Uint8Array {
  return toBinary(
    FrameSchema,
    create(FrameSchema, { kind: { case: 'response', value: { id, status, message, body: body ?? new Uint8Array(0) } } }),
  );
}

/**
 * gzip of async byte streams through the `CompressionStream` / `DecompressionStream` globals (browsers and
 * Node 18+), so the SDK needs neither `node:zlib` nor a bundled inflater.
 */
import { ClientError, ClientErrorCode } from '../errors.js';
import { badBackup } from './format.js';

type Transform = { readonly writable: WritableStream<Uint8Array>; readonly readable: ReadableStream<Uint8Array> };

function transform(kind: 'compress' | 'decompress'): Transform {
  const g = globalThis as { CompressionStream?: new (format: 'gzip') => Transform; DecompressionStream?: new (format: 'gzip') => Transform };
  const Ctor = kind === 'compress' ? g.CompressionStream : g.DecompressionStream;
  if (!Ctor) throw new ClientError(ClientErrorCode.InvalidArgument, 'this runtime has no CompressionStream (Node 18+ and current browsers do)');
  return new Ctor('gzip');
}

/** Pipes `source` through `t`, yielding its output; stops the source when the consumer stops. */
async function* through(t: Transform, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const writer = t.writable.getWriter();
  let sourceError: { readonly err: unknown } | undefined;
  const pump = (async () => {
    try {
      for await (const chunk of source) {
        await writer.ready;
        await writer.write(chunk);
      }
      await writer.close();
    } catch (err) {
      sourceError = { err };
      await writer.abort(err).catch(() => undefined);
    }
  })();
  const reader = t.readable.getReader();
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (err) {
        await pump;
        throw sourceError ? sourceError.err : err;
      }
      if (step.done) break;
      if (step.value.length > 0) yield step.value;
    }
    await pump;
    if (sourceError) throw sourceError.err;
  } finally {
    await reader.cancel().catch(() => undefined);
    await pump;
  }
}

/** gzip of `source`. */
export function gzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  return through(transform('compress'), source);
}

/** The inflated bytes of gzip `source`; a stream that is not gzip (or is cut) is `CLIENT_BAD_BACKUP`. */
export async function* gunzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    yield* through(transform('decompress'), source);
  } catch (err) {
    if (ClientError.is(err)) throw err;
    throw badBackup('the backup\'s compressed stream is corrupt', err);
  }
}

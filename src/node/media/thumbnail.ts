/**
 * Thumbnails that travel inside the message (docs/media.md): at most 32 px on the longest side, blurred, JPEG,
 * at most MAX_THUMBNAIL_BYTES. Images go through sharp directly; videos first give one frame through ffmpeg
 * (piped, never written to disk). A thumbnail is a nicety: failing to make one never fails a send.
 */
import sharp from 'sharp';
import { abortError } from '../../client/errors.js';
import { MAX_THUMBNAIL_BYTES, type Thumbnail } from '../../client/media/types.js';
import { MAX_IMAGE_PIXELS } from './probe.js';
import { FFMPEG_COMMON_ARGS, ffmpegFileArg, runTool } from './tools.js';

/** Longest side of a thumbnail, in pixels. */
export const THUMBNAIL_MAX_SIDE = 32;
const QUALITIES = [70, 50, 35, 20, 10] as const;
/** Frames are scaled down by ffmpeg to at most this width before they are piped, to keep the pipe small. */
const FRAME_PIPE_WIDTH = 256;

/**
 * The thumbnail of an image (a path or encoded bytes): EXIF orientation applied, at most 32 px, blurred,
 * white behind transparency. Rejects when sharp cannot decode it or no quality fits the limit.
 */
export async function imageThumbnail(input: string | Uint8Array): Promise<Thumbnail> {
  const small = await sharp(input, { limitInputPixels: MAX_IMAGE_PIXELS })
    .rotate()
    .resize({ width: THUMBNAIL_MAX_SIDE, height: THUMBNAIL_MAX_SIDE, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
  const blurred = sharp(small).blur(1);
  for (const quality of QUALITIES) {
    const bytes = await blurred.clone().jpeg({ quality, mozjpeg: true }).toBuffer();
    if (bytes.length <= MAX_THUMBNAIL_BYTES) return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  }
  throw new Error(`thumbnail larger than ${MAX_THUMBNAIL_BYTES} bytes`);
}

/** One frame of a video as PNG bytes: at `seconds` (ffmpeg applies the rotation), scaled down. */
async function videoFrame(path: string, seconds: number, signal: AbortSignal | undefined): Promise<Buffer> {
  const args = [
    ...FFMPEG_COMMON_ARGS,
    ...(seconds > 0 ? ['-ss', String(seconds)] : []),
    '-i',
    ffmpegFileArg(path),
    '-map',
    '0:v:0',
    '-frames:v',
    '1',
    '-vf',
    `scale='min(${FRAME_PIPE_WIDTH},iw)':-2`,
    '-f',
    'image2pipe',
    '-vcodec',
    'png',
    'pipe:1',
  ];
  const { stdout } = await runTool('ffmpeg', args, { signal, maxStdoutBytes: 8 * 1024 * 1024 });
  return stdout;
}

/**
 * The thumbnail of a video: a frame at 1 s (the first frame for videos shorter than 2 s, or when seeking
 * finds none), then as {@link imageThumbnail}. Rejects when no frame can be had.
 */
export async function videoThumbnail(path: string, options: { durationMs?: number | undefined; signal?: AbortSignal | undefined } = {}): Promise<Thumbnail> {
  const seek = options.durationMs !== undefined && options.durationMs >= 2000 ? 1 : 0;
  let frame = await videoFrame(path, seek, options.signal);
  if (frame.length === 0 && seek > 0) frame = await videoFrame(path, 0, options.signal);
  if (frame.length === 0) throw new Error('no video frame');
  return imageThumbnail(frame);
}

/**
 * Runs a thumbnail maker and turns its failure into "no thumbnail"; only an abort of `signal` propagates.
 */
export async function optionalThumbnail(make: () => Promise<Thumbnail>, signal?: AbortSignal): Promise<Thumbnail | undefined> {
  try {
    return await make();
  } catch (err) {
    if (signal?.aborted === true) throw abortError(signal);
    void err;
    return undefined;
  }
}

/**
 * What a media file is and how big: images through `sharp`'s metadata (dimensions after EXIF orientation),
 * audio and video through `ffprobe -print_format json` (dimensions as displayed: rotation and sample aspect
 * ratio applied). The JSON is validated field by field; anything malformed is left out, never trusted.
 */
import sharp from 'sharp';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import { ffmpegFileArg, runTool } from './tools.js';

/** Raster formats sent as images. Others that sharp reads (SVG, PDF, raw) go as documents. */
const IMAGE_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif', 'jp2', 'jxl']);

/** sharp refuses images with more pixels than this (about 16,000 x 16,000); a decompression-bomb guard. */
export const MAX_IMAGE_PIXELS = 268_402_689;

/** What sharp says of an image. */
export interface ImageProbe {
  readonly kind: 'image';
  /** sharp's format name: jpeg, png, webp, gif, tiff, heif (HEIC and AVIF), jp2, jxl. */
  readonly format: string;
  /** As displayed: after the EXIF orientation. */
  readonly width: number;
  readonly height: number;
  /** More than one frame (animated GIF or WebP). */
  readonly animated: boolean;
  readonly hasAlpha: boolean;
}

/** What ffprobe says of an audio or video file. */
export interface AvProbe {
  /** `video` when there is a video stream that is not just cover art; else `audio`. */
  readonly kind: 'video' | 'audio';
  /** ffprobe's format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `ogg`, `wav`. */
  readonly formatName: string;
  readonly durationMs?: number | undefined;
  /** As displayed (rotation and sample aspect ratio applied); video only. */
  readonly width?: number | undefined;
  readonly height?: number | undefined;
  readonly videoCodec?: string | undefined;
  readonly audioCodec?: string | undefined;
  readonly audioChannels?: number | undefined;
  /** Average frames per second of the video stream. */
  readonly frameRate?: number | undefined;
}

/** What {@link probeMedia} found. */
export type MediaProbe = ImageProbe | AvProbe;

/** The image behind `path` as sharp sees it, or undefined when sharp does not read it as a raster image. */
export async function probeImage(path: string): Promise<ImageProbe | undefined> {
  const meta = await sharp(path, { limitInputPixels: MAX_IMAGE_PIXELS })
    .metadata()
    .catch(() => undefined);
  if (meta === undefined) return undefined;
  if (meta.format === undefined || !IMAGE_FORMATS.has(meta.format)) return undefined;
  const { width, height } = meta.autoOrient;
  if (!(width > 0 && height > 0)) return undefined;
  return { kind: 'image', format: meta.format, width, height, animated: (meta.pages ?? 1) > 1, hasAlpha: meta.hasAlpha };
}

// ---- ffprobe JSON

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const posInt = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined);

/** A positive finite number of seconds from ffprobe's decimal string, as milliseconds. */
function secondsToMs(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v)) return undefined;
  const ms = Math.round(Number(v) * 1000);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** `num/den` (ffprobe's rationals, e.g. `30000/1001`, `16:9`) as a number, or undefined when not positive. */
function ratio(v: unknown, sep: '/' | ':'): number | undefined {
  if (typeof v !== 'string') return undefined;
  const [a, b, ...rest] = v.split(sep);
  if (rest.length > 0 || a === undefined || b === undefined) return undefined;
  const n = Number(a);
  const d = Number(b);
  const r = n / d;
  return Number.isFinite(r) && r > 0 ? r : undefined;
}

/** The rotation of a video stream in degrees (0, 90, 180, 270): display-matrix side data or the old tag. */
function rotation(stream: Json): number {
  let degrees: number | undefined;
  const sideData = stream['side_data_list'];
  if (Array.isArray(sideData)) {
    for (const entry of sideData) {
      if (isObject(entry) && typeof entry['rotation'] === 'number') degrees = entry['rotation'];
    }
  }
  const tags = stream['tags'];
  if (degrees === undefined && isObject(tags)) {
    const tag = tags['rotate'];
    if (typeof tag === 'string' && /^-?\d+$/.test(tag)) degrees = Number(tag);
  }
  if (degrees === undefined || !Number.isFinite(degrees)) return 0;
  return ((Math.round(degrees / 90) * 90) % 360 + 360) % 360;
}

/** Parses ffprobe's `-show_format -show_streams` JSON; undefined when it holds no audio or video. */
export function parseFfprobeJson(text: string): AvProbe | undefined {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(root)) return undefined;
  const format = isObject(root['format']) ? root['format'] : {};
  const streams = Array.isArray(root['streams']) ? root['streams'].filter(isObject) : [];
  const formatName = str(format['format_name']) ?? 'unknown';
  // Single pictures that ffmpeg also reads (image2, png_pipe, ...) are not videos.
  if (formatName === 'image2' || formatName.endsWith('_pipe') || formatName === 'tty') return undefined;

  const isCoverArt = (s: Json): boolean => isObject(s['disposition']) && s['disposition']['attached_pic'] === 1;
  const video = streams.find((s) => s['codec_type'] === 'video' && !isCoverArt(s));
  const audio = streams.find((s) => s['codec_type'] === 'audio');
  if (video === undefined && audio === undefined) return undefined;

  let durationMs = secondsToMs(format['duration']);
  if (durationMs === undefined) {
    const durations = [video, audio].map((s) => (s === undefined ? undefined : secondsToMs(s['duration'])));
    const known = durations.filter((d): d is number => d !== undefined);
    durationMs = known.length > 0 ? Math.max(...known) : undefined;
  }

  let width: number | undefined;
  let height: number | undefined;
  let frameRate: number | undefined;
  if (video !== undefined) {
    const w = posInt(video['width']);
    const h = posInt(video['height']);
    if (w !== undefined && h !== undefined) {
      const sar = ratio(video['sample_aspect_ratio'], ':') ?? 1;
      const displayW = Math.max(1, Math.round(w * sar));
      [width, height] = rotation(video) % 180 === 90 ? [h, displayW] : [displayW, h];
    }
    frameRate = ratio(video['avg_frame_rate'], '/') ?? ratio(video['r_frame_rate'], '/');
  }
  return {
    kind: video !== undefined ? 'video' : 'audio',
    formatName,
    durationMs,
    width,
    height,
    videoCodec: video === undefined ? undefined : str(video['codec_name']),
    audioCodec: audio === undefined ? undefined : str(audio['codec_name']),
    audioChannels: audio === undefined ? undefined : posInt(audio['channels']),
    frameRate,
  };
}

/**
 * Runs ffprobe on `path`. Resolves undefined when ffprobe does not recognise the file or finds no audio or
 * video in it; rejects with `CLIENT_MEDIA_TOOL_MISSING` without ffprobe, or the abort error.
 */
export async function probeAv(path: string, options: { signal?: AbortSignal | undefined } = {}): Promise<AvProbe | undefined> {
  try {
    const { stdout } = await runTool('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', ffmpegFileArg(path)], {
      signal: options.signal,
      maxStdoutBytes: 4 * 1024 * 1024,
    });
    return parseFfprobeJson(stdout.toString('utf8'));
  } catch (err) {
    if (ClientError.is(err, ClientErrorCode.BadMediaInput)) return undefined;
    throw err;
  }
}

/**
 * What `path` is: an image (sharp), else audio or video (ffprobe). Rejects with `CLIENT_BAD_MEDIA_INPUT` when
 * it is neither, `CLIENT_MEDIA_TOOL_MISSING` when ffprobe is needed and absent.
 */
export async function probeMedia(path: string, options: { signal?: AbortSignal | undefined } = {}): Promise<MediaProbe> {
  const image = await probeImage(path);
  if (image !== undefined) return image;
  const av = await probeAv(path, options);
  if (av === undefined) throw new ClientError(ClientErrorCode.BadMediaInput, 'not an image, audio or video file that can be read');
  return av;
}

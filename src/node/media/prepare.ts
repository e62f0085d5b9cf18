/**
 * Preparing a file to send (docs/media.md, "Preparing"): what it is is decided by its content (sharp for
 * images, ffprobe for audio and video, the extension only as a hint), then
 *
 * - images: EXIF rotation applied, longest side at most 1,600 px, metadata (GPS) stripped, JPEG (mozjpeg, q75),
 *   or WebP for WebP sources and images with transparency; animated GIF/WebP go as they are;
 * - videos: H.264 (veryfast, CRF 28, yuv420p) + AAC 128k in MP4 with `+faststart`, at most 1280x720 (the shorter
 *   side at most 720), even dimensions, never upscaled, at most 30 fps, metadata stripped;
 * - voice notes: Opus in Ogg, mono, 32 kbit/s;
 * - other audio and documents: as they are.
 *
 * `original` sends images and videos as they are (still measured, still with a thumbnail). Converted outputs
 * go to `workDir` under a name derived from the source (real path, size, modification time) and the
 * conversion, written under a temporary name and renamed when complete: preparing the same file again (after
 * a crash, say) reuses the output instead of converting again.
 *
 * What is recognised by neither sharp nor ffprobe is sent as a document: a corrupt `.mp4` goes as an
 * `application/octet-stream` document. What is recognised but then fails to convert is an error
 * (`CLIENT_BAD_MEDIA_INPUT`, with the converter's last words); sending it with `original` or `asDocument`
 * remains possible.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { abortError, ClientError, ClientErrorCode } from '../../client/errors.js';
import type { MediaType } from '../../client/media/crypto.js';
import type { AttachmentInput, Thumbnail } from '../../client/media/types.js';
import { fileSource } from './files.js';
import { MAX_IMAGE_PIXELS, probeAv, probeImage, type AvProbe, type ImageProbe } from './probe.js';
import { imageThumbnail, optionalThumbnail, videoThumbnail } from './thumbnail.js';
import { FFMPEG_COMMON_ARGS, ffmpegFileArg, runTool } from './tools.js';

/** Longest side of a sent image. */
export const IMAGE_MAX_SIDE = 1600;
export const IMAGE_JPEG_QUALITY = 75;
export const IMAGE_WEBP_QUALITY = 75;
/** A sent video fits in 1280x720 (either orientation). */
export const VIDEO_MAX_LONG_SIDE = 1280;
export const VIDEO_MAX_SHORT_SIDE = 720;
export const VIDEO_MAX_FPS = 30;
export const VIDEO_CRF = 28;
export const VIDEO_AUDIO_BITRATE = '128k';
export const VOICE_NOTE_BITRATE = '32k';
/** Part of every output name: bump it when a conversion changes, so that old outputs are not reused. */
const PIPELINE_VERSION = 1;

/** Options of {@link prepareFile}. */
export interface PrepareOptions {
  /** Folder for converted outputs (created, 0700). Outputs stay there until `cleanup`. */
  readonly workDir: string;
  /** Send images and videos as they are (no conversion). */
  readonly original?: boolean | undefined;
  /** Send as a voice note: the (first) audio track as Opus in Ogg, mono, 32 kbit/s. */
  readonly voiceNote?: boolean | undefined;
  /** Send as a document, as it is, without looking inside (no sharp, no ffmpeg). */
  readonly asDocument?: boolean | undefined;
  /** The content type of what is sent as it is (documents, audio, originals); default from content and extension. */
  readonly contentType?: string | undefined;
  /** The file name the receiver sees; default the base name of the path (with the extension of a conversion). */
  readonly fileName?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A prepared file: what to send, and how to clean up after the send. */
export interface PreparedMedia {
  /** For `Client.sendAttachment`; `source` reads {@link path}. */
  readonly input: AttachmentInput;
  /** The file sent: the converted output in `workDir`, or the original file. */
  readonly path: string;
  /** Whether {@link path} is a conversion (then in `workDir`) rather than the user's file. */
  readonly converted: boolean;
  /** Removes the converted output, if any (never the user's file). Call it once the send is done. */
  cleanup(): Promise<void>;
}

// ---- content types

const TYPE_BY_EXTENSION: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.heic': 'image/heic',
  '.heif': 'image/heif',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.svg': 'image/svg+xml',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.avi': 'video/x-msvideo',
  '.3gp': 'video/3gpp',
  '.mp3': 'audio/mpeg',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.opus': 'audio/ogg',
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.amr': 'audio/amr',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.doc': 'application/msword',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xls': 'application/vnd.ms-excel',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.ppt': 'application/vnd.ms-powerpoint',
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  '.odt': 'application/vnd.oasis.opendocument.text',
};

const OCTET_STREAM = 'application/octet-stream';

/** The content type an extension suggests, if known. */
export function contentTypeOfExtension(fileName: string): string | undefined {
  return TYPE_BY_EXTENSION[path.extname(fileName).toLowerCase()];
}

const IMAGE_TYPES: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  tiff: 'image/tiff',
  jp2: 'image/jp2',
  jxl: 'image/jxl',
};

function imageContentType(probe: ImageProbe, fileName: string): string {
  if (probe.format === 'heif') return path.extname(fileName).toLowerCase() === '.avif' ? 'image/avif' : 'image/heic';
  return IMAGE_TYPES[probe.format] ?? OCTET_STREAM;
}

/** The content type of an audio or video file as it is: the extension's when of the same kind, else by container. */
function avContentType(probe: AvProbe, fileName: string): string {
  const byExtension = contentTypeOfExtension(fileName);
  if (byExtension?.startsWith(`${probe.kind}/`) === true) return byExtension;
  const formats = probe.formatName.split(',');
  const has = (f: string): boolean => formats.includes(f);
  if (probe.kind === 'video') {
    if (has('mp4')) return 'video/mp4';
    if (has('webm') && has('matroska')) return probe.videoCodec === 'vp8' || probe.videoCodec === 'vp9' || probe.videoCodec === 'av1' ? 'video/webm' : 'video/x-matroska';
    if (has('avi')) return 'video/x-msvideo';
    return OCTET_STREAM;
  }
  if (has('mp3')) return 'audio/mpeg';
  if (has('ogg')) return 'audio/ogg';
  if (has('wav')) return 'audio/wav';
  if (has('flac')) return 'audio/flac';
  if (has('mp4')) return 'audio/mp4';
  if (has('aac')) return 'audio/aac';
  if (has('amr')) return 'audio/amr';
  return OCTET_STREAM;
}

/** `name` with its extension replaced by `ext` (`.jpg`). */
function withExtension(name: string, ext: string): string {
  const current = path.extname(name);
  return (current === '' ? name : name.slice(0, -current.length)) + ext;
}

// ---- sniffing

/**
 * Whether the first bytes look like an audio or video container ffprobe should look at: MP4/MOV/3GP (`ftyp`),
 * Matroska/WebM, RIFF (AVI, WAVE), Ogg, FLAC, MP3 (ID3 or a frame header), ADTS AAC, AMR, FLV, MPEG-TS/PS, ASF.
 */
export function looksLikeAudioOrVideo(head: Uint8Array): boolean {
  const ascii = (at: number, s: string): boolean => [...s].every((c, i) => head[at + i] === c.charCodeAt(0));
  const b = (i: number): number => head[i] ?? -1;
  if (ascii(4, 'ftyp')) return true;
  if (b(0) === 0x1a && b(1) === 0x45 && b(2) === 0xdf && b(3) === 0xa3) return true; // EBML
  if (ascii(0, 'RIFF') && (ascii(8, 'AVI ') || ascii(8, 'WAVE'))) return true;
  if (ascii(0, 'OggS') || ascii(0, 'fLaC') || ascii(0, 'ID3') || ascii(0, '#!AMR') || ascii(0, 'FLV')) return true;
  if (b(0) === 0xff && (b(1) & 0xe0) === 0xe0) return true; // MPEG audio / ADTS frame sync
  if (b(0) === 0x47 && b(188) === 0x47) return true; // MPEG-TS
  if (b(0) === 0x00 && b(1) === 0x00 && b(2) === 0x01 && b(3) === 0xba) return true; // MPEG-PS
  if (b(0) === 0x30 && b(1) === 0x26 && b(2) === 0xb2 && b(3) === 0x75) return true; // ASF (WMV, WMA)
  return false;
}

async function readHead(file: string, bytes: number): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const buffer = new Uint8Array(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Throws the abort error of `signal` when it has aborted. */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError(signal);
}

// ---- outputs in workDir

interface SourceFile {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The output path of converting `source` with `conversion` (a stable description of the settings). */
function outputPath(workDir: string, source: SourceFile, conversion: object, ext: string): string {
  const key = createHash('sha256')
    .update(JSON.stringify({ v: PIPELINE_VERSION, source: source.path, size: source.size, mtimeMs: source.mtimeMs, conversion }))
    .digest('hex');
  return path.join(workDir, `${key.slice(0, 40)}${ext}`);
}

/**
 * Makes `output` with `produce(tmp)` unless a complete one exists already (outputs appear only by rename, so
 * one that exists is complete). Returns whether it was made now.
 */
async function produceOnce(output: string, produce: (tmp: string) => Promise<void>, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    if ((await stat(output)).isFile()) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = `${output}.${randomBytes(6).toString('hex')}.part`;
  try {
    await produce(tmp);
    throwIfAborted(signal);
    await rename(tmp, output);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}

// ---- the kinds

interface Plan {
  readonly file: string;
  readonly converted: boolean;
  readonly type: MediaType;
  readonly contentType: string;
  readonly fileName: string;
  readonly width?: number | undefined;
  readonly height?: number | undefined;
  readonly durationMs?: number | undefined;
  readonly voiceNote?: boolean | undefined;
  readonly thumbnail?: Thumbnail | undefined;
}

async function prepareImage(source: SourceFile, probe: ImageProbe, fileName: string, options: PrepareOptions): Promise<Plan> {
  const { signal } = options;
  if (options.original === true || probe.animated) {
    return {
      file: source.path,
      converted: false,
      type: 'image',
      contentType: options.contentType ?? imageContentType(probe, fileName),
      fileName,
      width: probe.width,
      height: probe.height,
      thumbnail: await optionalThumbnail(() => imageThumbnail(source.path), signal),
    };
  }
  const webp = probe.format === 'webp' || probe.hasAlpha;
  const conversion = { kind: 'image', maxSide: IMAGE_MAX_SIDE, format: webp ? 'webp' : 'jpeg', quality: webp ? IMAGE_WEBP_QUALITY : IMAGE_JPEG_QUALITY };
  const output = outputPath(options.workDir, source, conversion, webp ? '.webp' : '.jpg');
  await produceOnce(
    output,
    async (tmp) => {
      let pipeline = sharp(source.path, { limitInputPixels: MAX_IMAGE_PIXELS })
        .rotate()
        .resize({ width: IMAGE_MAX_SIDE, height: IMAGE_MAX_SIDE, fit: 'inside', withoutEnlargement: true });
      pipeline = webp ? pipeline.webp({ quality: IMAGE_WEBP_QUALITY }) : pipeline.jpeg({ quality: IMAGE_JPEG_QUALITY, mozjpeg: true });
      try {
        await pipeline.toFile(tmp);
      } catch (err) {
        throw new ClientError(ClientErrorCode.BadMediaInput, `the image could not be converted: ${(err as Error).message}`, { cause: err });
      }
    },
    signal,
  );
  const meta = await sharp(output).metadata();
  return {
    file: output,
    converted: true,
    type: 'image',
    contentType: webp ? 'image/webp' : 'image/jpeg',
    fileName: withExtension(fileName, webp ? '.webp' : '.jpg'),
    width: meta.width,
    height: meta.height,
    thumbnail: await optionalThumbnail(() => imageThumbnail(output), signal),
  };
}

/** The largest even size within 1280x720 (either orientation) of the displayed `width` x `height`, never larger. */
export function videoTargetSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, VIDEO_MAX_LONG_SIDE / Math.max(width, height), VIDEO_MAX_SHORT_SIDE / Math.min(width, height));
  const even = (n: number): number => Math.max(2, Math.floor((n * scale) / 2) * 2);
  return { width: even(width), height: even(height) };
}

async function prepareVideo(source: SourceFile, probe: AvProbe, fileName: string, options: PrepareOptions): Promise<Plan> {
  const { signal } = options;
  if (options.original === true) {
    return {
      file: source.path,
      converted: false,
      type: 'video',
      contentType: options.contentType ?? avContentType(probe, fileName),
      fileName,
      width: probe.width,
      height: probe.height,
      durationMs: probe.durationMs,
      thumbnail: await optionalThumbnail(() => videoThumbnail(source.path, { durationMs: probe.durationMs, signal }), signal),
    };
  }
  if (probe.width === undefined || probe.height === undefined) {
    throw new ClientError(ClientErrorCode.BadMediaInput, 'the video stream has no dimensions');
  }
  const size = videoTargetSize(probe.width, probe.height);
  const capFps = probe.frameRate !== undefined && probe.frameRate > VIDEO_MAX_FPS + 0.5;
  const downmix = probe.audioChannels !== undefined && probe.audioChannels > 2;
  const conversion = { kind: 'video', size, capFps, downmix, crf: VIDEO_CRF, audio: VIDEO_AUDIO_BITRATE };
  const output = outputPath(options.workDir, source, conversion, '.mp4');
  const filters = [`scale=${size.width}:${size.height}`, 'setsar=1', ...(capFps ? [`fps=${VIDEO_MAX_FPS}`] : [])];
  // prettier-ignore
  const args = (tmp: string): string[] => [
    ...FFMPEG_COMMON_ARGS,
    '-i', ffmpegFileArg(source.path),
    '-map', '0:v:0', '-map', '0:a:0?',
    '-vf', filters.join(','),
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(VIDEO_CRF), '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', VIDEO_AUDIO_BITRATE, ...(downmix ? ['-ac', '2'] : []),
    '-map_metadata', '-1', '-map_chapters', '-1',
    '-movflags', '+faststart',
    '-f', 'mp4', '-y', ffmpegFileArg(tmp),
  ];
  await produceOnce(output, async (tmp) => void (await runTool('ffmpeg', args(tmp), { signal })), signal);
  const made = await probeAv(output, { signal });
  if (made?.kind !== 'video') throw new ClientError(ClientErrorCode.BadMediaInput, 'the converted video does not read back');
  return {
    file: output,
    converted: true,
    type: 'video',
    contentType: 'video/mp4',
    fileName: withExtension(fileName, '.mp4'),
    width: made.width,
    height: made.height,
    durationMs: made.durationMs,
    thumbnail: await optionalThumbnail(() => videoThumbnail(output, { durationMs: made.durationMs, signal }), signal),
  };
}

async function prepareVoiceNote(source: SourceFile, probe: AvProbe, fileName: string, options: PrepareOptions): Promise<Plan> {
  const { signal } = options;
  if (probe.audioCodec === undefined) throw new ClientError(ClientErrorCode.BadMediaInput, 'a voice note needs a file with sound');
  const conversion = { kind: 'voice', codec: 'opus', channels: 1, bitrate: VOICE_NOTE_BITRATE };
  const output = outputPath(options.workDir, source, conversion, '.ogg');
  // prettier-ignore
  const args = (tmp: string): string[] => [
    ...FFMPEG_COMMON_ARGS,
    '-i', ffmpegFileArg(source.path),
    '-map', '0:a:0', '-vn',
    '-c:a', 'libopus', '-b:a', VOICE_NOTE_BITRATE, '-ac', '1', '-application', 'voip',
    '-map_metadata', '-1',
    '-f', 'ogg', '-y', ffmpegFileArg(tmp),
  ];
  await produceOnce(output, async (tmp) => void (await runTool('ffmpeg', args(tmp), { signal })), signal);
  const made = await probeAv(output, { signal });
  if (made?.audioCodec !== 'opus') throw new ClientError(ClientErrorCode.BadMediaInput, 'the converted voice note does not read back');
  return {
    file: output,
    converted: true,
    type: 'audio',
    contentType: 'audio/ogg',
    fileName: withExtension(fileName, '.ogg'),
    durationMs: made.durationMs,
    voiceNote: true,
  };
}

function asIs(source: SourceFile, fileName: string, type: MediaType, contentType: string): Plan {
  return { file: source.path, converted: false, type, contentType, fileName };
}

/** Decides what `source` is and prepares it (see the module comment). */
async function plan(source: SourceFile, fileName: string, options: PrepareOptions): Promise<Plan> {
  const documentType = options.contentType ?? contentTypeOfExtension(fileName) ?? OCTET_STREAM;
  if (options.asDocument === true) return asIs(source, fileName, 'document', documentType);

  if (options.voiceNote !== true) {
    const image = await probeImage(source.path);
    if (image !== undefined) return prepareImage(source, image, fileName, options);
  }
  const hinted = /^(audio|video)\//.test(contentTypeOfExtension(fileName) ?? '');
  if (options.voiceNote !== true && !hinted && !looksLikeAudioOrVideo(await readHead(source.path, 192))) {
    return asIs(source, fileName, 'document', documentType);
  }
  const av = await probeAv(source.path, { signal: options.signal });
  if (av === undefined) {
    if (options.voiceNote === true) throw new ClientError(ClientErrorCode.BadMediaInput, 'a voice note needs a file with sound');
    // Named like audio or video but not readable as such: its bytes are not what the name says.
    return asIs(source, fileName, 'document', options.contentType ?? OCTET_STREAM);
  }
  if (options.voiceNote === true) return prepareVoiceNote(source, av, fileName, options);
  if (av.kind === 'video') return prepareVideo(source, av, fileName, options);
  return { ...asIs(source, fileName, 'audio', options.contentType ?? avContentType(av, fileName)), durationMs: av.durationMs };
}

/**
 * Prepares the file at `file` for sending (see the module comment). Rejects with `CLIENT_BAD_MEDIA_INPUT` when
 * it is not a readable regular file or its conversion fails, `CLIENT_MEDIA_TOOL_MISSING` when audio or video
 * needs ffmpeg and it is absent, or the abort error of `options.signal` (a running ffmpeg is killed, its
 * partial output removed).
 */
export async function prepareFile(file: string, options: PrepareOptions): Promise<PreparedMedia> {
  const { signal } = options;
  throwIfAborted(signal);
  let source: SourceFile;
  try {
    const real = await realpath(file);
    const info = await stat(real);
    if (!info.isFile()) throw new ClientError(ClientErrorCode.BadMediaInput, 'not a regular file');
    source = { path: real, size: info.size, mtimeMs: info.mtimeMs };
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError(ClientErrorCode.BadMediaInput, `the file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  await mkdir(options.workDir, { recursive: true, mode: 0o700 });

  const fileName = options.fileName ?? path.basename(file);
  const chosen = await plan(source, fileName, options);
  throwIfAborted(signal);
  const sent = await fileSource(chosen.file);
  const input: AttachmentInput = {
    source: sent,
    contentType: chosen.contentType,
    type: chosen.type,
    fileName: chosen.fileName,
    width: chosen.width,
    height: chosen.height,
    durationMs: chosen.durationMs,
    voiceNote: chosen.voiceNote,
    thumbnail: chosen.thumbnail,
  };
  return {
    input,
    path: chosen.file,
    converted: chosen.converted,
    cleanup: async () => {
      if (chosen.converted) await rm(chosen.file, { force: true });
    },
  };
}

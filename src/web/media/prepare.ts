/**
 * Preparing files to send, in the browser: images are decoded, scaled to at most 1,600 px on their longest
 * side and re-encoded as JPEG (which also drops their metadata, location included) before encryption; every
 * image gets a small blurred thumbnail (at most 8 KiB) for the receiver to show before the download.
 * Other files go as they are.
 */
import { MAX_THUMBNAIL_BYTES, type AttachmentInput, type MediaSource } from '../../client/index.js';

/** The longest side of a sent image, px. */
export const MAX_IMAGE_SIDE = 1600;
const JPEG_QUALITY = 0.82;
const THUMB_SIDE = 48;

/** A source over bytes in memory. */
export function bytesSource(bytes: Uint8Array): MediaSource {
  return {
    size: bytes.length,
    async *open() {
      // 1 MiB at a time: the SDK encrypts as it reads.
      for (let o = 0; o < bytes.length; o += 1 << 20) yield bytes.subarray(o, Math.min(bytes.length, o + (1 << 20)));
    },
  };
}

/** A source over a File or Blob, read in slices. */
export function blobSource(blob: Blob): MediaSource {
  return {
    size: blob.size,
    async *open() {
      for (let o = 0; o < blob.size; o += 1 << 20) yield new Uint8Array(await blob.slice(o, Math.min(blob.size, o + (1 << 20))).arrayBuffer());
    },
  };
}

async function encode(bitmap: ImageBitmap, width: number, height: number, quality: number, blur = 0): Promise<Blob> {
  const canvas = typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(width, height) : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw images');
  if (blur > 0) ctx.filter = `blur(${blur}px)`;
  ctx.drawImage(bitmap, 0, 0, width, height);
  if (canvas instanceof OffscreenCanvas) return canvas.convertToBlob({ type: 'image/jpeg', quality });
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the image could not be encoded'))), 'image/jpeg', quality));
}

/** Compresses an image for sending (see the module comment). */
export async function prepareImage(file: Blob, fileName?: string): Promise<AttachmentInput> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new Error('that image could not be read');
  }
  try {
    const scale = Math.min(1, MAX_IMAGE_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const jpeg = new Uint8Array(await (await encode(bitmap, width, height, JPEG_QUALITY)).arrayBuffer());
    const ts = Math.min(1, THUMB_SIDE / Math.max(width, height));
    let thumbnail: Uint8Array | undefined = new Uint8Array(await (await encode(bitmap, Math.max(1, Math.round(width * ts)), Math.max(1, Math.round(height * ts)), 0.5, 2)).arrayBuffer());
    if (thumbnail.length > MAX_THUMBNAIL_BYTES) thumbnail = undefined;
    return {
      source: bytesSource(jpeg),
      contentType: 'image/jpeg',
      type: 'image',
      fileName: fileName ? fileName.replace(/\.[^.]*$/, '') + '.jpg' : 'photo.jpg',
      width,
      height,
      thumbnail: thumbnail ? { bytes: thumbnail } : undefined,
    };
  } finally {
    bitmap.close();
  }
}

/** What to send for a file the user picked, dropped or pasted. */
export async function prepareFile(file: File): Promise<AttachmentInput> {
  if (/^image\/(jpeg|png|webp|bmp|avif)$/.test(file.type)) return prepareImage(file, file.name);
  return { source: blobSource(file), contentType: file.type || 'application/octet-stream', fileName: file.name || 'file', type: file.type.startsWith('image/') ? 'document' : undefined };
}

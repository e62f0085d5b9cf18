// `npm run bench:media`: a 1 GB file through the SDK's media path on loopback, next to the raw speed of
// AES-256-CBC plus HMAC-SHA256 on this machine measured in the same run.
//
// - raw: node:crypto over a 256 MiB buffer in 64 KiB updates (the fastest update size here), AES-256-CBC
//   encryption + HMAC-SHA256 of the ciphertext, and decryption + HMAC (each the best of 3 runs);
// - encrypt-and-upload: `uploadAttachment` reads the file (64 KiB chunks), encrypts it in one pass
//   (AES-256-CBC, HMAC-SHA256, SHA-256 of the plaintext and of the ciphertext) and sends it in 8 MiB PATCH
//   chunks (over src/cli/http-fetch.ts, as the terminal client does) to a real server in a child process (bench/server-child.ts), which hashes and stores it;
// - download-and-decrypt: `downloadAttachment` fetches the blob into a staging file while hashing and
//   MACing it, verifies it, then decrypts it into the media folder (SHA-256 of the plaintext checked).
//
// Throughput is plaintext bytes per second (1 GB = 10^9 bytes; the file is 1 GiB unless --mib N). Target:
// each end-to-end figure at least 0.6x the raw figure of its direction. The load is one file each way.
// Last, the same server and HTTP path without client crypto (ready bytes up, bytes dropped down): the
// ceiling that the transport and the server's disk put on the figures above.
import { createHash, createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nodeFetch } from '../src/cli/http-fetch.ts';
import { BlobHttp } from '../src/client/media/blob-http.ts';
import { downloadAttachment } from '../src/client/media/download.ts';
import { uploadAttachment } from '../src/client/media/upload.ts';
import { InMemoryClientStore } from '../src/client/store/memory.ts';
import type { AttachmentRecord } from '../src/client/store/types.ts';
import { NodeCryptoProvider } from '../src/node/crypto-provider.ts';
import { FileMediaFiles, fileSource } from '../src/node/media/files.ts';
import type { BenchCredentials } from './relay-server.ts';
import { ServerChild } from './server-child.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MIB = 1024 * 1024;
const FILE_BYTES = Math.max(1, Math.min(flag('--mib', 1024), 2047)) * MIB;
const RAW_BYTES = 256 * MIB;
const RAW_CHUNK = 64 * 1024;
const TARGET = 0.6;

const crypto = new NodeCryptoProvider();
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const fmt = (v: number): string => `${v.toFixed(0)} MB/s`;

/** Best of `runs` timings of `fn`, ms. */
function best(runs: number, fn: () => void): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    min = Math.min(min, performance.now() - start);
  }
  return min;
}

function rawSpeeds(): { encrypt: number; decrypt: number } {
  const buffer = randomBytes(RAW_BYTES);
  const key = randomBytes(32);
  const macKey = randomBytes(32);
  const iv = randomBytes(16);
  const encryptMs = best(3, () => {
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    const mac = createHmac('sha256', macKey);
    for (let o = 0; o < RAW_BYTES; o += RAW_CHUNK) mac.update(cipher.update(buffer.subarray(o, o + RAW_CHUNK)));
    mac.update(cipher.final());
    mac.digest();
  });
  const decryptMs = best(3, () => {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    decipher.setAutoPadding(false);
    const mac = createHmac('sha256', macKey);
    for (let o = 0; o < RAW_BYTES; o += RAW_CHUNK) {
      const chunk = buffer.subarray(o, o + RAW_CHUNK);
      mac.update(chunk);
      decipher.update(chunk);
    }
    decipher.final();
    mac.digest();
  });
  return { encrypt: mbps(RAW_BYTES, encryptMs), decrypt: mbps(RAW_BYTES, decryptMs) };
}

/** Writes `bytes` of incompressible data: a random MiB, each copy with its index in the first 8 bytes. */
async function writeFile(file: string, bytes: number): Promise<void> {
  const block = randomBytes(MIB);
  const out = createWriteStream(file);
  for (let written = 0, i = 0; written < bytes; i++) {
    const n = Math.min(MIB, bytes - written);
    block.writeBigUInt64BE(BigInt(i), 0);
    if (!out.write(block.subarray(0, n))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    written += n;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: MIB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

const TRANSPORT_MIB = 256;

/**
 * The ceiling the server and HTTP path put on the media path here: an upload of ready bytes (no encryption)
 * in the same 8 MiB PATCH chunks, and a download of the blob whose bytes are dropped (no staging, no crypto).
 */
async function transportOnly(url: string, who: BenchCredentials, blobId: string): Promise<{ upload: number; download: number }> {
  const http = new BlobHttp({ url, credentials: credentialsOf(who), fetch: nodeFetch });
  const chunk = randomBytes(8 * MIB);
  const count = TRANSPORT_MIB / 8;
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(chunk);
  const created = await http.createUpload(count * chunk.length, undefined);
  if (created.kind !== 'created') throw new Error('expected a new upload');
  let start = performance.now();
  for (let i = 0; i < count; i++) await http.patch(created.uploadId, i * chunk.length, chunk, { blobId: i === count - 1 ? hash.digest('hex') : undefined });
  const upload = mbps(count * chunk.length, performance.now() - start);
  start = performance.now();
  const { size, chunks } = await http.download(blobId, 0);
  let received = 0;
  for await (const c of chunks) received += c.length;
  if (received !== size) throw new Error('short download');
  return { upload, download: mbps(size, performance.now() - start) };
}

const credentialsOf = (c: BenchCredentials): { accountId: string; deviceId: number; password: string } => ({
  accountId: c.accountId,
  deviceId: Number(c.login.split('.')[1]),
  password: c.password,
});

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'parley-bench-media-'));
  const server = new ServerChild({});
  try {
    const raw = rawSpeeds();
    console.log(`raw node:crypto, 256 MiB buffer in 64 KiB updates: AES-256-CBC encrypt + HMAC-SHA256 ${fmt(raw.encrypt)}, decrypt + HMAC-SHA256 ${fmt(raw.decrypt)}`);

    const file = path.join(work, 'file.bin');
    await writeFile(file, FILE_BYTES);
    await server.start();
    const [sender, receiver] = (await server.provision(2)) as [BenchCredentials, BenchCredentials];
    const url = server.url;

    const upStart = performance.now();
    const uploaded = await uploadAttachment(
      { crypto, store: new InMemoryClientStore(), http: new BlobHttp({ url, credentials: credentialsOf(sender), fetch: nodeFetch }), now: Date.now },
      await fileSource(file),
      'document',
    );
    const upMs = performance.now() - upStart;

    const record: AttachmentRecord = {
      type: uploaded.type,
      blobId: uploaded.blobId,
      mediaKey: uploaded.mediaKey,
      plaintextSha256: uploaded.plaintextSha256,
      encryptedSha256: uploaded.encryptedSha256,
      size: uploaded.size,
      contentType: 'application/octet-stream',
      fileName: 'file.bin',
      width: undefined,
      height: undefined,
      durationMs: undefined,
      voiceNote: false,
      thumbnail: undefined,
      uploadedAt: uploaded.uploadedAt,
      state: 'pending',
      path: undefined,
      error: undefined,
    };
    const downStart = performance.now();
    const downloaded = await downloadAttachment(
      { crypto, http: new BlobHttp({ url, credentials: credentialsOf(receiver), fetch: nodeFetch }), files: new FileMediaFiles(path.join(work, 'media')) },
      record,
    );
    const downMs = performance.now() - downStart;

    // Outside the timing: the saved file is the file sent.
    const [want, got] = [await sha256File(file), await sha256File(downloaded.path)];
    if (want !== got) throw new Error('the downloaded file differs from the one sent');

    const transport = await transportOnly(url, sender, uploaded.blobId);

    const up = mbps(FILE_BYTES, upMs);
    const down = mbps(FILE_BYTES, downMs);
    const upRatio = up / raw.encrypt;
    const downRatio = down / raw.decrypt;
    console.log(`file: ${FILE_BYTES / MIB} MiB (${uploaded.bytesSent} encrypted bytes sent, ${downloaded.bytesFetched} fetched), loopback`);
    console.log(`encrypt-and-upload:   ${(upMs / 1000).toFixed(2)} s, ${fmt(up)} = ${upRatio.toFixed(2)}x raw encrypt+HMAC ${upRatio >= TARGET ? 'OK' : 'BELOW'} (target ${TARGET}x)`);
    console.log(`download-and-decrypt: ${(downMs / 1000).toFixed(2)} s, ${fmt(down)} = ${downRatio.toFixed(2)}x raw decrypt+HMAC ${downRatio >= TARGET ? 'OK' : 'BELOW'} (target ${TARGET}x)`);
    console.log(`(download vs raw encrypt+HMAC, the slower direction: ${(down / raw.encrypt).toFixed(2)}x)`);
    console.log(
      `the same server and HTTP path without any client crypto: PATCH of ready 8 MiB chunks ${fmt(transport.upload)} (${TRANSPORT_MIB} MiB), GET of the blob read and dropped ${fmt(transport.download)}`,
    );
  } finally {
    await server.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

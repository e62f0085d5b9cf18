// `npm run bench:media`: a 1 GB file through the SDK's media path on loopback, next to the raw speed of
// AES-256-CBC plus HMAC-SHA256 on this machine measured in the same run.
//
// - raw: node:crypto over a 256 MiB buffer in 64 KiB updates (the fastest update size here), AES-256-CBC
//   encryption + HMAC-SHA256 of the ciphertext (each the best of 3 runs): the raw limit the target is set
//   against, what `openssl speed -evp aes-256-cbc` plus an HMAC measure. Decryption + HMAC is printed too: CBC
//   decryption runs its blocks in parallel, about three times as fast here, so it is a stricter reference;
// - encrypt-and-upload: `uploadAttachment` reads the file (64 KiB chunks), encrypts it in one pass
//   (AES-256-CBC and HMAC-SHA256 on the main thread, the SHA-256s of the plaintext and of the ciphertext where
//   the terminal client runs them: `MEDIA_HASHING`, a worker thread when there is a second core) and sends it
//   in 8 MiB PATCH chunks (over src/cli/http-fetch.ts, as the terminal client does) to a real server in a
//   child process (bench/server-child.ts), which hashes and stores it;
// - download-and-decrypt: `downloadAttachment` fetches the blob into a staging file while hashing and
//   MACing it (both on the hash worker too), verifies it, then decrypts it over itself (in place) and commits
//   it into the media folder (SHA-256 of the plaintext checked; the file synced to disk).
// Both processes run with the Node flags of bin/parley.js, as `parley send-file` / `receive` / `serve` do.
//
// Throughput is plaintext bytes per second (1 GB = 10^9 bytes; the file is 1 GiB unless --mib N). Target:
// each end-to-end figure at least 0.6x the raw figure. The load is one file each way.
// Last, the same server and HTTP path without client crypto (ready bytes up, bytes dropped down), and the
// speed of writing a new file on this machine: the ceilings that the transport, the disk and the two cores put
// on the figures above (also: overwriting a cached file, as the in-place decryption does, and a new file synced
// to disk, which every byte of both directions ends as). Every phase also reports the CPU time the client and the server used, from which a
// CPU-bound limit per direction follows (transport CPU per byte + crypto CPU per byte, spread over all cores).
import { createHash, createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus } from 'node:os';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nodeFetch } from '../src/cli/http-fetch.ts';
import { MEDIA_HASHING } from '../src/cli/profile.ts';
import { BlobHttp } from '../src/client/media/blob-http.ts';
import { downloadAttachment } from '../src/client/media/download.ts';
import { uploadAttachment } from '../src/client/media/upload.ts';
import { InMemoryClientStore } from '../src/client/store/memory.ts';
import type { AttachmentRecord } from '../src/client/store/types.ts';
import { NodeCryptoProvider } from '../src/node/crypto-provider.ts';
import { launcherNodeFlags } from '../src/node/launcher-flags.ts';
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

function rawSpeeds(): { encrypt: number; decrypt: number; sha256: number } {
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
  // The media path computes two SHA-256s besides the HMAC (of the plaintext and of the encrypted file).
  const sha256Ms = best(3, () => {
    const hash = createHash('sha256');
    for (let o = 0; o < RAW_BYTES; o += RAW_CHUNK) hash.update(buffer.subarray(o, o + RAW_CHUNK));
    hash.digest();
  });
  return { encrypt: mbps(RAW_BYTES, encryptMs), decrypt: mbps(RAW_BYTES, decryptMs), sha256: mbps(RAW_BYTES, sha256Ms) };
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
async function transportOnly(url: string, who: BenchCredentials, blobId: string, pid: number | undefined): Promise<{ upload: Phase; download: Phase; uploadBytes: number; downloadBytes: number }> {
  const http = new BlobHttp({ url, credentials: credentialsOf(who), fetch: nodeFetch });
  const chunk = randomBytes(8 * MIB);
  const count = TRANSPORT_MIB / 8;
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(chunk);
  const created = await http.createUpload(count * chunk.length, undefined);
  if (created.kind !== 'created') throw new Error('expected a new upload');
  const blobIdOfChunks = hash.digest('hex');
  const { phase: upload } = await measure(pid, async () => {
    for (let i = 0; i < count; i++) await http.patch(created.uploadId, i * chunk.length, chunk, { blobId: i === count - 1 ? blobIdOfChunks : undefined });
  });
  const { result: size, phase: download } = await measure(pid, async () => {
    const { size, chunks } = await http.download(blobId, 0);
    let received = 0;
    for await (const c of chunks) received += c.length;
    if (received !== size) throw new Error('short download');
    return size;
  });
  return { upload, download, uploadBytes: count * chunk.length, downloadBytes: size };
}

/** CPU seconds used so far by this process and by the process `pid` (from /proc; 0 when unreadable). */
function cpuSeconds(pid: number | undefined): { client: number; server: number } {
  const own = process.cpuUsage();
  let server = 0;
  try {
    // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name): utime and stime in clock ticks (100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    server = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    server = 0;
  }
  return { client: (own.user + own.system) / 1e6, server };
}

/** Wall and CPU time of one phase. */
interface Phase {
  readonly wallS: number;
  readonly clientS: number;
  readonly serverS: number;
}

async function measure<T>(pid: number | undefined, fn: () => Promise<T>): Promise<{ result: T; phase: Phase }> {
  const cpu0 = cpuSeconds(pid);
  const start = performance.now();
  const result = await fn();
  const wallS = (performance.now() - start) / 1000;
  const cpu1 = cpuSeconds(pid);
  return { result, phase: { wallS, clientS: cpu1.client - cpu0.client, serverS: cpu1.server - cpu0.server } };
}

const describePhase = (p: Phase): string =>
  `CPU client ${p.clientS.toFixed(2)} s + server ${p.serverS.toFixed(2)} s in ${p.wallS.toFixed(2)} s (${(((p.clientS + p.serverS) / p.wallS) * 100).toFixed(0)}% of one core)`;

/** How fast this machine writes files: MB/s and CPU s of each way a download writes. */
interface DiskSpeeds {
  /** A new file in 1 MiB writes, left in the page cache. */
  readonly fresh: { mbps: number; cpuS: number };
  /** The same file written over in place (its pages cached already), as a download decrypts. */
  readonly overwrite: { mbps: number; cpuS: number };
  /** A new file in 1 MiB writes and synced to disk at the end, as a download commits its output. */
  readonly durable: { mbps: number; cpuS: number };
}

async function fileWriteSpeeds(file: string, bytes: number): Promise<DiskSpeeds> {
  const block = randomBytes(MIB);
  const write = async (flags: string, sync: boolean): Promise<{ mbps: number; cpuS: number }> => {
    const { phase } = await measure(undefined, async () => {
      const handle = await open(file, flags);
      try {
        for (let written = 0; written < bytes; written += MIB) await handle.write(block, 0, Math.min(MIB, bytes - written), written);
        if (sync) await handle.sync();
      } finally {
        await handle.close();
      }
    });
    return { mbps: mbps(bytes, phase.wallS * 1000), cpuS: phase.clientS };
  };
  try {
    const fresh = await write('w', false);
    const overwrite = await write('r+', false);
    rmSync(file, { force: true });
    const durable = await write('w', true);
    return { fresh, overwrite, durable };
  } finally {
    rmSync(file, { force: true });
  }
}

const credentialsOf = (c: BenchCredentials): { accountId: string; deviceId: number; password: string } => ({
  accountId: c.accountId,
  deviceId: Number(c.login.split('.')[1]),
  password: c.password,
});

async function main(): Promise<void> {
  // The client side runs as `parley send-file` / `receive` do: with the binary's Node flags (npm run bench:media).
  const missing = launcherNodeFlags().filter((f) => !process.execArgv.includes(f));
  if (missing.length > 0) throw new Error(`run with the Node flags of bin/parley.js (npm run bench:media); missing: ${missing.join(' ')}`);
  const work = mkdtempSync(path.join(tmpdir(), 'parley-bench-media-'));
  const server = new ServerChild({});
  try {
    const raw = rawSpeeds();
    console.log(`raw node:crypto, 256 MiB buffer in 64 KiB updates: AES-256-CBC encrypt + HMAC-SHA256 ${fmt(raw.encrypt)} (the raw limit), decrypt + HMAC-SHA256 ${fmt(raw.decrypt)}`);
    console.log(`hashing: ${MEDIA_HASHING === undefined ? 'inline (one core)' : 'SHA-256s (and the download MAC) on a worker thread'}`);

    const file = path.join(work, 'file.bin');
    await writeFile(file, FILE_BYTES);
    await server.start();
    const [sender, receiver] = (await server.provision(2)) as [BenchCredentials, BenchCredentials];
    const url = server.url;

    const pid = server.child.pid;
    const { result: uploaded, phase: upPhase } = await measure(pid, async () =>
      uploadAttachment(
        { crypto, store: new InMemoryClientStore(), http: new BlobHttp({ url, credentials: credentialsOf(sender), fetch: nodeFetch }), now: Date.now, hashing: MEDIA_HASHING },
        await fileSource(file),
        'document',
      ),
    );

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
    const { result: downloaded, phase: downPhase } = await measure(pid, () =>
      downloadAttachment(
        { crypto, http: new BlobHttp({ url, credentials: credentialsOf(receiver), fetch: nodeFetch }), files: new FileMediaFiles(path.join(work, 'media')), hashing: MEDIA_HASHING },
        record,
      ),
    );

    // Outside the timing: the saved file is the file sent.
    const [want, got] = [await sha256File(file), await sha256File(downloaded.path)];
    if (want !== got) throw new Error('the downloaded file differs from the one sent');

    const transport = await transportOnly(url, sender, uploaded.blobId, pid);
    const disk = await fileWriteSpeeds(path.join(work, 'write-test.bin'), FILE_BYTES);

    const up = mbps(FILE_BYTES, upPhase.wallS * 1000);
    const down = mbps(FILE_BYTES, downPhase.wallS * 1000);
    const upRatio = up / raw.encrypt;
    const downRatio = down / raw.encrypt;
    console.log(`file: ${FILE_BYTES / MIB} MiB (${uploaded.bytesSent} encrypted bytes sent, ${downloaded.bytesFetched} fetched), loopback, ${cpus().length} cores`);
    console.log(`encrypt-and-upload:   ${upPhase.wallS.toFixed(2)} s, ${fmt(up)} = ${upRatio.toFixed(2)}x raw encrypt+HMAC ${upRatio >= TARGET ? 'OK' : 'BELOW'} (target ${TARGET}x = ${fmt(TARGET * raw.encrypt)}); ${describePhase(upPhase)}`);
    console.log(`download-and-decrypt: ${downPhase.wallS.toFixed(2)} s, ${fmt(down)} = ${downRatio.toFixed(2)}x raw encrypt+HMAC ${downRatio >= TARGET ? 'OK' : 'BELOW'} (target ${TARGET}x = ${fmt(TARGET * raw.encrypt)}); ${describePhase(downPhase)}`);
    console.log(`(download vs raw decrypt+HMAC, the stricter reference: ${(down / raw.decrypt).toFixed(2)}x)`);

    // The ceilings of this machine, measured above without any client crypto.
    const tUp = mbps(transport.uploadBytes, transport.upload.wallS * 1000);
    const tDown = mbps(transport.downloadBytes, transport.download.wallS * 1000);
    console.log(`ceilings without client crypto (${TRANSPORT_MIB} MiB up, the blob down):`);
    console.log(`  PATCH of ready 8 MiB chunks ${fmt(tUp)}; ${describePhase(transport.upload)}`);
    console.log(`  GET of the blob, bytes dropped ${fmt(tDown)}; ${describePhase(transport.download)}`);
    const diskLine = (what: string, d: { mbps: number; cpuS: number }): string => `${what} ${fmt(d.mbps)} (CPU ${d.cpuS.toFixed(2)} s)`;
    console.log(`  files of ${FILE_BYTES / MIB} MiB in 1 MiB writes: ${diskLine('a new file', disk.fresh)}, ${diskLine('written over in place', disk.overwrite)}, ${diskLine('a new file synced to disk', disk.durable)}`);
    // CPU-bound limits: the transport's CPU per byte (the server's SHA-256 of the upload included) plus the
    // crypto's CPU per byte at the raw speeds (AES-256-CBC + HMAC, and the two SHA-256s of the plaintext and of
    // the encrypted file), plus the download's file writes (staging, then in place), spread over all cores.
    // The disk bound: every byte is synced to disk once (the server's blob on upload, the saved file on download).
    const cores = cpus().length;
    const sha = 2 / (raw.sha256 * 1e6);
    const upCpuPerByte = (transport.upload.clientS + transport.upload.serverS) / transport.uploadBytes + 1 / (raw.encrypt * 1e6) + sha;
    const downCpuPerByte =
      (transport.download.clientS + transport.download.serverS) / transport.downloadBytes + 1 / (raw.decrypt * 1e6) + sha + (disk.fresh.cpuS + disk.overwrite.cpuS) / FILE_BYTES;
    const upLimit = Math.min(tUp, disk.durable.mbps, cores / upCpuPerByte / 1e6);
    const downLimit = Math.min(tDown, disk.durable.mbps, cores / downCpuPerByte / 1e6);
    console.log(`  raw SHA-256 ${fmt(raw.sha256)} (two per byte besides the HMAC: of the plaintext and of the encrypted file)`);
    console.log(
      `  => best possible here: encrypt-and-upload ${fmt(upLimit)} (${(upLimit / raw.encrypt).toFixed(2)}x raw), download-and-decrypt ${fmt(downLimit)} (${(downLimit / raw.encrypt).toFixed(2)}x raw): ` +
        `the lower of the transport, the disk (synced writes) and CPU (transport CPU per byte + raw crypto and hash CPU per byte + file writes, over ${cores} cores)`,
    );
    for (const [what, limit] of [['encrypt-and-upload', upLimit], ['download-and-decrypt', downLimit]] as const) {
      if (limit < TARGET * raw.encrypt) console.log(`  ${what}: the target ${fmt(TARGET * raw.encrypt)} is above what this machine allows (${fmt(limit)})`);
    }
    // The same from the CPU the two phases above actually used: client and server share the cores, so a phase
    // cannot be faster than its CPU time spread over all of them.
    for (const [what, p] of [['encrypt-and-upload', upPhase], ['download-and-decrypt', downPhase]] as const) {
      const ceiling = mbps(FILE_BYTES, ((p.clientS + p.serverS) / cores) * 1000);
      console.log(
        `  ${what} used ${(p.clientS + p.serverS).toFixed(2)} s of CPU: at most ${fmt(ceiling)} on ${cores} cores even with every core busy all the time; ` +
          `the target needs ${((TARGET * raw.encrypt) / ceiling * 100).toFixed(0)}% of that, the run got ${((mbps(FILE_BYTES, p.wallS * 1000) / ceiling) * 100).toFixed(0)}%`,
      );
    }
  } finally {
    await server.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

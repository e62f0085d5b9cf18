// Support for the call tests: the real server (`parley serve`), SDK clients with Node's WebRTC
// (@roamhq/wrtc), tone files made with ffmpeg, coturn started by scripts/coturn.sh, and the network
// namespace the WebRTC tests must run in (only loopback: see ../shared/ENVIRONMENT.md, "Network rules").
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Client, type ClientOptions } from '../../src/client/client.ts';
import type { Call } from '../../src/client/calls/call.ts';
import type { GroupCall } from '../../src/client/calls/group-call.ts';
import type { GroupCallEvent } from '../../src/client/calls/group-manager.ts';
import type { CallEvent, CallOptions } from '../../src/client/calls/manager.ts';
import type { GroupId } from '../../src/client/ids.ts';
import { startLinking } from '../../src/client/linking.ts';
import { register } from '../../src/client/registration.ts';
import { InMemoryClientStore } from '../../src/client/store/memory.ts';
import type { FetchLike } from '../../src/client/transport/http.ts';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import { NodeRTCPeerConnection, PcmPlayer, decodeToPcm } from '../../src/node/calls/index.ts';
import { NUMBERS, startServer, type CliServer } from '../support/cli.ts';

export const crypto = new NodeCryptoProvider();
const fetchLike = globalThis.fetch as unknown as FetchLike;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Set in the child that runs inside the namespace. */
export const NETNS_ENV = 'PARLEY_CALLS_NETNS';

/**
 * Runs `file` with node's test runner inside `unshare -n` (loopback only) and resolves with its exit code and
 * output; undefined when this machine does not allow unshare (then the caller skips, or fails under CI).
 */
export async function runInNetns(file: string, timeoutMs: number, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string } | undefined> {
  const probe = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) return undefined;
  const inner = `ip link set lo up && exec "${process.execPath}" --import tsx --test --test-reporter=spec --test-concurrency=1 "${file}"`;
  // Without NODE_TEST_CONTEXT: the inner runner reports to its own stdout, not to this runner.
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, [NETNS_ENV]: '1' };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn('unshare', ['-n', 'bash', '-c', inner], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

/**
 * Outside the namespace: the suite `title`, one test that re-runs `file` inside it ({@link runInNetns}) and
 * passes when every test in there passed, echoing their results. Where unshare is not allowed it skips,
 * saying so, except in CI (CI=true), where that fails.
 */
export function describeInNetns(title: string, file: string, timeoutMs: number): void {
  describe(title, () => {
    it('run inside a loopback-only network namespace', async (t) => {
      const r = await runInNetns(file, timeoutMs);
      if (r === undefined) {
        if (process.env.CI === 'true') assert.fail('unshare -n is not permitted here, and CI needs the call tests (run as root)');
        t.skip('unshare -n is not permitted here: the WebRTC tests need a loopback-only network namespace');
        return;
      }
      assert.equal(r.code, 0, r.output);
      process.stdout.write(r.output.split('\n').filter((l) => /^\s*(✔|✖|ℹ|#)/.test(l)).map((l) => `    ${l}`).join('\n') + '\n');
    });
  });
}

/** One SDK device with its store and client. */
export interface CallDevice {
  readonly name: string;
  readonly number: string;
  readonly store: InMemoryClientStore;
  readonly client: Client;
  /** Every `call` event so far. */
  readonly events: CallEvent[];
}

/** The Client options of a test device: quick retries, no key upkeep, Node's WebRTC. */
export function deviceOptions(store: InMemoryClientStore, calls: CallOptions = {}): ClientOptions {
  return {
    store,
    crypto,
    WebSocket,
    fetch: fetchLike,
    transport: { backoff: { baseMs: 5, maxMs: 50 }, requestTimeoutMs: 10_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 5, maxMs: 50 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 50 },
    expiryCheckMs: 0,
    maintainKeys: false,
    calls: { RTCPeerConnection: NodeRTCPeerConnection, ...calls },
  };
}

async function open(name: string, number: string, store: InMemoryClientStore, calls: CallOptions): Promise<CallDevice> {
  const client = await Client.open(deviceOptions(store, calls));
  const events: CallEvent[] = [];
  client.on('call', (e) => events.push(e));
  client.connect();
  await client.waitUntilConnected({ timeoutMs: 15_000 });
  return { name, number, store, client, events };
}

/** Registers a test number (`alice`, `bob`, ...) as a primary device, connected. */
export async function primary(server: CliServer, who: keyof typeof NUMBERS, calls: CallOptions = {}): Promise<CallDevice> {
  const { number, code } = NUMBERS[who];
  const store = new InMemoryClientStore();
  await register({ serverUrl: server.url, crypto, store, fetch: fetchLike, number, code, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  return open(who, number, store, calls);
}

/** Links a companion to `to`, connected. */
export async function companion(server: CliServer, to: CallDevice, name: string, calls: CallOptions = {}): Promise<CallDevice> {
  const store = new InMemoryClientStore();
  const pending = await startLinking({ serverUrl: server.url, crypto, store, fetch: fetchLike, deviceName: name, poll: { baseMs: 10, maxMs: 50 }, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  await Promise.all([to.client.linkDevice(pending.uri), pending.done]);
  return open(name, to.number, store, calls);
}

export { startServer, type CliServer };

/** `owner` creates a group with `members` and says hello in it (so every session exists); every device is idle after. */
export async function groupOf(owner: CallDevice, members: readonly CallDevice[], title: string): Promise<GroupId> {
  const group = await owner.client.createGroup(title, members.map((d) => d.number));
  await owner.client.sendText(group.id, 'hello all');
  for (const d of [owner, ...members]) await d.client.whenIdle();
  return group.id;
}

/** The end of a call test's `after`: the devices closed, the server stopped, the temporary folder removed (what was never made is skipped). */
export async function closeAll(devices: ReadonlyArray<CallDevice | undefined>, server: CliServer | undefined, tmp: { remove: () => void }): Promise<void> {
  for (const d of devices) await d?.client.close();
  await server?.stop();
  tmp.remove();
}

/** The tone players of a test: each loops a tone file made in `dir`; `stopAll()` belongs in the test's `after`. */
export class Tones {
  readonly #players: PcmPlayer[] = [];

  constructor(readonly dir: string) {}

  /** A 2 s tone at `hz` (its file made with ffmpeg, decoded), playing in a loop from now. */
  async play(hz: number): Promise<PcmPlayer> {
    const p = new PcmPlayer(await decodeToPcm(toneFile(this.dir, `${hz}.opus`, hz, 2)), { loop: true });
    this.#players.push(p);
    p.start();
    return p;
  }

  stopAll(): void {
    for (const p of this.#players) p.stop();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it holds; fails with `what` after `ms`. */
export async function until(what: string, ms: number, check: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not in ${ms} ms: ${what}`);
    await sleep(everyMs);
  }
}

/** The id of the track the connection's audio sender sends (null: none; undefined: no audio m-line, or no connection). */
export function audioSenderTrack(pc: RTCPeerConnection | undefined): string | null | undefined {
  const t = pc?.getTransceivers().find((x) => x.receiver.track.kind === 'audio');
  return t === undefined ? undefined : (t.sender.track?.id ?? null);
}

/** Resolves with the next `call` event of `type` on `d` (or one already seen after `from`), within `ms`. */
export function nextCall(d: CallDevice, type: CallEvent['type'], ms = 20_000, from = d.events.length): Promise<Call> {
  return new Promise((resolve, reject) => {
    const seen = d.events.slice(from).find((e) => e.type === type);
    if (seen) return resolve(seen.call);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${d.name}: no '${type}' call event in ${ms} ms`));
    }, ms);
    const off = d.client.on('call', (e) => {
      if (e.type !== type) return;
      clearTimeout(timer);
      off();
      resolve(e.call);
    });
  });
}

/** Resolves with the next `groupCall` event of `type` on `d` within `ms`. */
export function nextGroupCall(d: CallDevice, type: GroupCallEvent['type'], ms = 20_000): Promise<GroupCall> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${d.name}: no '${type}' group call event in ${ms} ms`));
    }, ms);
    const off = d.client.on('groupCall', (e) => {
      if (e.type !== type) return;
      clearTimeout(timer);
      off();
      resolve(e.call);
    });
  });
}

/** Inbound audio bytes from every participant of `call`, by account. */
export async function bytesByPeer(call: GroupCall): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of call.participants) out.set(p.accountId, p.peerConnection ? await inboundAudioBytes(p.peerConnection) : 0);
  return out;
}

/** Makes a tone file (Opus in Ogg) of `seconds` at `hz` with ffmpeg. */
export function toneFile(dir: string, name: string, hz: number, seconds: number): string {
  const file = path.join(dir, name);
  const r = spawnSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`, '-c:a', 'libopus', '-b:a', '32k', file]);
  if (r.status !== 0 || !existsSync(file)) throw new Error(`ffmpeg could not make ${name}: ${r.error?.message ?? r.stderr?.toString()}`);
  return file;
}

/** ffprobe's codec name of the first audio stream, and the duration in seconds. */
export function probeAudio(file: string): { codec: string; seconds: number } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', file]);
  if (r.status !== 0) throw new Error(`ffprobe failed on ${file}: ${r.error?.message ?? r.stderr?.toString()}`);
  const j = JSON.parse(r.stdout.toString()) as { streams?: Array<{ codec_name?: string }>; format?: { duration?: string } };
  return { codec: j.streams?.[0]?.codec_name ?? '', seconds: Number(j.format?.duration ?? 0) };
}

/** A coturn started with scripts/coturn.sh (stop it with `stop()`). */
export async function startCoturn(port: number, secret: string): Promise<{ stop: () => Promise<void>; output: string }> {
  const env = { ...process.env, PARLEY_TURN_PORT: String(port), PARLEY_TURN_SECRET: secret, PARLEY_TURN_DIR: path.join('/tmp', `parley-coturn-test-${process.pid}`) };
  const script = path.join(ROOT, 'scripts/coturn.sh');
  const r = spawnSync(script, ['start'], { env, timeout: 20_000 });
  if (r.status !== 0) throw new Error(`coturn did not start: ${r.stderr.toString()}${r.stdout.toString()}`);
  return {
    output: r.stdout.toString(),
    stop: async () => {
      spawnSync(script, ['stop'], { env, timeout: 20_000 });
    },
  };
}

/** The local candidate type of the connection's selected pair (host, srflx, relay), from getStats(). */
export async function selectedLocalCandidateType(pc: RTCPeerConnection): Promise<string | undefined> {
  const stats = await pc.getStats();
  let pairLocal: string | undefined;
  const types = new Map<string, string>();
  stats.forEach((s: { type: string; id: string; state?: string; nominated?: boolean; localCandidateId?: string; candidateType?: string }) => {
    if (s.type === 'local-candidate' && s.candidateType) types.set(s.id, s.candidateType);
    if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated && s.localCandidateId) pairLocal = s.localCandidateId;
  });
  return pairLocal === undefined ? undefined : types.get(pairLocal);
}

/** Inbound audio bytes from getStats(). */
export async function inboundAudioBytes(pc: RTCPeerConnection): Promise<number> {
  const stats = await pc.getStats();
  let bytes = 0;
  stats.forEach((s: { type: string; kind?: string; mediaType?: string; bytesReceived?: number }) => {
    if (s.type === 'inbound-rtp' && (s.kind ?? s.mediaType) === 'audio') bytes += s.bytesReceived ?? 0;
  });
  return bytes;
}

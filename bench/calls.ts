// bench:calls: call set-up time from "call" (placeCall) to connected on the caller, between two Node SDK
// peers (@roamhq/wrtc) through the real server (`parley serve`) on loopback, the callee answering as soon as
// it rings: the median of 20 direct calls, then of 20 with relay forced through a local coturn (TURN REST
// credentials minted with the test's secret). WebRTC gathers candidates on every interface, so this re-runs
// itself inside `unshare -n` (loopback only; root). Prints one JSON line per series.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mintTurnCredentials } from '../src/server/turn.ts';
import { PcmPlayer } from '../src/node/calls/index.ts';
import { tempDir } from '../test/support/cli.ts';
import { nextCall, primary, startCoturn, startServer, type CallDevice } from '../test/integration/calls-support.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 20);
const INNER = 'PARLEY_BENCH_CALLS_NETNS';

if (process.env[INNER] !== '1') {
  const file = fileURLToPath(import.meta.url);
  const r = spawnSync('unshare', ['-n', 'bash', '-c', `ip link set lo up && exec "${process.execPath}" --import tsx "${file}"`], {
    stdio: 'inherit',
    env: { ...process.env, [INNER]: '1' },
    timeout: 20 * 60_000,
  });
  if (r.error || r.status === null) {
    console.error(`bench:calls: could not run inside unshare -n (root is needed): ${r.error?.message ?? r.signal}`);
    process.exit(1);
  }
  process.exit(r.status);
}

function summary(label: string, ms: number[]): Record<string, unknown> {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  const median = s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
  return { series: label, calls: s.length, medianMs: Math.round(median), minMs: Math.round(s[0] as number), p90Ms: Math.round(at(0.9)), maxMs: Math.round(s[s.length - 1] as number) };
}

async function series(caller: CallDevice, callee: CallDevice, n: number): Promise<number[]> {
  const times: number[] = [];
  const off = callee.client.on('call', (e) => {
    if (e.type === 'incoming') void e.call.answer({ tracks: [new PcmPlayer(new Int16Array(4800)).track] });
  });
  try {
    for (let i = 0; i < n; i++) {
      const player = new PcmPlayer(new Int16Array(4800));
      const t0 = performance.now();
      const call = await caller.client.placeCall(callee.number, { tracks: [player.track] });
      await call.whenConnected(60_000);
      times.push(performance.now() - t0);
      const mark = callee.events.length;
      await call.hangup();
      await call.whenEnded();
      if (callee.client.activeCalls.length > 0) await nextCall(callee, 'ended', 10_000, mark);
      player.stop();
      await Promise.all([caller.client.whenIdle(), callee.client.whenIdle()]);
    }
  } finally {
    off();
  }
  return times;
}

const tmp = tempDir('parley-bench-calls-');
const server = await startServer(`${tmp.dir}/server`);
const secret = 'bench-calls-secret-0123456789';
const turn = await startCoturn(3478, secret);
try {
  const alice = await primary(server, 'alice');
  const bob = await primary(server, 'bob');
  await alice.client.sendText(bob.number, 'hi');
  await bob.client.whenIdle();
  console.log(JSON.stringify(summary('direct (loopback)', await series(alice, bob, CALLS))));
  await alice.client.close();
  await bob.client.close();

  const creds = mintTurnCredentials({ secret, urls: ['turn:127.0.0.1:3478?transport=udp'], ttlSeconds: 3600 }, 'bench', Date.now());
  const iceServers = [{ urls: [...creds.urls], username: creds.username, credential: creds.credential }];
  const dave = await primary(server, 'dave', { iceServers, useServerTurn: false, relayOnly: true });
  const erin = await primary(server, 'erin', { iceServers, useServerTurn: false, relayOnly: true });
  await dave.client.sendText(erin.number, 'hi');
  await erin.client.whenIdle();
  console.log(JSON.stringify(summary('relay (coturn on loopback, iceTransportPolicy relay)', await series(dave, erin, CALLS))));
  await dave.client.close();
  await erin.client.close();
} finally {
  await turn.stop();
  await server.stop();
  tmp.remove();
}
// Everything is closed, but @roamhq/wrtc's native side keeps the event loop alive (it holds no handle that
// JavaScript can unref): end here, as the terminal client does after a call.
process.exit(0);

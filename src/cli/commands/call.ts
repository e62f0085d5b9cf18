/**
 * Headless audio calls from the terminal (docs/calls.md):
 *
 * - `parley call <phone> [--play FILE] [--record FILE] [--duration S] [--relay] [--ring-timeout S]`: rings
 *   every device of the contact, plays FILE into the call once answered (looped; silence without it),
 *   records what it receives to FILE (Opus in Ogg), hangs up after `--duration` seconds (else when the peer
 *   does);
 * - `parley answer [--play FILE] [--record FILE] [--duration S] [--relay] [--timeout S] [--decline]`: waits
 *   up to `--timeout` seconds (default 60) for an incoming call, answers it (or declines it), then the same.
 *
 * - `parley call --group <groupId> ...` starts a call in the group (or joins the one running there): every
 *   member's devices ring; `parley answer --group` waits for a group call to ring and joins it. `--record FILE`
 *   then records each participant's audio to its own file (`FILE` with `-1`, `-2`, ... before the extension);
 *   `--duration` counts from the first participant connected.
 *
 * One line per event (`--json`: `{"event": "ringing" | "incoming" | "connected" | "ended", ...}`); `ended`
 * carries the reason, the outcome, the connected time and what was recorded. Exit 0 when the call
 * connected (or, with `--decline`, was declined), 1 otherwise.
 */
import { waitAtMost } from '../../client/async.js';
import type { Call, CallEnd } from '../../client/calls/call.js';
import type { GroupCall } from '../../client/calls/group-call.js';
import type { Client } from '../../client/client.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import { decodeToPcm, NodeRTCPeerConnection, PcmPlayer, TrackRecorder, type RecordingStats } from '../../node/calls/index.js';
import type { Printer } from '../io.js';
import { openClient, openStore } from '../profile.js';

/** Options shared by `call` and `answer`. */
export interface CallCommandOptions {
  readonly profile: string;
  readonly play: string | undefined;
  readonly record: string | undefined;
  /** Seconds connected before hanging up (undefined: until the peer hangs up). */
  readonly duration: number | undefined;
  readonly relay: boolean;
}

export async function callCommand(args: CallCommandOptions & { to: string; ringTimeout: number | undefined }, out: Printer): Promise<number> {
  return withCallClient(args, out, async (client, media) => {
    const started = performance.now();
    const call = await client.placeCall(args.to, { tracks: media.player ? [media.player.track] : [], relayOnly: args.relay || undefined });
    // Remote tracks come with the answer, after this.
    recordTracks(call, args, media);
    out.result({ event: 'dialing', callId: call.id }, `Calling ${args.to}...`);
    call.on('state', ({ state }) => {
      if (state === 'ringing') out.result({ event: 'ringing', callId: call.id }, 'Ringing.');
    });
    return runCall(call, args, media, out, started);
  }, args.ringTimeout);
}

export async function answerCommand(args: CallCommandOptions & { timeout: number; decline: boolean }, out: Printer): Promise<number> {
  return withCallClient(args, out, async (client, media) => {
    const incoming = await waitAtMost(
      new Promise<Call>((resolve) => {
        const ringing = client.activeCalls.find((c) => c.direction === 'incoming' && c.state === 'ringing');
        if (ringing) resolve(ringing);
        client.on('call', (e) => {
          if (e.type === 'incoming') resolve(e.call);
        });
      }),
      args.timeout * 1000,
    );
    if (!incoming) {
      out.note(`No call in ${args.timeout} s.`);
      return 1;
    }
    out.result({ event: 'incoming', callId: incoming.id, from: incoming.peer, media: incoming.media }, `Incoming ${incoming.media} call.`);
    if (args.decline) {
      await incoming.decline();
      const end = await incoming.whenEnded();
      out.result({ event: 'ended', callId: incoming.id, ...endFields(end) }, 'Declined.');
      return 0;
    }
    const started = performance.now();
    // Remote tracks come while the offer is applied, inside answer().
    recordTracks(incoming, args, media);
    await incoming.answer({ tracks: media.player ? [media.player.track] : [], relayOnly: args.relay || undefined });
    return runCall(incoming, args, media, out, started);
  });
}

interface CallMedia {
  player: PcmPlayer | undefined;
  recorder?: TrackRecorder | undefined;
}

/** Records the call's first remote audio track to `--record`. */
function recordTracks(call: Call, args: CallCommandOptions, media: CallMedia): void {
  const record = args.record;
  if (record === undefined) return;
  call.on('track', ({ track }) => {
    if (track.kind === 'audio' && media.recorder === undefined) media.recorder = new TrackRecorder(track, record);
  });
}

/** Opens the profile with Node's WebRTC, connects, runs `fn`, and closes everything. */
async function withCallClient(
  args: CallCommandOptions,
  out: Printer,
  fn: (client: Client, media: CallMedia) => Promise<number>,
  ringTimeoutS?: number,
): Promise<number> {
  const pcm = args.play === undefined ? undefined : await decodeToPcm(args.play);
  const store = openStore(args.profile);
  const media: CallMedia = { player: pcm === undefined ? undefined : new PcmPlayer(pcm, { loop: true }) };
  try {
    const client = await openClient(args.profile, store, {
      maintainKeys: false,
      calls: { RTCPeerConnection: NodeRTCPeerConnection, ringTimeoutMs: ringTimeoutS === undefined ? undefined : ringTimeoutS * 1000 },
    });
    client.on('error', ({ context, error }) => {
      if (context === 'calls') out.io.stderr.write(`parley: calls: ${error instanceof Error ? error.message : String(error)}\n`);
    });
    try {
      client.connect();
      await client.waitUntilConnected({ timeoutMs: 15_000 });
      return await fn(client, media);
    } finally {
      await waitAtMost(client.whenIdle(), 5_000);
      await client.close();
    }
  } finally {
    media.player?.stop();
    await store.close();
  }
}

/** Runs a call that was placed or answered: media, the duration, the end; prints its lines. */
async function runCall(call: Call, args: CallCommandOptions, media: CallMedia, out: Printer, started: number): Promise<number> {
  const onSigint = (): void => void call.hangup().catch(() => undefined);
  process.once('SIGINT', onSigint);
  try {
    const ended = call.whenEnded();
    const connected = await Promise.race([call.whenConnected(24 * 3600_000).then(() => true), ended.then(() => false)]).catch(() => false);
    if (connected) {
      media.player?.start();
      const setupMs = Math.round(performance.now() - started);
      out.result({ event: 'connected', callId: call.id, setupMs }, `Connected in ${setupMs} ms.`);
      if (args.duration !== undefined) {
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, (args.duration as number) * 1000))]);
        if (call.state !== 'ended') await call.hangup();
      }
    }
    const end = await ended;
    const recording: RecordingStats | undefined = await media.recorder?.stop();
    out.result(
      {
        event: 'ended',
        callId: call.id,
        ...endFields(end),
        durationMs: call.connectedAt !== undefined && call.endedAt !== undefined ? call.endedAt - call.connectedAt : undefined,
        ...(recording ? { recording } : {}),
      },
      `Call ended: ${end.outcome} (${end.reason}).${recording?.path ? ` Recorded ${recording.frames / 100} s to ${recording.path}.` : ''}`,
    );
    if (!connected) throw new ClientError(ClientErrorCode.InvalidArgument, `the call did not connect: ${end.outcome} (${end.reason})`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function endFields(end: CallEnd): { reason: string; by: string; outcome: string } {
  return { reason: end.reason, by: end.by, outcome: end.outcome };
}

/** `parley call --group <groupId>`: starts (or joins) the group's call, then {@link runGroupCall}. */
export async function groupCallCommand(args: CallCommandOptions & { groupId: string; ringTimeout: number | undefined }, out: Printer): Promise<number> {
  return withCallClient(args, out, async (client, media) => {
    const started = performance.now();
    const call = await client.startGroupCall(args.groupId, { tracks: media.player ? [media.player.track] : [], relayOnly: args.relay || undefined });
    out.result({ event: 'joined', callId: call.id, groupId: call.groupId, direction: call.direction }, `In the group call (${call.direction === 'outgoing' ? 'started' : 'joined'}).`);
    return runGroupCall(call, args, media, out, started);
  }, args.ringTimeout);
}

/** `parley answer --group`: waits for a group call to ring here and joins it. */
export async function answerGroupCommand(args: CallCommandOptions & { timeout: number; decline: boolean }, out: Printer): Promise<number> {
  return withCallClient(args, out, async (client, media) => {
    const incoming = await waitAtMost(
      new Promise<GroupCall>((resolve) => {
        const ringing = client.groupCalls.find((c) => c.state === 'ringing');
        if (ringing) resolve(ringing);
        client.on('groupCall', (e) => {
          if (e.type === 'incoming') resolve(e.call);
        });
      }),
      args.timeout * 1000,
    );
    if (!incoming) {
      out.note(`No group call in ${args.timeout} s.`);
      return 1;
    }
    out.result({ event: 'incoming', callId: incoming.id, groupId: incoming.groupId, from: incoming.startedBy?.accountId, media: incoming.media }, `Incoming ${incoming.media} group call.`);
    if (args.decline) {
      await incoming.decline();
      out.result({ event: 'declined', callId: incoming.id }, 'Declined.');
      return 0;
    }
    const started = performance.now();
    const run = runGroupCall(incoming, args, media, out, started);
    await incoming.join({ tracks: media.player ? [media.player.track] : [], relayOnly: args.relay || undefined });
    out.result({ event: 'joined', callId: incoming.id, groupId: incoming.groupId, direction: incoming.direction }, 'Joined.');
    return run;
  });
}

/**
 * Runs a group call this device is in (or is about to join): a line per participant joining, connecting and
 * leaving, each participant's audio recorded to its own file, leaving after `--duration` seconds from the
 * first connection (else when interrupted). Exit 0 when at least one participant connected.
 */
async function runGroupCall(call: GroupCall, args: CallCommandOptions, media: CallMedia, out: Printer, started: number): Promise<number> {
  const recorders: TrackRecorder[] = [];
  const record = args.record;
  const seen = new Set<string>();
  call.on('track', ({ participant, track }) => {
    const key = `${participant.accountId}.${participant.deviceId}`;
    if (record === undefined || track.kind !== 'audio' || seen.has(key)) return;
    seen.add(key);
    recorders.push(new TrackRecorder(track, numbered(record, recorders.length + 1)));
  });
  call.on('participantJoined', ({ participant: p }) => out.result({ event: 'participant-joined', accountId: p.accountId, deviceId: p.deviceId }, `${p.accountId} (device ${p.deviceId}) joined.`));
  call.on('participantLeft', ({ participant: p, reason }) => out.result({ event: 'participant-left', accountId: p.accountId, deviceId: p.deviceId, reason }, `${p.accountId} (device ${p.deviceId}) left (${reason}).`));
  let connectedOnce = false;
  const firstConnected = new Promise<void>((resolve) => {
    call.on('participantState', ({ participant: p }) => {
      if (p.state === 'connected') {
        const setupMs = Math.round(performance.now() - started);
        out.result({ event: 'connected', accountId: p.accountId, deviceId: p.deviceId, setupMs }, `Connected to ${p.accountId} (device ${p.deviceId}) in ${setupMs} ms.`);
        if (!connectedOnce) media.player?.start();
        connectedOnce = true;
        resolve();
      } else if (p.state === 'failed') {
        out.result({ event: 'failed', accountId: p.accountId, deviceId: p.deviceId }, `No connection to ${p.accountId} (device ${p.deviceId}).`);
      }
    });
  });
  const onSigint = (): void => void call.leave().catch(() => undefined);
  process.once('SIGINT', onSigint);
  try {
    const ended = call.whenEnded();
    if (args.duration !== undefined) {
      await Promise.race([firstConnected, ended]);
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, (args.duration as number) * 1000))]);
      if (call.state !== 'ended') await call.leave();
    }
    const end = await ended;
    const recordings: RecordingStats[] = [];
    for (const r of recorders) recordings.push(await r.stop());
    out.result(
      { event: 'ended', callId: call.id, reason: end.reason, by: end.by, recordings },
      `Left the group call (${end.reason}).${recordings.length > 0 ? ` Recorded ${recordings.map((r) => r.path).join(', ')}.` : ''}`,
    );
    if (!connectedOnce) throw new ClientError(ClientErrorCode.InvalidArgument, `nobody connected: ${end.reason}`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** `dir/heard.opus`, 2 -> `dir/heard-2.opus`. */
function numbered(file: string, n: number): string {
  const slash = file.lastIndexOf('/');
  const dot = file.lastIndexOf('.');
  return dot > slash + 1 ? `${file.slice(0, dot)}-${n}${file.slice(dot)}` : `${file}-${n}`;
}

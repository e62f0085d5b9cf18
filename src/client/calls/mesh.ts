/**
 * The full-mesh topology of a group call: one RTCPeerConnection per pair of participants, each an ordinary
 * WebRTC leg (offer/answer carried as end-to-end encrypted call messages, DTLS-SRTP keyed between the two
 * devices only), so every participant's media is end-to-end encrypted. Of each pair the lower address offers
 * ({@link offersTo}); an offer from the other side is refused (`unexpected`), as is an offer or answer that
 * is not newer than the last one applied for the pair (`replayed`). Offers, answers and candidates go to the
 * peer device only and are ephemeral (online only, never stored).
 */
import { drop, SerialQueue } from '../async.js';
import type { AccountId, GroupId } from '../ids.js';
import type { CallMediaOptions } from './call.js';
import type { ConnectionFactory } from './rtc.js';
import { offersTo, participantKey, type GroupCallTopology, type GroupCallTopologyHost, type MediaSignal } from './topology.js';
import { MAX_CANDIDATES_PER_MESSAGE, type CallMedia, type CallParticipant, type CallSignal, type CallSignalBody, type IceCandidateInit } from './wire.js';

/** What the mesh needs of its call. */
export interface MeshDeps {
  readonly callId: string;
  readonly groupId: GroupId;
  readonly media: CallMedia;
  readonly self: CallParticipant;
  /** The local tracks sent to every participant. */
  readonly local: CallMediaOptions;
  readonly createConnection: ConnectionFactory;
  /** Sends one call message to the devices of `to` (the destination device is in the signal). */
  readonly send: (to: AccountId, signal: CallSignal, durable: boolean) => Promise<number>;
  /** A pair that is not connected this long after it was set up is given up, ms. */
  readonly connectTimeoutMs: number;
  readonly host: GroupCallTopologyHost;
  readonly onError: (error: unknown) => void;
}

interface Pair {
  readonly peer: CallParticipant;
  readonly offerer: boolean;
  readonly queue: SerialQueue;
  pc: RTCPeerConnection | undefined;
  /** Remote candidates waiting for the remote description. */
  remote: IceCandidateInit[];
  /** Local candidates waiting to be sent (batched; held until the offer or answer went out). */
  local: IceCandidateInit[];
  canTrickle: boolean;
  /** Sender timestamp of the last offer (answerer) or answer (offerer) applied; 0 = none yet. */
  lastDescriptionAt: number;
  closed: boolean;
  flushTimer: ReturnType<typeof setTimeout> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Candidates that overtook their offer are kept for this many devices, this many each. */
const MAX_EARLY_PEERS = 16;
const MAX_EARLY_CANDIDATES = MAX_CANDIDATES_PER_MESSAGE * 2;

export class MeshTopology implements GroupCallTopology {
  readonly kind = 'mesh';
  readonly #d: MeshDeps;
  readonly #pairs = new Map<string, Pair>();
  readonly #early = new Map<string, IceCandidateInit[]>();
  #closed = false;

  constructor(deps: MeshDeps) {
    this.#d = deps;
  }

  connect(peer: CallParticipant): void {
    if (this.#closed) return;
    const key = participantKey(peer);
    if (this.#pairs.has(key)) return;
    const pair: Pair = {
      peer: { accountId: peer.accountId, deviceId: peer.deviceId },
      offerer: offersTo(this.#d.self, peer),
      queue: new SerialQueue(),
      pc: undefined,
      remote: this.#early.get(key) ?? [],
      local: [],
      canTrickle: false,
      lastDescriptionAt: 0,
      closed: false,
      flushTimer: undefined,
      timer: undefined,
    };
    this.#early.delete(key);
    this.#pairs.set(key, pair);
    this.#d.host.state(pair.peer, 'connecting');
    pair.timer = setTimeout(() => this.#fail(pair), this.#d.connectTimeoutMs);
    if (!pair.offerer) return; // the peer offers
    this.#run(pair, async () => {
      const pc = await this.#connection(pair);
      if (!pc) return;
      this.#addMedia(pc, true);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      if (pair.closed) return;
      await this.#send(pair, { kind: 'offer', sdp: pc.localDescription?.sdp ?? offer.sdp ?? '', media: this.#d.media });
      pair.canTrickle = true;
      this.#scheduleFlush(pair);
    });
  }

  signal(peer: CallParticipant, timestamp: number, s: MediaSignal): void {
    if (this.#closed) return;
    const key = participantKey(peer);
    let pair = this.#pairs.get(key);
    const reject = (reason: 'unexpected' | 'replayed'): void => this.#d.host.rejected(peer, s.kind, reason);
    switch (s.kind) {
      case 'offer': {
        if (offersTo(this.#d.self, peer)) return reject('unexpected'); // we offer to this device, not it to us
        if (pair && timestamp <= pair.lastDescriptionAt) return reject('replayed');
        if (pair?.pc) {
          // A newer offer on a set-up pair: the peer started over (it restarted): so do we.
          this.disconnect(peer);
          pair = undefined;
        }
        if (!pair) {
          this.connect(peer);
          pair = this.#pairs.get(key);
          if (!pair) return;
        }
        const p = pair;
        p.lastDescriptionAt = timestamp;
        this.#run(p, async () => {
          const pc = await this.#connection(p);
          if (!pc) return;
          await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp });
          this.#addMedia(pc, false);
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          if (p.closed) return;
          await this.#send(p, { kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
          p.canTrickle = true;
          this.#scheduleFlush(p);
          await this.#applyRemote(p);
        });
        return;
      }
      case 'answer': {
        if (!pair || !pair.offerer) return reject('unexpected');
        if (pair.lastDescriptionAt !== 0) return reject('replayed'); // one answer per offer
        const p = pair;
        p.lastDescriptionAt = timestamp;
        this.#run(p, async () => {
          const pc = p.pc;
          if (!pc || p.closed) return;
          await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
          await this.#applyRemote(p);
        });
        return;
      }
      case 'ice': {
        if (!pair) {
          this.#keepEarly(key, s.candidates);
          return;
        }
        const p = pair;
        p.remote.push(...s.candidates.slice(0, MAX_EARLY_CANDIDATES));
        drop(
          p.queue.run(() => this.#applyRemote(p)),
          this.#d.onError,
        );
        return;
      }
    }
  }

  disconnect(peer: CallParticipant): void {
    const key = participantKey(peer);
    const pair = this.#pairs.get(key);
    this.#early.delete(key);
    if (!pair) return;
    this.#pairs.delete(key);
    this.#close(pair);
  }

  close(): void {
    this.#closed = true;
    for (const pair of this.#pairs.values()) this.#close(pair);
    this.#pairs.clear();
    this.#early.clear();
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #run(pair: Pair, task: () => Promise<void>): void {
    drop(pair.queue.run(task), (err) => {
      this.#d.onError(err);
      this.#fail(pair);
    });
  }

  async #send(pair: Pair, body: CallSignalBody): Promise<void> {
    const signal: CallSignal = { ...body, callId: this.#d.callId, destinationDeviceId: pair.peer.deviceId, groupId: this.#d.groupId, participants: [this.#d.self] };
    await this.#d.send(pair.peer.accountId, signal, false);
  }

  async #connection(pair: Pair): Promise<RTCPeerConnection | undefined> {
    const pc = await this.#d.createConnection(this.#d.local.relayOnly);
    if (pair.closed) {
      pc.close();
      return undefined;
    }
    pair.pc = pc;
    const peer = pair.peer;
    this.#d.host.connection(peer, pc);
    pc.addEventListener('track', (e: RTCTrackEvent) => {
      if (!pair.closed) this.#d.host.track(peer, e.track, [...e.streams]);
    });
    pc.addEventListener('icecandidate', (e: RTCPeerConnectionIceEvent) => {
      const c = e.candidate;
      if (!c || c.candidate === '' || pair.closed) return;
      pair.local.push({ candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment });
      this.#scheduleFlush(pair);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pair.closed) return;
      if (pc.connectionState === 'connected') {
        clearTimeout(pair.timer);
        this.#d.host.state(peer, 'connected');
      } else if (pc.connectionState === 'failed') {
        this.#fail(pair);
      }
    });
    return pc;
  }

  #addMedia(pc: RTCPeerConnection, offering: boolean): void {
    const tracks = this.#d.local.tracks ?? [];
    for (const t of tracks) pc.addTrack(t, ...(this.#d.local.streams ?? []));
    if (!offering) return; // answering: the offer decides the m-lines
    if (!tracks.some((t) => t.kind === 'audio')) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (this.#d.media === 'video' && !tracks.some((t) => t.kind === 'video')) pc.addTransceiver('video', { direction: 'recvonly' });
  }

  async #applyRemote(pair: Pair): Promise<void> {
    const pc = pair.pc;
    if (!pc?.remoteDescription || pair.closed) return;
    for (const c of pair.remote.splice(0)) {
      try {
        await pc.addIceCandidate(c.candidate === '' ? null : c);
      } catch (err) {
        this.#d.onError(err); // one bad candidate does not end the pair
      }
    }
  }

  #scheduleFlush(pair: Pair): void {
    if (pair.flushTimer !== undefined || !pair.canTrickle || pair.local.length === 0 || pair.closed) return;
    // Candidates gathered within a few milliseconds travel together.
    pair.flushTimer = setTimeout(() => {
      pair.flushTimer = undefined;
      if (pair.closed) return;
      const batch = pair.local.splice(0, MAX_CANDIDATES_PER_MESSAGE);
      drop(this.#send(pair, { kind: 'ice', candidates: batch }), this.#d.onError);
      this.#scheduleFlush(pair);
    }, 5);
  }

  #keepEarly(key: string, candidates: readonly IceCandidateInit[]): void {
    const list = this.#early.get(key);
    if (list) {
      if (list.length + candidates.length <= MAX_EARLY_CANDIDATES) list.push(...candidates);
      return;
    }
    if (this.#early.size >= MAX_EARLY_PEERS) return;
    this.#early.set(key, candidates.slice(0, MAX_EARLY_CANDIDATES));
  }

  /** The pair could not connect (or lost its connection): closed, and reported failed. */
  #fail(pair: Pair): void {
    if (pair.closed) return;
    this.#close(pair);
    this.#d.host.state(pair.peer, 'failed');
  }

  #close(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    clearTimeout(pair.timer);
    clearTimeout(pair.flushTimer);
    try {
      pair.pc?.close();
    } catch {
      // closing a connection that failed to start is fine
    }
    if (pair.pc) this.#d.host.connection(pair.peer, undefined);
  }
}

/**
 * The full-mesh topology of a group call: one RTCPeerConnection per pair of participants, each an ordinary
 * WebRTC leg (offer/answer carried as end-to-end encrypted call messages, DTLS-SRTP keyed between the two
 * devices only), so every participant's media is end-to-end encrypted. Of each pair the lower address offers
 * ({@link offersTo}); an offer from the other side is refused (`unexpected`), as is an offer or answer that
 * is not newer than the last one applied for the pair, or an answer to no pending offer (`replayed`).
 * Offers, answers and candidates go to the peer device only and are ephemeral (online only, never stored).
 *
 * A pair whose connection fails, is closed, stays disconnected, or does not connect in time is tried again:
 * the offering side makes a fresh connection and sends a new offer (which the answering side takes as a
 * restart), up to `connectAttempts` offers with a growing pause between them; the answering side waits for
 * that offer. Only then is the participant `failed`. Local tracks can be replaced at any time
 * ({@link MeshTopology.setLocalTrack}): every pair's sender switches, and every pair set up later sends the
 * new track.
 */
import { drop, SerialQueue } from '../async.js';
import type { AccountId, GroupId } from '../ids.js';
import type { CallMediaOptions } from './call.js';
import { addLocalMedia, offeredKinds, replaceSenderTrack, tracksByKind, type LocalTrackKind, type LocalTracks } from './media.js';
import type { ConnectionFactory } from './rtc.js';
import { offersTo, participantKey, type GroupCallTopology, type GroupCallTopologyHost, type MediaSignal } from './topology.js';
import { MAX_CANDIDATES_PER_MESSAGE, type CallMedia, type CallParticipant, type CallSignal, type CallSignalBody, type IceCandidateInit } from './wire.js';

/** What the mesh needs of its call. */
export interface MeshDeps {
  readonly callId: string;
  readonly groupId: GroupId;
  readonly media: CallMedia;
  readonly self: CallParticipant;
  /** The local tracks sent to every participant when the call is joined (then see {@link MeshTopology.setLocalTrack}). */
  readonly local: CallMediaOptions;
  readonly createConnection: ConnectionFactory;
  /** Sends one call message to the devices of `to` (the destination device is in the signal). */
  readonly send: (to: AccountId, signal: CallSignal, durable: boolean) => Promise<number>;
  /** An attempt at connecting a pair that is not connected this long after it started fails, ms. */
  readonly connectTimeoutMs: number;
  /** Offers made for a pair (a fresh connection each) before its participant is `failed`; at least 1. */
  readonly connectAttempts: number;
  readonly host: GroupCallTopologyHost;
  readonly onError: (error: unknown) => void;
}

interface Pair {
  readonly peer: CallParticipant;
  readonly offerer: boolean;
  readonly queue: SerialQueue;
  /** The connection of the current attempt (undefined before it exists, and between attempts). */
  pc: RTCPeerConnection | undefined;
  /** Bumped whenever the pair starts over: a task of an older attempt that fails fails nothing now. */
  generation: number;
  /** Offerer: the current attempt, from 1 (back to 1 once connected, so a later loss has every attempt again). */
  attempt: number;
  /** Remote candidates waiting for the remote description. */
  remote: IceCandidateInit[];
  /** Local candidates waiting to be sent (batched; held until the offer or answer went out). */
  local: IceCandidateInit[];
  canTrickle: boolean;
  /** Sender timestamp of the last offer (answerer) or answer (offerer) applied; 0 = none yet. */
  lastDescriptionAt: number;
  /** Offerer: the current attempt's offer went out and no answer to it was applied yet. */
  awaitingAnswer: boolean;
  /** Over for good: left, closed, or failed after its attempts. */
  closed: boolean;
  flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The pair's one deadline: connecting, the grace of a disconnection, the next offer, or the wait for it. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Candidates that overtook their offer are kept for this many devices, this many each. */
const MAX_EARLY_PEERS = 16;
const MAX_EARLY_CANDIDATES = MAX_CANDIDATES_PER_MESSAGE * 2;
/** The pause before the offerer's second attempt, ms; doubled for each further one, up to the maximum. */
const RETRY_BACKOFF_MS = 1_000;
const MAX_RETRY_BACKOFF_MS = 8_000;
/**
 * How much longer than the offerer's worst case (its connect timeout, then its pause) the answerer waits for
 * the new offer after its side failed, ms: the two sides notice a failure at different times, and the offer
 * has to travel.
 */
const RETRY_WAIT_SLACK_MS = 5_000;
/**
 * A `disconnected` connection (no answer to ICE checks for a few seconds) often comes back by itself (a
 * network blip, a Wi-Fi handover); only after this long is it counted as lost, ms, well before ICE's own
 * `failed`, which takes about half a minute.
 */
const DISCONNECTED_GRACE_MS = 5_000;

export class MeshTopology implements GroupCallTopology {
  readonly kind = 'mesh';
  readonly #d: MeshDeps;
  readonly #pairs = new Map<string, Pair>();
  readonly #early = new Map<string, IceCandidateInit[]>();
  /** What this device sends now, by kind (every new pair takes these). */
  readonly #local: LocalTracks;
  #closed = false;

  constructor(deps: MeshDeps) {
    this.#d = deps;
    this.#local = tracksByKind(deps.local.tracks);
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
      generation: 0,
      attempt: 1,
      remote: this.#early.get(key) ?? [],
      local: [],
      canTrickle: false,
      lastDescriptionAt: 0,
      awaitingAnswer: false,
      closed: false,
      flushTimer: undefined,
      timer: undefined,
    };
    this.#early.delete(key);
    this.#pairs.set(key, pair);
    this.#d.host.state(pair.peer, 'connecting');
    if (pair.offerer) this.#offer(pair);
    else this.#arm(pair, this.#d.connectTimeoutMs, () => this.#lost(pair)); // the peer offers
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
        if (pair && (pair.pc || pair.closed || pair.lastDescriptionAt !== 0)) {
          // A newer offer on a pair that was set up: the peer started over (it restarted, or it tries again
          // after a failure): so do we, on a fresh pair.
          this.disconnect(peer);
          pair = undefined;
        }
        if (!pair) {
          this.connect(peer);
          pair = this.#pairs.get(key);
          if (!pair) return;
        }
        this.#answer(pair, timestamp, s.sdp);
        return;
      }
      case 'answer': {
        if (!pair || !pair.offerer) return reject('unexpected');
        // One answer per offer, newer than the last one applied (an answer of an earlier attempt is refused).
        if (!pair.awaitingAnswer || timestamp <= pair.lastDescriptionAt) return reject('replayed');
        const p = pair;
        p.awaitingAnswer = false;
        p.lastDescriptionAt = timestamp;
        const pc = p.pc;
        this.#run(p, async () => {
          if (!pc || !this.#current(p, pc)) return;
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

  /**
   * Sends `track` (null: nothing, the m-line stays so that a track can come back) as this device's `kind`:
   * every pair's sender of that kind switches (`replaceTrack`, no new offer), and every pair set up later
   * sends it. Rejects with the first error of a pair that is still up (the others switched).
   */
  async setLocalTrack(kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void> {
    if (this.#closed) return;
    this.#local.set(kind, track);
    const pairs = [...this.#pairs.values()].filter((p) => p.pc && !p.closed);
    const results = await Promise.allSettled(pairs.map((p) => replaceSenderTrack(p.pc as RTCPeerConnection, kind, track)));
    const failed = results.flatMap((r, i) => {
      const p = pairs[i];
      return r.status === 'rejected' && p?.pc && this.#current(p, p.pc) ? [r.reason as unknown] : [];
    });
    if (failed.length > 0) throw failed[0];
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

  /** Offerer: one attempt: a fresh connection and a new offer (the answerer takes a newer offer as a restart). */
  #offer(pair: Pair): void {
    if (pair.closed) return;
    this.#arm(pair, this.#d.connectTimeoutMs, () => this.#lost(pair));
    this.#run(pair, async () => {
      const pc = await this.#connection(pair);
      if (!pc) return;
      addLocalMedia(pc, this.#local, this.#d.local.streams ?? [], offeredKinds(this.#d.media, this.#local), true);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      if (!this.#current(pair, pc)) return;
      pair.awaitingAnswer = true; // before the send: the answer may come back before the send resolves
      await this.#send(pair, { kind: 'offer', sdp: pc.localDescription?.sdp ?? offer.sdp ?? '', media: this.#d.media });
      if (!this.#current(pair, pc)) return;
      pair.canTrickle = true;
      this.#scheduleFlush(pair);
    });
  }

  /** Answerer: a connection for the peer's offer (each offer gets its own: see {@link signal}). */
  #answer(pair: Pair, timestamp: number, sdp: string): void {
    pair.lastDescriptionAt = timestamp;
    this.#arm(pair, this.#d.connectTimeoutMs, () => this.#lost(pair));
    this.#run(pair, async () => {
      const pc = await this.#connection(pair);
      if (!pc) return;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      addLocalMedia(pc, this.#local, this.#d.local.streams ?? [], offeredKinds(this.#d.media, this.#local), false);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      if (!this.#current(pair, pc)) return;
      await this.#send(pair, { kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
      if (!this.#current(pair, pc)) return;
      pair.canTrickle = true;
      this.#scheduleFlush(pair);
      await this.#applyRemote(pair);
    });
  }

  /** Runs a step of the pair's signalling in order; a step that throws loses the attempt it belongs to. */
  #run(pair: Pair, task: () => Promise<void>): void {
    const generation = pair.generation;
    drop(pair.queue.run(task), (err) => {
      this.#d.onError(err);
      if (pair.generation === generation) this.#lost(pair);
    });
  }

  /** Whether `pc` is the connection of the pair's current attempt (and the pair is not over). */
  #current(pair: Pair, pc: RTCPeerConnection): boolean {
    return !pair.closed && pair.pc === pc;
  }

  #arm(pair: Pair, ms: number, then: () => void): void {
    clearTimeout(pair.timer);
    pair.timer = setTimeout(() => {
      pair.timer = undefined;
      then();
    }, ms);
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
      if (this.#current(pair, pc)) this.#d.host.track(peer, e.track, [...e.streams]);
    });
    pc.addEventListener('icecandidate', (e: RTCPeerConnectionIceEvent) => {
      const c = e.candidate;
      if (!c || c.candidate === '' || !this.#current(pair, pc)) return;
      pair.local.push({ candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment });
      this.#scheduleFlush(pair);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!this.#current(pair, pc)) return; // a connection this pair replaced (or closed itself)
      switch (pc.connectionState) {
        case 'connected':
          clearTimeout(pair.timer);
          pair.timer = undefined;
          pair.attempt = 1;
          this.#d.host.state(peer, 'connected');
          return;
        case 'disconnected':
          this.#arm(pair, DISCONNECTED_GRACE_MS, () => this.#lost(pair));
          return;
        case 'failed':
        case 'closed': // closed by the application (through `participant.peerConnection`), not by us
          this.#lost(pair);
          return;
        default:
          return;
      }
    });
    return pc;
  }

  /**
   * The pair's connection failed, was closed, stayed disconnected, or did not connect in time. The offerer
   * tries again with a fresh connection after a pause, while it has attempts left; the answerer waits for
   * that offer. The participant is `failed` only when the attempts are used up (or no new offer came).
   */
  #lost(pair: Pair): void {
    if (pair.closed) return;
    if (pair.offerer && pair.attempt >= this.#d.connectAttempts) {
      this.#fail(pair);
      return;
    }
    this.#restart(pair);
    this.#d.host.state(pair.peer, 'connecting');
    if (pair.offerer) {
      const pause = Math.min(RETRY_BACKOFF_MS * 2 ** (pair.attempt - 1), MAX_RETRY_BACKOFF_MS);
      pair.attempt += 1;
      this.#arm(pair, pause, () => this.#offer(pair));
    } else {
      this.#arm(pair, this.#d.connectTimeoutMs + MAX_RETRY_BACKOFF_MS + RETRY_WAIT_SLACK_MS, () => this.#fail(pair));
    }
  }

  /** Drops the current attempt's connection and what belonged to it (the pair's replay marks stay). */
  #restart(pair: Pair): void {
    pair.generation += 1;
    const pc = pair.pc;
    pair.pc = undefined;
    pair.awaitingAnswer = false; // an answer to the dropped offer is refused from now on
    pair.canTrickle = false;
    pair.local = [];
    pair.remote = [];
    clearTimeout(pair.flushTimer);
    pair.flushTimer = undefined;
    if (!pc) return;
    closeQuietly(pc);
    this.#d.host.connection(pair.peer, undefined);
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

  /** The pair could not connect after its attempts (or no new offer came): closed, and reported failed. */
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
    if (!pair.pc) return;
    closeQuietly(pair.pc);
    this.#d.host.connection(pair.peer, undefined);
  }
}

function closeQuietly(pc: RTCPeerConnection): void {
  try {
    pc.close();
  } catch {
    // closing a connection that failed to start is fine
  }
}

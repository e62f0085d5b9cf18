/**
 * Call quality: what getStats() says of a call (bytes and frames received, the route, the estimated uplink),
 * and how the video we send adapts to the bandwidth. The reading and the decision are pure functions (unit
 * tested); {@link QualityController} is the thin part that polls a connection and applies the decision with
 * `RTCRtpSender.setParameters` (maxBitrate and scaleResolutionDownBy of the first encoding).
 *
 * Why not leave it to the browser's congestion control alone: it lowers the bitrate, but keeps the full
 * resolution, so a poor uplink gives a blurred, stuttering 720p; stepping the resolution down with the bitrate
 * gives a smaller, sharper, smoother picture. Steps go down at once (on a low estimate or loss) and up one at a
 * time after several good samples, so the picture does not flap.
 */

/** The figures of one getStats() report that the call screen and the adaptation use. */
export interface CallStatsSummary {
  readonly audioBytesIn: number;
  readonly videoBytesIn: number;
  readonly audioBytesOut: number;
  readonly videoBytesOut: number;
  /** Video frames decoded so far. */
  readonly framesDecoded: number;
  /** The received picture's size, when known. */
  readonly frameWidth: number | undefined;
  readonly frameHeight: number | undefined;
  /** Energy of the received audio so far (0 when only silence arrived). */
  readonly audioEnergyIn: number;
  /** Seconds of audio received so far (with audioEnergyIn: the level between two samples). */
  readonly audioSecondsIn: number;
  /** The congestion controller's estimate of what can be sent, bits/s. */
  readonly availableOutgoingBitrate: number | undefined;
  readonly roundTripTimeMs: number | undefined;
  /** Video packets we sent and that the peer reports lost (cumulative). */
  readonly videoPacketsSent: number;
  readonly videoPacketsLost: number;
  /** The local candidate type of the selected pair: `host`, `srflx`, `prflx` or `relay`. */
  readonly route: string | undefined;
}

/** A stats entry as the browser gives it (only the fields read here). */
interface StatsEntry {
  readonly type: string;
  readonly id: string;
  readonly kind?: string;
  readonly mediaType?: string;
  readonly bytesReceived?: number;
  readonly bytesSent?: number;
  readonly framesDecoded?: number;
  readonly frameWidth?: number;
  readonly frameHeight?: number;
  readonly totalAudioEnergy?: number;
  readonly totalSamplesDuration?: number;
  readonly packetsSent?: number;
  readonly packetsLost?: number;
  readonly availableOutgoingBitrate?: number;
  readonly currentRoundTripTime?: number;
  readonly state?: string;
  readonly nominated?: boolean;
  readonly selected?: boolean;
  readonly localCandidateId?: string;
  readonly candidateType?: string;
  readonly selectedCandidatePairId?: string;
}

/** Reads the figures of a getStats() report (its entries, e.g. collected with `report.forEach`). */
export function summarizeStats(entries: Iterable<unknown>): CallStatsSummary {
  let audioBytesIn = 0;
  let videoBytesIn = 0;
  let audioBytesOut = 0;
  let videoBytesOut = 0;
  let framesDecoded = 0;
  let frameWidth: number | undefined;
  let frameHeight: number | undefined;
  let audioEnergyIn = 0;
  let audioSecondsIn = 0;
  let videoPacketsSent = 0;
  let videoPacketsLost = 0;
  const candidates = new Map<string, string>();
  const pairs = new Map<string, StatsEntry>();
  let selectedPairId: string | undefined;
  for (const raw of entries) {
    if (typeof raw !== 'object' || raw === null) continue;
    const s = raw as StatsEntry;
    const kind = s.kind ?? s.mediaType;
    switch (s.type) {
      case 'inbound-rtp':
        if (kind === 'audio') {
          audioBytesIn += s.bytesReceived ?? 0;
          audioEnergyIn += s.totalAudioEnergy ?? 0;
          audioSecondsIn += s.totalSamplesDuration ?? 0;
        } else if (kind === 'video') {
          videoBytesIn += s.bytesReceived ?? 0;
          framesDecoded += s.framesDecoded ?? 0;
          frameWidth = s.frameWidth ?? frameWidth;
          frameHeight = s.frameHeight ?? frameHeight;
        }
        break;
      case 'outbound-rtp':
        if (kind === 'audio') audioBytesOut += s.bytesSent ?? 0;
        else if (kind === 'video') {
          videoBytesOut += s.bytesSent ?? 0;
          videoPacketsSent += s.packetsSent ?? 0;
        }
        break;
      case 'remote-inbound-rtp':
        if (kind === 'video') videoPacketsLost += Math.max(0, s.packetsLost ?? 0);
        break;
      case 'local-candidate':
        if (s.candidateType) candidates.set(s.id, s.candidateType);
        break;
      case 'candidate-pair':
        pairs.set(s.id, s);
        if (s.selected) selectedPairId = s.id;
        break;
      case 'transport':
        if (s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
        break;
    }
  }
  let pair = selectedPairId === undefined ? undefined : pairs.get(selectedPairId);
  pair ??= [...pairs.values()].find((p) => p.state === 'succeeded' && p.nominated);
  return {
    audioBytesIn,
    videoBytesIn,
    audioBytesOut,
    videoBytesOut,
    framesDecoded,
    frameWidth,
    frameHeight,
    audioEnergyIn,
    audioSecondsIn,
    availableOutgoingBitrate: pair?.availableOutgoingBitrate,
    roundTripTimeMs: pair?.currentRoundTripTime === undefined ? undefined : Math.round(pair.currentRoundTripTime * 1000),
    videoPacketsSent,
    videoPacketsLost,
    route: pair?.localCandidateId === undefined ? undefined : candidates.get(pair.localCandidateId),
  };
}

/** One step of the ladder of video encodings we send. */
export interface VideoStep {
  /** bits/s */
  readonly maxBitrate: number;
  readonly scaleResolutionDownBy: number;
}

/** From the best (index 0) to the most frugal. A 1280x720 camera gives 720p, 720p, 480p, 360p, 240p, 180p. */
export const VIDEO_LADDER: readonly VideoStep[] = [
  { maxBitrate: 1_500_000, scaleResolutionDownBy: 1 },
  { maxBitrate: 900_000, scaleResolutionDownBy: 1 },
  { maxBitrate: 550_000, scaleResolutionDownBy: 1.5 },
  { maxBitrate: 320_000, scaleResolutionDownBy: 2 },
  { maxBitrate: 160_000, scaleResolutionDownBy: 3 },
  { maxBitrate: 80_000, scaleResolutionDownBy: 4 },
];

/** What the adaptation remembers between samples. */
export interface AdaptState {
  /** Index into {@link VIDEO_LADDER}. */
  readonly step: number;
  /** Consecutive samples that would have allowed a better step. */
  readonly good: number;
  /** Cumulative video packets sent and lost at the previous sample (loss is measured between samples). */
  readonly sent: number;
  readonly lost: number;
}

export const INITIAL_ADAPT_STATE: AdaptState = { step: 1, good: 0, sent: 0, lost: 0 };

/** The share of the estimate left to video: audio (about 40 kbit/s) and headers need the rest. */
const VIDEO_SHARE = 0.85;
/** Loss between two samples above this steps down one more than the estimate alone would. */
const HIGH_LOSS = 0.1;
/** Loss below this counts as a good sample (a step up needs {@link GOOD_SAMPLES} of them in a row). */
const LOW_LOSS = 0.02;
const GOOD_SAMPLES = 3;
/** Fewer packets than this between samples say nothing about loss. */
const MIN_PACKETS = 20;

/**
 * The next step of the video ladder, given the previous state and a new sample: down at once to what the
 * estimate allows (and one more under heavy loss), up one step after {@link GOOD_SAMPLES} good samples.
 */
export function adaptVideo(state: AdaptState, sample: Pick<CallStatsSummary, 'availableOutgoingBitrate' | 'videoPacketsSent' | 'videoPacketsLost'>): AdaptState {
  const sentDelta = sample.videoPacketsSent - state.sent;
  const lostDelta = Math.max(0, sample.videoPacketsLost - state.lost);
  const loss = sentDelta >= MIN_PACKETS ? lostDelta / sentDelta : undefined;
  const last = VIDEO_LADDER.length - 1;
  // The best step the estimate allows (the most frugal one when even that is too much).
  let allowed = 0;
  if (sample.availableOutgoingBitrate !== undefined) {
    const budget = sample.availableOutgoingBitrate * VIDEO_SHARE;
    allowed = VIDEO_LADDER.findIndex((s) => s.maxBitrate <= budget);
    if (allowed === -1) allowed = last;
  }
  if (loss !== undefined && loss > HIGH_LOSS) allowed = Math.min(last, Math.max(allowed, state.step + 1));
  const next = { sent: sample.videoPacketsSent, lost: sample.videoPacketsLost };
  if (allowed > state.step) return { step: allowed, good: 0, ...next };
  const good = allowed < state.step && (loss === undefined || loss < LOW_LOSS) ? state.good + 1 : 0;
  if (good >= GOOD_SAMPLES) return { step: state.step - 1, good: 0, ...next };
  return { step: state.step, good, ...next };
}

/** Sets the first encoding of a video sender to `step` (no-op when the sender has no encodings yet). */
export async function applyVideoStep(sender: RTCRtpSender, step: VideoStep): Promise<boolean> {
  const params = sender.getParameters();
  const first = params.encodings[0];
  if (!first) return false;
  if (first.maxBitrate === step.maxBitrate && first.scaleResolutionDownBy === step.scaleResolutionDownBy) return false;
  first.maxBitrate = step.maxBitrate;
  first.scaleResolutionDownBy = step.scaleResolutionDownBy;
  await sender.setParameters(params);
  return true;
}

/**
 * Polls a connection's stats every `intervalMs`, reports each summary, and steps the video we send up and
 * down the ladder. Stops by itself when the connection closes.
 */
export class QualityController {
  readonly #pc: RTCPeerConnection;
  readonly #onSample: (summary: CallStatsSummary, step: number) => void;
  readonly #onError: (error: unknown) => void;
  #state: AdaptState = INITIAL_ADAPT_STATE;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(pc: RTCPeerConnection, options: { intervalMs?: number; onSample: (summary: CallStatsSummary, step: number) => void; onError: (error: unknown) => void }) {
    this.#pc = pc;
    this.#onSample = options.onSample;
    this.#onError = options.onError;
    this.#timer = setInterval(() => void this.#tick(), options.intervalMs ?? 1_000);
  }

  /** The current step of {@link VIDEO_LADDER}. */
  get step(): number {
    return this.#state.step;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #closed(): boolean {
    return this.#pc.connectionState === 'closed';
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#timer === undefined) return;
    if (this.#closed()) return this.stop();
    this.#busy = true;
    try {
      const report = await this.#pc.getStats();
      const entries: unknown[] = [];
      report.forEach((s: unknown) => entries.push(s));
      const summary = summarizeStats(entries);
      this.#state = adaptVideo(this.#state, summary);
      const video = this.#pc.getSenders().filter((s) => s.track?.kind === 'video');
      const step = VIDEO_LADDER[this.#state.step] as VideoStep;
      // Applied on every tick, not only on a change: a sender's encodings exist only once negotiated.
      for (const sender of video) await applyVideoStep(sender, step);
      if (this.#timer !== undefined) this.#onSample(summary, this.#state.step);
    } catch (err) {
      if (!this.#closed()) this.#onError(err);
    } finally {
      this.#busy = false;
    }
  }
}

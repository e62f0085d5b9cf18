/**
 * Who speaks in a group call: audio levels of the participants over time in, the active speaker (shown large
 * in speaker view) and who is speaking now (a ring on their tile) out. Pure: the calls model feeds it the
 * level of each participant's received audio, measured from getStats() (`totalAudioEnergy` and
 * `totalSamplesDuration` of the inbound audio between two samples; see {@link levelBetween}), once a second.
 *
 * So that the big picture does not flicker: a participant counts as speaking from a sample above the
 * threshold until {@link SpeakerTuning.speakingHoldMs} after their last loud sample (speech has pauses); the
 * active speaker changes only to someone whose loud samples span {@link SpeakerTuning.switchAfterMs}, and
 * only once the current one has stopped speaking and had the stage for {@link SpeakerTuning.minSpeakerMs}.
 * A muted participant (or one whose audio is silent, as a muted microphone sends) never becomes the speaker.
 */

export interface SpeakerTuning {
  /** RMS level (0..1, as WebRTC's audioLevel) above which a sample counts as speech. */
  readonly threshold: number;
  /** How long someone still counts as speaking after their last loud sample. */
  readonly speakingHoldMs: number;
  /** How long someone must have been speaking before they take the stage from another. */
  readonly switchAfterMs: number;
  /** How long the active speaker keeps the stage at least. */
  readonly minSpeakerMs: number;
}

/** About -40 dBFS: speech, not room noise (levels are measured once a second, so holds are in seconds). */
export const SPEAKER_TUNING: SpeakerTuning = { threshold: 0.01, speakingHoldMs: 1_500, switchAfterMs: 900, minSpeakerMs: 2_000 };

export interface SpeakerState {
  /** The active speaker (undefined until someone spoke). */
  readonly speaker: string | undefined;
  /** Who is speaking now, in no particular order. */
  readonly speaking: readonly string[];
}

interface Track {
  level: number;
  muted: boolean;
  /** The first loud sample of the current run of speech. */
  loudSince: number | undefined;
  lastLoudAt: number | undefined;
}

/** Cumulative audio figures of one inbound audio stream (getStats() `inbound-rtp`, kind audio). */
export interface AudioTotals {
  /** Σ (level² × duration), as `totalAudioEnergy`. */
  readonly energy: number;
  /** Seconds of audio received, as `totalSamplesDuration`. */
  readonly duration: number;
}

/** The RMS level (0..1) of the audio received between two readings of its totals; 0 without new audio. */
export function levelBetween(before: AudioTotals | undefined, after: AudioTotals): number {
  const dt = after.duration - (before?.duration ?? 0);
  const de = after.energy - (before?.energy ?? 0);
  if (!(dt > 0) || !(de > 0)) return 0;
  return Math.min(1, Math.sqrt(de / dt));
}

export class SpeakerDetector {
  readonly #tuning: SpeakerTuning;
  readonly #tracks = new Map<string, Track>();
  #speaker: string | undefined;
  #speakerSince = 0;

  constructor(tuning: SpeakerTuning = SPEAKER_TUNING) {
    this.#tuning = tuning;
  }

  /** A new level of participant `id` at time `now` (ms); `muted` when they are known to be muted. */
  observe(now: number, id: string, level: number, muted = false): void {
    let t = this.#tracks.get(id);
    if (!t) {
      t = { level: 0, muted: false, loudSince: undefined, lastLoudAt: undefined };
      this.#tracks.set(id, t);
    }
    t.level = level;
    t.muted = muted;
    if (muted) {
      t.loudSince = undefined;
      t.lastLoudAt = undefined;
    } else if (level >= this.#tuning.threshold) {
      if (t.loudSince === undefined || t.lastLoudAt === undefined || now - t.lastLoudAt > this.#tuning.speakingHoldMs) t.loudSince = now;
      t.lastLoudAt = now;
    } else if (t.lastLoudAt !== undefined && now - t.lastLoudAt > this.#tuning.speakingHoldMs) {
      t.loudSince = undefined;
    }
  }

  /** Forgets everyone not in `ids` (they left the call). */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.#tracks.keys()) if (!keep.has(id)) this.#tracks.delete(id);
    if (this.#speaker !== undefined && !keep.has(this.#speaker)) this.#speaker = undefined;
  }

  /** The active speaker and who speaks, at `now`. */
  state(now: number): SpeakerState {
    const speaking: string[] = [];
    for (const [id, t] of this.#tracks) if (this.#isSpeaking(t, now)) speaking.push(id);
    const current = this.#speaker === undefined ? undefined : this.#tracks.get(this.#speaker);
    // The best contender: the loudest of those speaking long enough (anyone speaking while the stage is empty).
    const ready = (id: string): boolean => {
      const t = this.#tracks.get(id) as Track;
      // The span of loud samples, not the time since the first: one loud sample (a cough) is no speech.
      return current === undefined || (t.loudSince !== undefined && t.lastLoudAt !== undefined && t.lastLoudAt - t.loudSince >= this.#tuning.switchAfterMs);
    };
    const contenders = speaking.filter((id) => id !== this.#speaker && ready(id));
    contenders.sort((a, b) => (this.#tracks.get(b) as Track).level - (this.#tracks.get(a) as Track).level);
    const best = contenders[0];
    if (best !== undefined) {
      const stageFree = current === undefined || current.muted || (!this.#isSpeaking(current, now) && now - this.#speakerSince >= this.#tuning.minSpeakerMs);
      if (stageFree) {
        this.#speaker = best;
        this.#speakerSince = now;
      }
    }
    return { speaker: this.#speaker, speaking };
  }

  #isSpeaking(t: Track, now: number): boolean {
    return !t.muted && t.lastLoudAt !== undefined && now - t.lastLoudAt <= this.#tuning.speakingHoldMs;
  }
}

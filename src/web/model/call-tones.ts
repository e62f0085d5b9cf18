/**
 * The tones of the call screen, generated with Web Audio (no sound file to download): the ringtone of an
 * incoming call (two short rising chimes, twice, then a pause) and the ringback tone a caller hears while the
 * other side rings (425 Hz, one second on, four off, as European networks play it). Loaded with the first
 * call that rings (a dynamic import of the calls model), so the first page load does not carry it.
 */
import type { CallTone } from './call-audio.js';

interface Beep {
  /** Seconds from the start of the cycle. */
  readonly at: number;
  readonly length: number;
  readonly hz: number;
}

interface Pattern {
  readonly beeps: readonly Beep[];
  /** Seconds between two cycles. */
  readonly period: number;
  readonly gain: number;
}

const PATTERNS: Record<CallTone, Pattern> = {
  ring: {
    beeps: [
      { at: 0, length: 0.14, hz: 784 },
      { at: 0.16, length: 0.22, hz: 1047 },
      { at: 0.6, length: 0.14, hz: 784 },
      { at: 0.76, length: 0.22, hz: 1047 },
    ],
    period: 2.6,
    gain: 0.22,
  },
  ringback: { beeps: [{ at: 0, length: 1, hz: 425 }], period: 5, gain: 0.12 },
};

/** A soft edge (seconds) on each beep, so that it does not click. */
const RAMP = 0.015;

/** Plays one tone at a time, in its own AudioContext (closed when the tone stops). */
export class TonePlayer {
  readonly #onChange: () => void;
  #ctx: AudioContext | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #playing: CallTone | undefined;
  /** Counts play/stop calls, so that a play that finishes starting after a stop does nothing. */
  #seq = 0;

  constructor(onChange: () => void) {
    this.#onChange = onChange;
  }

  /** The tone being heard (its AudioContext runs), if any. */
  get playing(): CallTone | undefined {
    return this.#playing;
  }

  /** Plays `tone` until {@link stop} (or another play), on the audio output `sinkId` ('' for the default). */
  async play(tone: CallTone, sinkId: string): Promise<void> {
    this.stop();
    const seq = ++this.#seq;
    const ctx = new AudioContext();
    this.#ctx = ctx;
    const withSink = ctx as AudioContext & { setSinkId?: (id: string) => Promise<void> };
    if (sinkId !== '' && typeof withSink.setSinkId === 'function') await withSink.setSinkId(sinkId).catch(() => undefined);
    // A page the user never touched may not start audio by itself (autoplay policy): the ring then stays silent.
    await ctx.resume();
    if (seq !== this.#seq || ctx.state !== 'running') return;
    const pattern = PATTERNS[tone];
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const osc = ctx.createOscillator();
    osc.type = 'sine';
    osc.connect(gain);
    osc.start();
    let next = ctx.currentTime + 0.05;
    const schedule = (): void => {
      // Schedules the cycles that start within the next two seconds (a timer in a hidden tab may run late).
      while (next < ctx.currentTime + 2) {
        for (const b of pattern.beeps) {
          const t = next + b.at;
          osc.frequency.setValueAtTime(b.hz, t);
          gain.gain.setValueAtTime(0, t);
          gain.gain.linearRampToValueAtTime(pattern.gain, t + RAMP);
          gain.gain.setValueAtTime(pattern.gain, t + b.length - RAMP);
          gain.gain.linearRampToValueAtTime(0, t + b.length);
        }
        next += pattern.period;
      }
    };
    schedule();
    this.#timer = setInterval(schedule, 500);
    this.#playing = tone;
    this.#onChange();
  }

  stop(): void {
    this.#seq++;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const ctx = this.#ctx;
    this.#ctx = undefined;
    if (ctx) ctx.close().catch(() => undefined);
    if (this.#playing !== undefined) {
      this.#playing = undefined;
      this.#onChange();
    }
  }
}

/**
 * Audio for headless calls in Node (bots, tests, `parley call`): a file played into a call and what the call
 * receives recorded to a file, through `@roamhq/wrtc`'s non-standard RTCAudioSource / RTCAudioSink (PCM in
 * 10 ms frames) and Debian's ffmpeg (decode any audio file to 48 kHz mono s16le; encode the received PCM to
 * Opus in Ogg once the call is over).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import wrtc from '@roamhq/wrtc';
import { FFMPEG_COMMON_ARGS, ffmpegFileArg, runTool } from '../media/tools.js';

/** The rate files are decoded to and played at. */
export const PLAY_SAMPLE_RATE = 48_000;
/** Samples of one 10 ms frame at {@link PLAY_SAMPLE_RATE}. */
const FRAME_SAMPLES = PLAY_SAMPLE_RATE / 100;
/** The longest file played: 30 minutes of PCM (about 173 MB) at most. */
export const MAX_PLAY_SECONDS = 30 * 60;

let guarded = false;

/**
 * `@roamhq/wrtc` 0.10 crashes (SIGSEGV) in its native teardown when a process that created an RTCAudioSource
 * ends by running out of work. Once such a source or sink exists, the process therefore leaves from its
 * `exit` event (after every other listener and all output), keeping the exit code, without that teardown.
 */
function exitBeforeNativeTeardown(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', (code) => process.exit(code));
}

/** Decodes an audio file to 48 kHz mono signed 16-bit PCM (`CLIENT_BAD_MEDIA_INPUT` when ffmpeg cannot). */
export async function decodeToPcm(path: string, options: { signal?: AbortSignal | undefined } = {}): Promise<Int16Array> {
  const { stdout } = await runTool(
    'ffmpeg',
    [...FFMPEG_COMMON_ARGS, '-i', ffmpegFileArg(path), '-vn', '-ac', '1', '-ar', String(PLAY_SAMPLE_RATE), '-f', 's16le', '-acodec', 'pcm_s16le', 'pipe:1'],
    { signal: options.signal, maxStdoutBytes: MAX_PLAY_SECONDS * PLAY_SAMPLE_RATE * 2 },
  );
  // (ffmpeg's own failures are typed by runTool: CLIENT_BAD_MEDIA_INPUT, CLIENT_MEDIA_TOOL_MISSING.)
  if (stdout.length < 2) throw new RangeError(`${path} has no audio`);
  const samples = new Int16Array(Math.floor(stdout.length / 2));
  for (let i = 0; i < samples.length; i++) samples[i] = stdout.readInt16LE(i * 2);
  return samples;
}

/**
 * Plays PCM into a call: a track to add to it, fed 10 ms frames in real time (a timer catches up on the
 * frames that are due, so a loaded machine does not slow the audio down). Loops when asked; silence after
 * the end otherwise (a track that stops sending looks like a broken microphone to the peer).
 */
export class PcmPlayer {
  readonly #source = new wrtc.nonstandard.RTCAudioSource();
  readonly track: MediaStreamTrack;
  readonly #pcm: Int16Array;
  readonly #loop: boolean;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sent = 0;
  #started = 0;

  constructor(pcm: Int16Array, options: { loop?: boolean } = {}) {
    exitBeforeNativeTeardown();
    this.#pcm = pcm;
    this.#loop = options.loop ?? false;
    this.track = this.#source.createTrack();
  }

  /** Frames sent so far. */
  get framesSent(): number {
    return this.#sent;
  }

  /** Starts feeding frames (idempotent). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#started = performance.now();
    this.#sent = 0;
    this.#timer = setInterval(() => this.#tick(), 10);
  }

  #tick(): void {
    const due = Math.floor((performance.now() - this.#started) / 10);
    // At most a second of catching up at once.
    for (let n = 0; this.#sent < due && n < 100; n++) {
      const frame = new Int16Array(FRAME_SAMPLES);
      const total = this.#pcm.length;
      const start = this.#sent * FRAME_SAMPLES;
      for (let i = 0; i < FRAME_SAMPLES && total > 0; i++) {
        const j = this.#loop ? (start + i) % total : start + i;
        if (j < total) frame[i] = this.#pcm[j] as number;
      }
      this.#source.onData({ samples: frame, sampleRate: PLAY_SAMPLE_RATE });
      this.#sent++;
    }
  }

  /** Stops feeding and ends the track. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.track.stop();
  }
}

/** What a recording received. */
export interface RecordingStats {
  /** 10 ms frames received. */
  readonly frames: number;
  /** The rate of the recording (every frame is brought to it). */
  readonly sampleRate: number;
  /** The largest absolute sample (0: silence only). */
  readonly peak: number;
  /** Root mean square of all samples (0 to 32767). */
  readonly rms: number;
  /** The file written, or undefined when nothing was received. */
  readonly path: string | undefined;
}

/**
 * Records a received audio track to an Opus file in Ogg: the PCM goes to a temporary file next to it while
 * the call runs (taking the first frame's rate and channel count), and ffmpeg encodes it when the recording
 * stops (nothing but a file write happens on the audio path during the call).
 */
export class TrackRecorder {
  readonly #sink: InstanceType<typeof wrtc.nonstandard.RTCAudioSink>;
  readonly #path: string;
  readonly #raw: string;
  #out: WriteStream | undefined;
  #frames = 0;
  #peak = 0;
  #sumSquares = 0;
  #samples = 0;
  #stopped = false;
  #result: Promise<RecordingStats> | undefined;

  constructor(track: MediaStreamTrack, path: string) {
    exitBeforeNativeTeardown();
    this.#path = path;
    this.#raw = `${path}.${process.pid}.pcm.tmp`;
    this.#sink = new wrtc.nonstandard.RTCAudioSink(track);
    this.#sink.ondata = (data: { samples: Int16Array; sampleRate: number; channelCount?: number }) => this.#onData(data);
  }

  #onData(data: { samples: Int16Array; sampleRate: number; channelCount?: number }): void {
    if (this.#stopped) return;
    // The sink's rate changes as the decoder settles (16 kHz of silence first, then 48 kHz Opus): every
    // frame is brought to 48 kHz mono, so the file has one format.
    const s = toPlayRate(data.samples, data.sampleRate, data.channelCount ?? 1);
    if (s === undefined) return;
    this.#out ??= createWriteStream(this.#raw);
    this.#frames++;
    for (let i = 0; i < s.length; i++) {
      const v = s[i] as number;
      const a = v < 0 ? -v : v;
      if (a > this.#peak) this.#peak = a;
      this.#sumSquares += v * v;
    }
    this.#samples += s.length;
    this.#out.write(Buffer.from(s.buffer, s.byteOffset, s.byteLength));
  }

  /** Frames received so far. */
  get frames(): number {
    return this.#frames;
  }

  /** Stops recording and writes the file (once; later calls get the same result). */
  stop(): Promise<RecordingStats> {
    this.#result ??= this.#finish();
    return this.#result;
  }

  async #finish(): Promise<RecordingStats> {
    this.#stopped = true;
    this.#sink.stop();
    const stats = { frames: this.#frames, sampleRate: PLAY_SAMPLE_RATE, peak: this.#peak, rms: this.#samples === 0 ? 0 : Math.sqrt(this.#sumSquares / this.#samples) };
    const out = this.#out;
    if (!out) return { ...stats, path: undefined };
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    try {
      await runTool('ffmpeg', [
        ...FFMPEG_COMMON_ARGS, '-y', '-f', 's16le', '-ar', String(PLAY_SAMPLE_RATE), '-ac', '1', '-i', ffmpegFileArg(this.#raw),
        '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', ffmpegFileArg(this.#path),
      ]);
    } finally {
      await rm(this.#raw, { force: true });
    }
    return { ...stats, path: this.#path };
  }
}

/**
 * `samples` (interleaved, `channels` channels, `rate` Hz) as 48 kHz mono: channels averaged, then linear
 * interpolation. Undefined for a frame that cannot be read (no samples, a rate out of 8 to 192 kHz).
 */
function toPlayRate(samples: Int16Array, rate: number, channels: number): Int16Array | undefined {
  if (!Number.isInteger(channels) || channels < 1 || channels > 8 || !(rate >= 8000 && rate <= 192_000)) return undefined;
  const frames = Math.floor(samples.length / channels);
  if (frames === 0) return undefined;
  const mono = new Float64Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += samples[i * channels + c] as number;
    mono[i] = sum / channels;
  }
  if (rate === PLAY_SAMPLE_RATE) return Int16Array.from(mono, (v) => Math.round(v));
  const n = Math.round((frames * PLAY_SAMPLE_RATE) / rate);
  const out = new Int16Array(n);
  for (let j = 0; j < n; j++) {
    const x = (j * rate) / PLAY_SAMPLE_RATE;
    const i = Math.floor(x);
    const a = mono[Math.min(i, frames - 1)] as number;
    const b = mono[Math.min(i + 1, frames - 1)] as number;
    out[j] = Math.round(a + (b - a) * (x - i));
  }
  return out;
}

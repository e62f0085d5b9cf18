/** Voice notes: recorded with MediaRecorder as Opus (in WebM or Ogg, whichever the browser records). */
import type { AttachmentInput } from '../../client/index.js';
import { bytesSource } from './prepare.js';

const TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4;codecs=opus'];

export interface Recording {
  /** Stops and resolves with the note to send. */
  stop(): Promise<AttachmentInput>;
  /** Stops and throws the recording away. */
  cancel(): void;
  readonly startedAt: number;
}

export function canRecord(): boolean {
  return typeof MediaRecorder === 'function' && !!navigator.mediaDevices?.getUserMedia && TYPES.some((t) => MediaRecorder.isTypeSupported(t));
}

export async function startRecording(): Promise<Recording> {
  const mimeType = TYPES.find((t) => MediaRecorder.isTypeSupported(t));
  if (!mimeType) throw new Error('this browser cannot record Opus audio');
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  } catch {
    throw new Error('the microphone is not available (check the browser’s permission)');
  }
  const recorder = new MediaRecorder(stream, { mimeType, audioBitsPerSecond: 32_000 });
  const chunks: Blob[] = [];
  recorder.ondataavailable = (e) => chunks.push(e.data);
  const stopped = new Promise<void>((resolve) => (recorder.onstop = () => resolve()));
  const startedAt = Date.now();
  recorder.start(250);
  const release = (): void => stream.getTracks().forEach((t) => t.stop());
  return {
    startedAt,
    async stop() {
      recorder.stop();
      await stopped;
      release();
      const bytes = new Uint8Array(await new Blob(chunks, { type: mimeType }).arrayBuffer());
      return { source: bytesSource(bytes), contentType: mimeType.split(';')[0] as string, type: 'audio', voiceNote: true, durationMs: Date.now() - startedAt, fileName: 'voice-note' };
    },
    cancel() {
      if (recorder.state !== 'inactive') recorder.stop();
      release();
    },
  };
}

/**
 * The sound side of calls, as pure choices (unit tested): which tone plays for a call's state (the ringtone
 * of an incoming call, the ringback tone a caller hears while the other side rings), which audio output the
 * call plays on, and the call preferences kept in the profile.
 */

/** A tone of the call screen: `ring` (incoming call) or `ringback` (our call rings at the other end). */
export type CallTone = 'ring' | 'ringback';

/** What {@link toneFor} reads of the call on screen. */
export interface ToneInput {
  readonly direction: 'incoming' | 'outgoing';
  readonly state: 'dialing' | 'ringing' | 'connecting' | 'connected' | 'ended';
  /** A group call (an outgoing one has no ringing state of its own). */
  readonly group: boolean;
  /** A group call started here still rings the others' devices, and nobody joined yet. */
  readonly ringingOthers?: boolean;
}

/**
 * The tone for the call on screen: the ringtone while an incoming call rings here (unless turned off), the
 * ringback tone while a 1:1 call we placed rings at the other end, or while a group call we started rings the
 * others and nobody joined yet; nothing otherwise (answered, declined, missed, answered on another device,
 * hung up, ended).
 */
export function toneFor(view: ToneInput | undefined, ringtoneOn: boolean): CallTone | undefined {
  if (!view || view.state === 'ended') return undefined;
  if (view.group && view.direction === 'outgoing' && view.ringingOthers === true) return 'ringback';
  if (view.state !== 'ringing') return undefined;
  if (view.direction === 'incoming') return ringtoneOn ? 'ring' : undefined;
  return view.group ? undefined : 'ringback';
}

/** The call preferences of a profile (kept in its settings). */
export interface CallPrefs {
  /** Incoming calls ring aloud (default on). */
  readonly ringtone: boolean;
  /** The chosen audio output's deviceId ('' or absent: the system's default). */
  readonly audioOutput: string;
  /** Group calls: the active speaker large, or every participant the same size. */
  readonly layout: 'speaker' | 'grid';
}

export const DEFAULT_CALL_PREFS: CallPrefs = { ringtone: true, audioOutput: '', layout: 'grid' };

/** Reads stored preferences (anything unreadable falls back to the defaults, field by field). */
export function readCallPrefs(stored: unknown): CallPrefs {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return DEFAULT_CALL_PREFS;
  const s = stored as Record<string, unknown>;
  return {
    ringtone: typeof s.ringtone === 'boolean' ? s.ringtone : DEFAULT_CALL_PREFS.ringtone,
    audioOutput: typeof s.audioOutput === 'string' ? s.audioOutput : DEFAULT_CALL_PREFS.audioOutput,
    layout: s.layout === 'speaker' || s.layout === 'grid' ? s.layout : DEFAULT_CALL_PREFS.layout,
  };
}

/** An audio output as enumerateDevices() lists it (only the fields read here). */
export interface OutputDevice {
  readonly deviceId: string;
  readonly label: string;
  readonly kind: string;
}

/** An output the call screen offers: its id ('' for the system default) and a label. */
export interface OutputChoice {
  readonly id: string;
  readonly label: string;
}

/**
 * The outputs to offer: the system default first, then every other `audiooutput` device (labels are empty
 * until a microphone was allowed: then "Speaker 2"...). Chromium lists the default twice (as `default` and as
 * the device itself); the `default` entry becomes the first choice.
 */
export function outputChoices(devices: readonly OutputDevice[]): OutputChoice[] {
  const outs = devices.filter((d) => d.kind === 'audiooutput');
  const def = outs.find((d) => d.deviceId === 'default');
  const choices: OutputChoice[] = [{ id: '', label: def?.label ? `System default (${def.label.replace(/^Default - /, '')})` : 'System default' }];
  let n = 1;
  for (const d of outs) {
    if (d.deviceId === 'default' || d.deviceId === '' || d.deviceId === 'communications') continue;
    n++;
    choices.push({ id: d.deviceId, label: d.label || `Speaker ${n}` });
  }
  return choices;
}

/** The output to play on: the saved one while it is plugged in, else the system default (''). */
export function pickAudioOutput(saved: string, devices: readonly OutputDevice[]): string {
  if (saved === '') return '';
  return devices.some((d) => d.kind === 'audiooutput' && d.deviceId === saved) ? saved : '';
}

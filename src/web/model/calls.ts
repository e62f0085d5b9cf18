/**
 * Calls in the web app: turns the session Client's `call` events into what the call screen shows (ringing,
 * calling, in a call, ended), owns the local camera and microphone, and implements the buttons (answer,
 * decline, hang up, mute, camera on/off, switch camera). Every device of the account rings (the SDK sends the
 * offer to all of them; the first to answer takes the call, the others stop). The chat's record of each call
 * (answered, missed, declined...) is stored by the SDK and shown by the conversation.
 *
 * Camera off does not renegotiate: the video sender keeps its m-line and sends nothing
 * (`replaceLocalTrack('video', null)` of the SDK's Call or GroupCall; a group call also gives participants who
 * join later the current track), and the camera is released (its light goes off); camera on opens it again
 * and puts the new track on the same sender. A video call answered "with audio" starts that way. Voice calls carry no
 * video m-line, so they have no camera button.
 *
 * Sound: an incoming call rings (unless the ringtone is turned off) and a call we place plays the ringback
 * tone while it rings at the other end (./call-tones.ts, loaded when first needed); both stop with the ringing
 * state. The remote audio plays on the chosen audio output (`setSinkId`), remembered in the profile's
 * settings with the ringtone choice and the group-call layout. In group calls the active speaker is found
 * from each connection's received audio level (./active-speaker.ts).
 */
import { DEFAULT_RING_TIMEOUT_MS, isGroupId, participantKey, type AccountId, type Call, type CallState, type Client, type ConversationId, type GroupCall, type GroupCallParticipant, type GroupId } from '../../client/index.js';
import { errorInWords } from './errors.js';
import { QualityController, type CallStatsSummary } from './call-quality.js';
import { SpeakerDetector, levelBetween, type AudioTotals } from './active-speaker.js';
import { DEFAULT_CALL_PREFS, outputChoices, pickAudioOutput, readCallPrefs, toneFor, type CallPrefs, type CallTone, type OutputChoice } from './call-audio.js';
import type { Profile } from './profile.js';
import type { TonePlayer } from './call-tones.js';

/** What the calls model needs of the session (the Session class satisfies it). */
export interface CallsHost {
  readonly client: Client;
  title(id: ConversationId): string;
  nameOf(id: AccountId): string;
  toast(text: string, error?: boolean): void;
  /** Where the call preferences are kept (without it: defaults, not remembered). */
  readonly profile?: Pick<Profile, 'store'>;
}

/** One other device in a group call: a tile of the grid. */
export interface CallTile {
  /** `<account>.<device>` */
  readonly key: string;
  readonly name: string;
  readonly state: GroupCallParticipant['state'];
  readonly stream: MediaStream | undefined;
  readonly stats: CallStatsSummary | undefined;
  /** The level of their audio over the last second (0..1), once measured. */
  readonly level: number | undefined;
  /** They are speaking now (a ring on the tile). */
  readonly speaking: boolean;
}

/** The call the screen shows. A new object whenever something in it changes. */
export interface CallView {
  /** The 1:1 call (undefined for a group call, and while the devices open). */
  readonly call: Call | undefined;
  /** The group call (group chats). */
  readonly groupCall: GroupCall | undefined;
  /** The 1:1 peer, or the group. */
  readonly chat: ConversationId;
  /** The other devices of a group call (empty for 1:1 calls). */
  readonly tiles: readonly CallTile[];
  /** Group calls: the key of the active speaker (see ./active-speaker.ts), once someone spoke. */
  readonly speaker: string | undefined;
  /** A group call started here rings the others' devices, and nobody joined yet (the ringback tone plays). */
  readonly ringingOthers: boolean;
  readonly title: string;
  /** The call has video (a video call; the camera may still be off). */
  readonly video: boolean;
  readonly direction: 'incoming' | 'outgoing';
  /** The SDK's state; `dialing` also while the camera and microphone are being opened. */
  readonly state: CallState;
  readonly local: MediaStream | undefined;
  readonly remote: MediaStream | undefined;
  /** The peer's video is arriving (false while their camera is off). */
  readonly remoteVideo: boolean;
  readonly muted: boolean;
  readonly cameraOn: boolean;
  /** More than one camera: the switch button is offered. */
  readonly canSwitchCamera: boolean;
  readonly connectedAt: number | undefined;
  /** The latest getStats() figures (every second while connected). */
  readonly stats: CallStatsSummary | undefined;
  /** The step of the video ladder we send at (0 = best; see VIDEO_LADDER). */
  readonly videoStep: number | undefined;
  /** Once ended: why, in words (shown for a moment). */
  readonly endedText: string | undefined;
}

type Listener = () => void;

/** How long the ended screen stays. */
const ENDED_SCREEN_MS = 2_500;
const RELAY_KEY = 'parley.calls.alwaysRelay';
/** The profile setting that holds {@link CallPrefs}. */
const PREFS_KEY = 'web.callPrefs';
const CAMERA: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export class CallsModel {
  readonly #host: CallsHost;
  readonly #listeners = new Set<Listener>();
  #view: CallView | undefined;
  #local: MediaStream | undefined;
  /** The 1:1 call was placed or answered here: its tracks can be replaced (Call.replaceLocalTrack). */
  #sending = false;
  #cameraId: string | undefined;
  #quality: QualityController | undefined;
  /** Group calls: one controller per participant's connection (each adapts the video sent on it). */
  readonly #tileQuality = new Map<string, { readonly pc: RTCPeerConnection; readonly controller: QualityController }>();
  readonly #tileStats = new Map<string, CallStatsSummary>();
  readonly #tileStreams = new Map<string, MediaStream>();
  readonly #audioTotals = new Map<string, AudioTotals>();
  readonly #levels = new Map<string, number>();
  #speakers = new SpeakerDetector();
  #prefs: CallPrefs = DEFAULT_CALL_PREFS;
  #devices: MediaDeviceInfo[] = [];
  #tones: TonePlayer | undefined;
  #toneWanted: CallTone | undefined;
  #offs: Array<() => void> = [];
  /** Listeners of the call on screen (its events), dropped with it; #offs holds the model's own. */
  #callOffs: Array<() => void> = [];
  #clearTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Counts the calls shown (see #ended). */
  #seq = 0;

  constructor(host: CallsHost) {
    this.#host = host;
    this.#offs.push(
      host.client.on('call', (e) => this.#onCall(e.type, e.call)),
      host.client.on('groupCall', (e) => this.#onGroupCall(e.type, e.call)),
    );
    this.#loadPrefs().catch((err: unknown) => console.warn('parley: call settings', err));
    const devices = navigator.mediaDevices;
    if (devices?.addEventListener) {
      const changed = (): void => void this.refreshOutputs();
      devices.addEventListener('devicechange', changed);
      this.#offs.push(() => devices.removeEventListener('devicechange', changed));
    }
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The call on screen, if any. */
  get current(): CallView | undefined {
    return this.#view;
  }

  /** Whether a call is going on (ringing, calling or connected): no second one can start. */
  get busy(): boolean {
    return this.#view !== undefined && this.#view.state !== 'ended';
  }

  /** Calls go through the TURN relay only (the peer never sees this device's addresses). Kept in this browser. */
  get alwaysRelay(): boolean {
    try {
      return localStorage.getItem(RELAY_KEY) === '1';
    } catch {
      return false;
    }
  }

  set alwaysRelay(on: boolean) {
    if (on) localStorage.setItem(RELAY_KEY, '1');
    else localStorage.removeItem(RELAY_KEY);
    this.#notify();
  }

  /** Calls the contact of a 1:1 chat (every device of theirs rings). */
  async place(peer: AccountId, media: 'audio' | 'video'): Promise<void> {
    if (this.busy) {
      this.#host.toast('You are already in a call.', true);
      return;
    }
    this.#reset();
    this.#view = this.#fresh({ chat: peer, title: this.#host.title(peer), video: media === 'video', direction: 'outgoing', state: 'dialing' });
    this.#notify();
    try {
      const stream = await this.#open(media === 'video', true);
      if (this.#view?.chat !== peer || this.#view.call !== undefined || this.#view.state === 'ended') {
        stopAll(stream);
        return; // hung up while the devices were opening
      }
      this.#setLocal(stream);
      const call = await this.#host.client.placeCall(peer, { tracks: stream.getTracks(), streams: [stream], media, relayOnly: this.alwaysRelay || undefined });
      this.#adopt(call);
      this.#sending = true;
      if (!this.busy) void call.hangup(); // hung up meanwhile
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Answers the ringing call (a video call: with the camera on, or off when `video` is false). */
  async answer(video: boolean): Promise<void> {
    const group = this.#view?.groupCall;
    if (group) return this.#joinGroup(group, video);
    const call = this.#view?.call;
    if (!call || call.direction !== 'incoming' || call.state !== 'ringing') return;
    const withVideo = call.media === 'video';
    try {
      // Answered "with audio", the SDK keeps a video m-line that can send: the camera can come on later.
      const stream = await this.#open(withVideo && video, true);
      this.#setLocal(stream);
      this.#update({ state: 'connecting', cameraOn: withVideo && video });
      await call.answer({ tracks: stream.getTracks(), streams: [stream], relayOnly: this.alwaysRelay || undefined });
      this.#sending = true;
    } catch (err) {
      this.#fail(err);
    }
  }

  decline(): void {
    const call = this.#view?.call ?? this.#view?.groupCall;
    if (!call) return;
    call.decline().catch((err: unknown) => this.#host.toast(errorInWords(err), true));
  }

  hangup(): void {
    const view = this.#view;
    if (!view) return;
    const call = view.call ?? view.groupCall;
    if (!call) {
      // Still opening the devices: nothing was sent yet.
      this.#ended('Call cancelled');
      return;
    }
    call.hangup().catch((err: unknown) => this.#host.toast(errorInWords(err), true));
  }

  toggleMute(): void {
    const view = this.#view;
    if (!view || !this.#local) return;
    const muted = !view.muted;
    for (const t of this.#local.getAudioTracks()) t.enabled = !muted;
    this.#update({ muted });
  }

  async toggleCamera(): Promise<void> {
    const view = this.#view;
    if (!view?.video) return;
    try {
      if (view.cameraOn) await this.#stopCamera();
      else await this.#startCamera(this.#cameraId);
    } catch (err) {
      this.#host.toast(`The camera could not be turned on: ${errorInWords(err)}`, true);
    }
  }

  /** The next camera (front / back on a phone), without interrupting the call. */
  async switchCamera(): Promise<void> {
    const view = this.#view;
    if (!view?.video) return;
    try {
      const cams = await cameras();
      if (cams.length < 2) return;
      const at = cams.findIndex((c) => c.deviceId === this.#cameraId);
      const next = cams[(at + 1) % cams.length] as MediaDeviceInfo;
      await this.#startCamera(next.deviceId);
    } catch (err) {
      this.#host.toast(`Could not switch the camera: ${errorInWords(err)}`, true);
    }
  }

  /** Starts a call in a group (every other member's devices ring), or joins the one running there. */
  async startGroup(groupId: GroupId, media: 'audio' | 'video'): Promise<void> {
    if (this.busy) {
      this.#host.toast('You are already in a call.', true);
      return;
    }
    const running = this.#host.client.groupCall(groupId);
    this.#reset();
    this.#view = this.#fresh({ chat: groupId, title: this.#host.title(groupId), video: (running?.media ?? media) === 'video', direction: 'outgoing', state: 'dialing' });
    this.#notify();
    try {
      const stream = await this.#open(this.#view.video, true);
      if (!this.busy) {
        stopAll(stream);
        return;
      }
      this.#setLocal(stream);
      const options = { tracks: stream.getTracks(), streams: [stream], relayOnly: this.alwaysRelay || undefined };
      const joining = running !== undefined && running.state !== 'ended';
      const call = joining ? running : await this.#host.client.startGroupCall(groupId, { ...options, media });
      // Started here: the others' devices ring, and we hear the ringback tone until someone joins.
      if (!joining) this.#ringOthers();
      this.#adoptGroup(call);
      if (call.state !== 'joined') await call.join(options);
      this.#groupChanged(call);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The group's call that runs without this device (to offer "Join"). */
  runningGroupCall(groupId: GroupId): GroupCall | undefined {
    const call = this.#host.client.groupCall(groupId);
    return call && call.state !== 'ended' && call.state !== 'joined' ? call : undefined;
  }

  async #joinGroup(call: GroupCall, video: boolean): Promise<void> {
    try {
      const stream = await this.#open(call.media === 'video' && video, true);
      this.#setLocal(stream);
      this.#update({ state: 'connecting' });
      await call.join({ tracks: stream.getTracks(), streams: [stream], relayOnly: this.alwaysRelay || undefined });
      this.#groupChanged(call);
    } catch (err) {
      this.#fail(err);
    }
  }

  #onGroupCall(type: 'incoming' | 'running' | 'joined' | 'ended', call: GroupCall): void {
    if (this.#closed) return;
    const mine = this.#view?.groupCall === call;
    switch (type) {
      case 'incoming':
        if (this.busy) return;
        this.#reset();
        this.#view = this.#fresh({ chat: call.groupId, title: this.#host.title(call.groupId), video: call.media === 'video', direction: 'incoming', state: 'ringing' });
        this.#adoptGroup(call);
        notifyRinging(this.#view);
        return;
      case 'running':
        // Stopped ringing here (declined, answered on another device, timed out): the chat offers "Join".
        if (mine && this.#view?.state === 'ringing') this.#ended(call.end?.reason === 'answered-elsewhere' ? 'Answered on another device' : 'Call ended');
        this.#notify();
        return;
      case 'joined':
        if (mine) this.#groupChanged(call);
        return;
      case 'ended':
        if (mine) this.#ended(call.end?.reason === 'full' ? 'The call is full' : 'Call ended');
        this.#notify();
        return;
    }
  }

  #adoptGroup(call: GroupCall): void {
    if (!this.#view || this.#view.groupCall === call) return;
    this.#update({ groupCall: call });
    const changed = (): void => this.#groupChanged(call);
    this.#callOffs.push(call.on('participantJoined', changed), call.on('participantLeft', changed), call.on('participantState', changed), call.on('track', changed), call.on('state', changed));
    this.#groupChanged(call);
  }

  /** Re-reads a group call's participants into tiles; a connection per participant is measured and adapted. */
  #groupChanged(call: GroupCall): void {
    if (this.#view?.groupCall !== call || this.#view.state === 'ended') return;
    const keys = new Set<string>();
    const tiles: CallTile[] = call.participants.map((p) => {
      const key = participantKey(p);
      keys.add(key);
      const pc = p.peerConnection;
      const measured = this.#tileQuality.get(key);
      if (measured && measured.pc !== pc) {
        // A new connection to them (the SDK tried the pair again): its figures start from zero.
        measured.controller.stop();
        this.#tileQuality.delete(key);
        this.#audioTotals.delete(key);
      }
      if (pc && p.state === 'connected' && !this.#tileQuality.has(key)) {
        const controller = new QualityController(pc, {
          onSample: (stats) => {
            if (this.#tileQuality.get(key)?.pc !== pc) return;
            this.#tileStats.set(key, stats);
            this.#hear(key, stats);
            this.#groupChanged(call);
          },
          onError: (err) => console.warn('parley: call stats', err),
        });
        this.#tileQuality.set(key, { pc, controller });
      }
      return { key, name: this.#host.nameOf(p.accountId), state: p.state, stream: this.#tileStream(key, p), stats: this.#tileStats.get(key), level: this.#levels.get(key), speaking: false };
    });
    for (const [key, q] of this.#tileQuality) {
      if (keys.has(key)) continue;
      q.controller.stop();
      this.#tileQuality.delete(key);
      this.#tileStats.delete(key);
      this.#tileStreams.delete(key);
      this.#audioTotals.delete(key);
      this.#levels.delete(key);
    }
    this.#speakers.retain(keys);
    const { speaker, speaking } = this.#speakers.state(Date.now());
    for (const [i, t] of tiles.entries()) if (speaking.includes(t.key)) tiles[i] = { ...t, speaking: true };
    const joined = call.state === 'joined';
    const state: CallState = call.state === 'ringing' ? 'ringing' : joined ? 'connected' : this.#view.state;
    const ringingOthers = this.#view.ringingOthers && tiles.length === 0;
    this.#update({ tiles, speaker, ringingOthers, state, connectedAt: joined ? (this.#view.connectedAt ?? call.joinedAt ?? Date.now()) : this.#view.connectedAt });
  }

  /** Marks the group call on screen as ringing the others, until someone joins or the ring times out. */
  #ringOthers(): void {
    const seq = this.#seq;
    if (this.#view?.tiles.length !== 0) return;
    this.#update({ ringingOthers: true });
    setTimeout(() => {
      if (this.#seq === seq && this.#view?.ringingOthers) this.#update({ ringingOthers: false });
    }, DEFAULT_RING_TIMEOUT_MS);
  }

  /** A participant's audio level since their previous sample, for the active speaker. */
  #hear(key: string, stats: CallStatsSummary): void {
    const totals = { energy: stats.audioEnergyIn, duration: stats.audioSecondsIn };
    const level = levelBetween(this.#audioTotals.get(key), totals);
    this.#audioTotals.set(key, totals);
    this.#levels.set(key, level);
    this.#speakers.observe(Date.now(), key, level);
  }

  /** One stream object per participant, kept while its tracks stay the same (a new one would restart the video element). */
  #tileStream(key: string, p: GroupCallParticipant): MediaStream | undefined {
    if (p.tracks.length === 0) return undefined;
    const known = this.#tileStreams.get(key);
    const same = known && known.getTracks().length === p.tracks.length && p.tracks.every((t) => known.getTracks().includes(t));
    if (known && same) return known;
    const stream = new MediaStream([...p.tracks]);
    this.#tileStreams.set(key, stream);
    return stream;
  }

  /** Hides the ended screen at once. */
  dismiss(): void {
    if (this.#view?.state !== 'ended') return;
    this.#view = undefined;
    this.#notify();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs) off();
    this.#reset();
    this.#tones?.stop();
    clearTimeout(this.#clearTimer);
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #onCall(type: 'incoming' | 'ringing' | 'connected' | 'ended', call: Call): void {
    if (this.#closed) return;
    const mine = this.#view?.call === call || (this.#view?.call === undefined && call.direction === 'outgoing' && this.#view?.chat === call.peer);
    switch (type) {
      case 'incoming':
        // The SDK answers "busy" by itself while a call is going on; a call on the ended screen makes way.
        if (this.busy) return;
        this.#reset();
        this.#view = this.#fresh({ chat: call.peer, title: this.#host.title(call.peer), video: call.media === 'video', direction: 'incoming', state: 'ringing' });
        this.#adopt(call);
        notifyRinging(this.#view);
        return;
      case 'ringing':
      case 'connected':
        if (!mine) return;
        if (type === 'connected') this.#startQuality(call);
        this.#update({ state: call.state, connectedAt: call.connectedAt });
        return;
      case 'ended':
        if (!mine) return;
        this.#ended(endedWords(call));
        return;
    }
  }

  /** Follows a call's remote tracks and state. */
  #adopt(call: Call): void {
    if (!this.#view || this.#view.call === call) return;
    this.#update({ call, state: call.state });
    this.#callOffs.push(
      call.on('track', ({ track, streams }) => {
        if (this.#view?.call !== call) return;
        const remote = this.#view.remote ?? streams[0] ?? new MediaStream();
        if (!remote.getTracks().includes(track)) remote.addTrack(track);
        if (track.kind === 'video') {
          const live = (): void => {
            if (this.#view?.call === call) this.#update({ remoteVideo: !track.muted && track.readyState === 'live' });
          };
          track.addEventListener('mute', live);
          track.addEventListener('unmute', live);
          track.addEventListener('ended', live);
        }
        this.#update({ remote, remoteVideo: remote.getVideoTracks().some((t) => !t.muted) });
      }),
    );
    if (call.state === 'ended') this.#ended(endedWords(call));
  }

  /**
   * Sends `track` (or nothing) as our video through the SDK (`replaceLocalTrack`: the same sender, no
   * renegotiation); in a group call on every participant's connection and on those of participants who join
   * later.
   */
  async #sendVideo(track: MediaStreamTrack | null): Promise<void> {
    const call = this.#view?.groupCall ?? this.#view?.call;
    if (call && this.#canSendVideo()) await call.replaceLocalTrack('video', track);
  }

  /** Whether our video can be replaced now: a video call this device takes part in. */
  #canSendVideo(): boolean {
    const group = this.#view?.groupCall;
    if (group) return group.state === 'joined' && group.media === 'video';
    const call = this.#view?.call;
    return this.#sending && call !== undefined && call.media === 'video' && call.state !== 'ended';
  }

  async #open(video: boolean, audio: boolean): Promise<MediaStream> {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser cannot use a microphone here (an https page is needed)');
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video: video ? CAMERA : false });
    this.#cameraId = stream.getVideoTracks()[0]?.getSettings().deviceId ?? this.#cameraId;
    return stream;
  }

  #setLocal(stream: MediaStream): void {
    this.#local = stream;
    const cameraOn = stream.getVideoTracks().some((t) => t.readyState === 'live');
    this.#update({ local: stream, cameraOn });
    // Device labels and ids are readable once a device is open: then the switch button can be offered.
    cameras()
      .then((list) => this.#update({ canSwitchCamera: list.length > 1 }))
      .catch(() => undefined);
    this.refreshOutputs().catch(() => undefined);
  }

  async #startCamera(deviceId: string | undefined): Promise<void> {
    if (!this.#canSendVideo() || !this.#local) return;
    const stream = await navigator.mediaDevices.getUserMedia({ video: deviceId === undefined ? CAMERA : { ...CAMERA, deviceId: { exact: deviceId } } });
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    if (this.#view?.state === 'ended' || !this.#view) {
      track.stop();
      return;
    }
    try {
      await this.#sendVideo(track);
    } catch (err) {
      track.stop();
      throw err;
    }
    for (const old of this.#local.getVideoTracks()) {
      this.#local.removeTrack(old);
      old.stop();
    }
    this.#local.addTrack(track);
    this.#cameraId = track.getSettings().deviceId ?? deviceId;
    // A new stream object, so that the preview element picks the new track up.
    this.#local = new MediaStream(this.#local.getTracks());
    this.#update({ local: this.#local, cameraOn: true });
  }

  async #stopCamera(): Promise<void> {
    await this.#sendVideo(null);
    if (this.#local) {
      for (const t of this.#local.getVideoTracks()) {
        this.#local.removeTrack(t);
        t.stop();
      }
      this.#local = new MediaStream(this.#local.getTracks());
    }
    this.#update({ local: this.#local, cameraOn: false });
  }

  #startQuality(call: Call): void {
    const pc = call.peerConnection;
    if (!pc || this.#quality) return;
    this.#quality = new QualityController(pc, {
      onSample: (stats, step) => {
        if (this.#view?.call === call) this.#update({ stats, videoStep: this.#view.video ? step : undefined });
      },
      onError: (err) => console.warn('parley: call stats', err),
    });
  }

  #fail(err: unknown): void {
    const words = errorInWords(err);
    this.#host.toast(`The call could not go on: ${words}`, true);
    const call = this.#view?.call ?? this.#view?.groupCall;
    if (call && call.state !== 'ended') call.hangup().catch(() => undefined);
    this.#ended('Call failed');
  }

  /** The call ended: devices released, the ended screen for a moment. */
  #ended(text: string): void {
    if (!this.#view || this.#view.state === 'ended') return;
    this.#release();
    this.#update({ state: 'ended', endedText: text, local: undefined });
    // The view object changes with every update (late stats, track events): the timer follows the call's number.
    const seq = this.#seq;
    clearTimeout(this.#clearTimer);
    this.#clearTimer = setTimeout(() => {
      if (this.#seq !== seq || this.#view?.state !== 'ended') return;
      this.#view = undefined;
      this.#notify();
    }, ENDED_SCREEN_MS);
  }

  #release(): void {
    this.#quality?.stop();
    this.#quality = undefined;
    if (this.#local) stopAll(this.#local);
    this.#local = undefined;
    this.#sending = false;
  }

  #reset(): void {
    this.#release();
    // Listeners of calls that are over (track events) go; the model's own client listeners stay.
    for (const off of this.#callOffs) off();
    this.#callOffs = [];
    for (const q of this.#tileQuality.values()) q.controller.stop();
    this.#tileQuality.clear();
    this.#tileStats.clear();
    this.#tileStreams.clear();
    this.#audioTotals.clear();
    this.#levels.clear();
    this.#speakers = new SpeakerDetector();
    clearTimeout(this.#clearTimer);
  }

  #fresh(v: Pick<CallView, 'chat' | 'title' | 'video' | 'direction' | 'state'>): CallView {
    this.#seq++;
    return { ...v, call: undefined, groupCall: undefined, tiles: [], speaker: undefined, ringingOthers: false, local: undefined, remote: undefined, remoteVideo: false, muted: false, cameraOn: false, canSwitchCamera: false, connectedAt: undefined, stats: undefined, videoStep: undefined, endedText: undefined };
  }

  #update(change: Partial<CallView>): void {
    if (!this.#view) return;
    this.#view = { ...this.#view, ...change };
    this.#notify();
  }

  #notify(): void {
    this.#syncTone();
    for (const l of this.#listeners) l();
  }

  // ---- sound -----------------------------------------------------------------------------------------------

  /** The tone being heard now (the AudioContext runs), if any: `ring` or `ringback`. */
  get tone(): CallTone | undefined {
    return this.#tones?.playing;
  }

  /** Incoming calls ring aloud (a profile setting, on by default). */
  get ringtone(): boolean {
    return this.#prefs.ringtone;
  }

  set ringtone(on: boolean) {
    this.#savePrefs({ ringtone: on });
  }

  /** Group calls: the active speaker large (`speaker`) or every participant the same size (`grid`). */
  get layout(): CallPrefs['layout'] {
    return this.#prefs.layout;
  }

  set layout(layout: CallPrefs['layout']) {
    this.#savePrefs({ layout });
  }

  /** Whether this browser can choose where audio plays (HTMLMediaElement.setSinkId). */
  get canChooseOutput(): boolean {
    return typeof HTMLMediaElement !== 'undefined' && typeof (HTMLMediaElement.prototype as { setSinkId?: unknown }).setSinkId === 'function';
  }

  /** The audio outputs to offer, the system default first (listed by {@link refreshOutputs}). */
  get outputs(): OutputChoice[] {
    return outputChoices(this.#devices);
  }

  /** The audio output calls play on: the chosen one while it is present, else '' (the system default). */
  get audioOutput(): string {
    return pickAudioOutput(this.#prefs.audioOutput, this.#devices);
  }

  /** Chooses the audio output (remembered; '' is the system default). */
  set audioOutput(id: string) {
    this.#savePrefs({ audioOutput: id });
  }

  /** Lists the audio outputs again (labels appear once a microphone was allowed). */
  async refreshOutputs(): Promise<void> {
    if (!this.canChooseOutput || !navigator.mediaDevices?.enumerateDevices) return;
    const all = await navigator.mediaDevices.enumerateDevices();
    this.#devices = all.filter((d) => d.kind === 'audiooutput');
    this.#notify();
  }

  async #loadPrefs(): Promise<void> {
    const store = this.#host.profile?.store;
    if (!store) return;
    const stored = await store.transaction((tx) => tx.settings.get(PREFS_KEY));
    this.#prefs = readCallPrefs(stored);
    this.#notify();
    await this.refreshOutputs();
  }

  #savePrefs(change: Partial<CallPrefs>): void {
    this.#prefs = { ...this.#prefs, ...change };
    this.#notify();
    const store = this.#host.profile?.store;
    const value = { ...this.#prefs };
    store?.transaction((tx) => tx.settings.put(PREFS_KEY, value)).catch((err: unknown) => this.#host.toast(`The call setting was not saved: ${errorInWords(err)}`, true));
  }

  /** Starts or stops the ringtone / ringback tone to match the call's state. */
  #syncTone(): void {
    const view = this.#view;
    const want = toneFor(view && { direction: view.direction, state: view.state, group: view.groupCall !== undefined || isGroupId(view.chat), ringingOthers: view.ringingOthers }, this.#prefs.ringtone);
    if (want === this.#toneWanted) return;
    this.#toneWanted = want;
    if (want === undefined) {
      this.#tones?.stop();
      return;
    }
    this.#playTone(want).catch((err: unknown) => console.warn('parley: call tone', err));
  }

  async #playTone(tone: CallTone): Promise<void> {
    if (!this.#tones) {
      const { TonePlayer } = await import('./call-tones.js');
      this.#tones ??= new TonePlayer(() => {
        for (const l of this.#listeners) l();
      });
    }
    if (this.#toneWanted !== tone || this.#closed) return;
    await this.#tones.play(tone, this.audioOutput);
    // Stopped while the AudioContext was starting.
    if (this.#toneWanted !== tone) this.#tones.stop();
  }
}

/** The cameras of this device (ids and labels only once a device was opened). */
async function cameras(): Promise<MediaDeviceInfo[]> {
  if (!navigator.mediaDevices?.enumerateDevices) return [];
  return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
}

function stopAll(stream: MediaStream): void {
  for (const t of stream.getTracks()) t.stop();
}

/** Why a call ended, in words. */
export function endedWords(call: Call): string {
  const end = call.end;
  if (!end) return 'Call ended';
  switch (end.outcome) {
    case 'declined':
      return call.direction === 'outgoing' ? 'Declined' : 'Call declined';
    case 'busy':
      return 'Busy: they are in another call';
    case 'unanswered':
      return end.by === 'local' && end.reason === 'normal' ? 'Call cancelled' : 'No answer';
    case 'missed':
      return 'Missed call';
    case 'answered-elsewhere':
      return 'Answered on another device';
    case 'failed':
      return 'The call could not connect';
    case 'answered':
      return end.reason === 'failed' ? 'The connection was lost' : 'Call ended';
  }
}

/** A system notification while the tab is hidden (the screen itself shows the call). */
function notifyRinging(view: CallView): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted' || document.visibilityState === 'visible') return;
  const n = new Notification(view.title, { body: view.video ? 'Incoming video call' : 'Incoming voice call', tag: `call-${view.call?.id ?? ''}`, icon: '/icon.svg', requireInteraction: true });
  n.onclick = () => {
    window.focus();
    n.close();
  };
}

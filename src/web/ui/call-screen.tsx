/**
 * Calls on screen: the call buttons of a conversation's header, the full-screen call view (incoming call with
 * answer / decline; calling; in a call: the peer's video large with our camera's preview in a corner, the
 * duration, mute, camera on/off, switch camera, audio output, details, hang up; group calls as a grid or in
 * speaker view, with a ring on whoever speaks) and a call's record in the chat.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { isGroupId, type ConversationId, type GroupCall, type MessageRecord } from '../../client/index.js';
import type { CallTile, CallView, CallsModel } from '../model/calls.js';
import { VIDEO_LADDER, type CallStatsSummary } from '../model/call-quality.js';
import type { Session } from '../model/session.js';
import { callText, duration } from './call-format.js';
import { clockTime } from './format.js';
import './call-screen.css';

/** Re-renders whenever the calls model changes. */
function useCalls(calls: CallsModel): CallView | undefined {
  const [, tick] = useState(0);
  useEffect(() => calls.subscribe(() => tick((n) => n + 1)), [calls]);
  return calls.current;
}

/** Voice and video call buttons for a conversation's header; in a group, "Join call" while one runs there. */
export function CallButtons(props: { session: Session; id: ConversationId }): preact.JSX.Element | null {
  const { session, id } = props;
  useCalls(session.calls);
  useSessionTick(session);
  const calls = session.calls;
  const why = calls.busy ? 'You are in a call' : !session.online ? 'Calls need a connection' : undefined;
  const start = (media: 'audio' | 'video'): void => void (isGroupId(id) ? calls.startGroup(id, media) : calls.place(id, media));
  const running = isGroupId(id) ? calls.runningGroupCall(id) : undefined;
  if (running) {
    return (
      <button class="join-call" aria-label={running.media === 'video' ? 'Join video call' : 'Join voice call'} disabled={why !== undefined} onClick={() => start(running.media)}>
        {running.media === 'video' ? '🎥' : '📞'} Join
      </button>
    );
  }
  return (
    <>
      <button class="icon" aria-label="Voice call" title={why ?? 'Voice call'} disabled={why !== undefined} onClick={() => start('audio')}>
        📞
      </button>
      <button class="icon" aria-label="Video call" title={why ?? 'Video call'} disabled={why !== undefined} onClick={() => start('video')}>
        🎥
      </button>
    </>
  );
}

/** Re-renders when who is in a group call changes (a call this device is not in: no model update then). */
function useParticipants(call: GroupCall | undefined): void {
  const [, tick] = useState(0);
  useEffect(() => {
    if (!call) return;
    const changed = (): void => tick((n) => n + 1);
    const offs = [call.on('participantJoined', changed), call.on('participantLeft', changed)];
    return () => offs.forEach((off) => off());
  }, [call]);
}

/**
 * A banner over a group's messages while a call runs there without this device (declined, missed, or left:
 * the SDK keeps following it): who is in it, and "Join".
 */
export function CallBanner(props: { session: Session; id: ConversationId }): preact.JSX.Element | null {
  const { session, id } = props;
  useCalls(session.calls);
  useSessionTick(session);
  const running = isGroupId(id) ? session.calls.runningGroupCall(id) : undefined;
  useParticipants(running);
  if (!running || !isGroupId(id)) return null;
  const why = session.calls.busy ? 'You are in a call' : !session.online ? 'Calls need a connection' : undefined;
  const kind = running.media === 'video' ? 'video call' : 'voice call';
  const n = running.participants.length;
  return (
    <div class="call-banner" role="region" aria-label="Call in progress">
      <span class="call-banner-text">
        {running.media === 'video' ? '🎥' : '📞'} A {kind} is going on{n > 0 ? ` · ${n} in it` : ''}
      </span>
      <button class="join-call" title={why ?? `Join the ${kind}`} disabled={why !== undefined} onClick={() => void session.calls.startGroup(id, running.media)}>
        Join
      </button>
    </div>
  );
}

/** The chats list's mark on a group whose call runs without this device. */
export function OngoingCallMark(props: { session: Session; id: ConversationId }): preact.JSX.Element | null {
  const { session, id } = props;
  useCalls(session.calls);
  const running = isGroupId(id) ? session.calls.runningGroupCall(id) : undefined;
  if (!running) return null;
  return (
    <span class="chat-call" role="img" aria-label="Call in progress" title="Call in progress">
      {running.media === 'video' ? '🎥' : '📞'}
    </span>
  );
}

/** Re-renders with the session too (online state). */
function useSessionTick(session: Session): void {
  const [, tick] = useState(0);
  useEffect(() => session.subscribe(() => tick((n) => n + 1)), [session]);
}

/** The call screen, over everything while a call rings or goes on (mounted once by the messenger). */
export function CallScreen(props: { session: Session }): preact.JSX.Element | null {
  const calls = props.session.calls;
  const view = useCalls(calls);
  const [details, setDetails] = useState(false);
  const [, second] = useState(0);
  const connected = view?.state === 'connected';
  useEffect(() => {
    if (!connected) return;
    const t = setInterval(() => second((n) => n + 1), 1_000);
    return () => clearInterval(t);
  }, [connected]);
  if (!view) return null;

  const ringing = view.direction === 'incoming' && view.state === 'ringing';
  const ended = view.state === 'ended';
  const kind = view.video ? 'video call' : 'voice call';
  const showRemoteVideo = view.video && view.remote !== undefined && view.remoteVideo;
  const group = view.groupCall !== undefined;
  const sink = calls.canChooseOutput ? calls.audioOutput : undefined;
  // Speaker view: the active speaker large (the first participant until someone spoke), the others in a strip.
  const speakerView = group && calls.layout === 'speaker' && view.tiles.length > 1;
  const main = speakerView ? (view.tiles.find((t) => t.key === view.speaker) ?? view.tiles[0])?.key : undefined;
  return (
    <div class={`call-screen ${view.video ? 'video' : 'voice'}`} role="dialog" aria-modal="true" aria-label={`Call with ${view.title}`} data-state={view.state} data-tone={calls.tone ?? ''}>
      <div class={group && view.tiles.length > 0 ? 'call-stage grid' : 'call-stage'}>
        {group && view.tiles.length > 0 ? (
          <ul class={speakerView ? 'call-grid speaker' : 'call-grid'} aria-label="Participants" data-count={view.tiles.length} data-layout={speakerView ? 'speaker' : 'grid'}>
            {/* The same elements in both layouts (only their classes change), so no video restarts when the speaker changes. */}
            {view.tiles.map((t) => (
              <Tile key={t.key} tile={t} video={view.video} main={t.key === main} details={details} sink={sink} />
            ))}
          </ul>
        ) : view.video && view.remote ? (
          <MediaElement kind="video" class={showRemoteVideo ? 'remote-video' : 'remote-video hidden'} stream={view.remote} muted={false} label={`${view.title}’s video`} sink={sink} />
        ) : view.remote ? (
          <MediaElement kind="audio" class="remote-audio" stream={view.remote} muted={false} label={`${view.title}’s audio`} sink={sink} />
        ) : null}
        {!showRemoteVideo && !(group && view.tiles.length > 0) && (
          <div class="call-avatar" aria-hidden="true">
            {initials(view.title)}
          </div>
        )}
        {view.local && view.cameraOn && <MediaElement kind="video" class="local-preview" stream={view.local} muted={true} label="Your camera" />}
      </div>
      <header class="call-head">
        <h2>{view.title}</h2>
        <p class="call-status" role="status" aria-live="polite">
          {statusText(view, kind)}
        </p>
      </header>
      {details && view.stats && <CallDetails stats={view.stats} step={view.videoStep} label="Call statistics" />}
      <div class="call-controls" role="group" aria-label="Call controls">
        {ringing ? (
          <>
            <button class="call-btn decline" aria-label="Decline" onClick={() => calls.decline()}>
              ✕<span>Decline</span>
            </button>
            {view.video && (
              <button class="call-btn answer" aria-label="Answer with audio" onClick={() => void calls.answer(false)}>
                📞<span>Audio</span>
              </button>
            )}
            <button class="call-btn answer" aria-label={view.video ? 'Answer with video' : 'Answer'} onClick={() => void calls.answer(true)}>
              {view.video ? '🎥' : '📞'}
              <span>Answer</span>
            </button>
          </>
        ) : ended ? (
          <button class="call-btn" aria-label="Close" onClick={() => calls.dismiss()}>
            ✕<span>Close</span>
          </button>
        ) : (
          <>
            <button class="call-btn" aria-label="Mute" aria-pressed={view.muted} onClick={() => calls.toggleMute()}>
              {view.muted ? '🔇' : '🎙'}
              <span>{view.muted ? 'Unmute' : 'Mute'}</span>
            </button>
            {view.video && (
              <button class="call-btn" aria-label="Camera off" aria-pressed={!view.cameraOn} disabled={view.call === undefined && !group} onClick={() => void calls.toggleCamera()}>
                {view.cameraOn ? '📷' : '🚫'}
                <span>{view.cameraOn ? 'Camera' : 'Camera off'}</span>
              </button>
            )}
            {view.video && view.canSwitchCamera && (
              <button class="call-btn" aria-label="Switch camera" disabled={!view.cameraOn} onClick={() => void calls.switchCamera()}>
                🔄<span>Switch</span>
              </button>
            )}
            {group && view.tiles.length > 1 && (
              <button class="call-btn" aria-label="Speaker view" aria-pressed={calls.layout === 'speaker'} onClick={() => (calls.layout = calls.layout === 'speaker' ? 'grid' : 'speaker')}>
                {calls.layout === 'speaker' ? '🔲' : '🗣'}
                <span>{calls.layout === 'speaker' ? 'Grid' : 'Speaker'}</span>
              </button>
            )}
            <OutputChoice calls={calls} />
            {connected && (
              <button class="call-btn" aria-label="Call details" aria-expanded={details} onClick={() => setDetails((d) => !d)}>
                ⓘ<span>Details</span>
              </button>
            )}
            <button class="call-btn hangup" aria-label="Hang up" onClick={() => calls.hangup()}>
              ☎<span>Hang up</span>
            </button>
          </>
        )}
      </div>
    </div>
  );
}

/** One participant of a group call: their video (or avatar), name, a ring while they speak. */
function Tile(props: { tile: CallTile; video: boolean; main: boolean; details: boolean; sink: string | undefined }): preact.JSX.Element {
  const { tile: t, video } = props;
  const cls = `call-tile${props.main ? ' main' : ''}${t.speaking ? ' speaking' : ''}`;
  return (
    <li class={cls} aria-label={t.name} data-state={t.state} data-tile={t.key} data-speaking={t.speaking ? 'true' : 'false'} data-level={t.level === undefined ? '' : t.level.toFixed(4)} aria-current={props.main ? 'true' : undefined}>
      {t.stream ? <MediaElement kind={video ? 'video' : 'audio'} class="tile-media" stream={t.stream} muted={false} label={`${t.name}’s ${video ? 'video' : 'audio'}`} sink={props.sink} /> : null}
      {(!video || !t.stream) && (
        <div class="call-avatar small" aria-hidden="true">
          {initials(t.name)}
        </div>
      )}
      <span class="tile-name">
        {t.speaking ? <span class="speaking-dot" aria-label="speaking" /> : null}
        {t.name}
        {t.state !== 'connected' ? ` · ${t.state}` : ''}
      </span>
      {props.details && t.stats && <CallDetails stats={t.stats} step={undefined} label={`Call statistics: ${t.name}`} />}
    </li>
  );
}

/** The audio output of the call (speakers, headset...), where the browser lets a page choose it. */
function OutputChoice(props: { calls: CallsModel }): preact.JSX.Element | null {
  const { calls } = props;
  const outputs = calls.outputs;
  if (!calls.canChooseOutput || outputs.length < 2) return null;
  return (
    <label class="call-btn call-output" title="Audio output">
      🔊<span>Audio</span>
      <OutputSelect calls={calls} label="Audio output" />
    </label>
  );
}

/** The list of audio outputs; choosing one routes every call's sound there (and is remembered). */
function OutputSelect(props: { calls: CallsModel; label: string }): preact.JSX.Element {
  const { calls } = props;
  return (
    <select aria-label={props.label} value={calls.audioOutput} onChange={(e) => (calls.audioOutput = e.currentTarget.value)}>
      {calls.outputs.map((o) => (
        <option key={o.id} value={o.id}>
          {o.label}
        </option>
      ))}
    </select>
  );
}

/** What getStats() says, for the curious (and the tests): bytes and frames received, the route, the video step. */
function CallDetails(props: { stats: CallStatsSummary; step: number | undefined; label: string }): preact.JSX.Element {
  const s = props.stats;
  const step = props.step === undefined ? undefined : VIDEO_LADDER[props.step];
  const rows: Array<[string, string, string]> = [
    ['route', 'Connection', s.route === undefined ? '…' : s.route === 'relay' ? 'relay (TURN)' : `direct (${s.route})`],
    ['audioBytesIn', 'Audio received (bytes)', String(s.audioBytesIn)],
    ['audioEnergyIn', 'Audio energy received', s.audioEnergyIn.toFixed(4)],
    ['audioBytesOut', 'Audio sent (bytes)', String(s.audioBytesOut)],
    ['videoBytesIn', 'Video received (bytes)', String(s.videoBytesIn)],
    ['framesDecoded', 'Video frames decoded', String(s.framesDecoded)],
    ['resolution', 'Received picture', s.frameWidth && s.frameHeight ? `${s.frameWidth}×${s.frameHeight}` : '—'],
    ['videoBytesOut', 'Video sent (bytes)', String(s.videoBytesOut)],
    ['uplink', 'Estimated uplink', s.availableOutgoingBitrate === undefined ? '—' : `${Math.round(s.availableOutgoingBitrate / 1000)} kbit/s`],
    ['videoLimit', 'Video we send', step ? `up to ${Math.round(step.maxBitrate / 1000)} kbit/s, 1/${step.scaleResolutionDownBy} size` : '—'],
    ['rtt', 'Round trip', s.roundTripTimeMs === undefined ? '—' : `${s.roundTripTimeMs} ms`],
  ];
  return (
    <dl class="call-details" aria-label={props.label}>
      {rows.map(([key, label, value]) => (
        <div key={key}>
          <dt>{label}</dt>
          <dd data-stat={key}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * A remote (or our own) MediaStream on screen: its video in a muted <video>, and, unless `muted`, its audio in
 * an <audio> of its own, on the chosen output. Not one element for both: a <video> whose stream holds a video
 * track that never got a frame (a participant whose camera was off from the start) never starts, and its
 * audio would not play either (srcObject cannot be set as an attribute, hence the refs).
 */
function MediaElement(props: { kind: 'video' | 'audio'; class: string; stream: MediaStream; muted: boolean; label: string; sink?: string | undefined }): preact.JSX.Element {
  return (
    <>
      {props.kind === 'video' && <VideoOut class={props.class} stream={props.stream} label={props.label} />}
      {!props.muted && <AudioOut stream={props.stream} sink={props.sink} label={props.kind === 'audio' ? props.label : `${props.label} (sound)`} />}
    </>
  );
}

function VideoOut(props: { class: string; stream: MediaStream; label: string }): preact.JSX.Element {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || el.srcObject === props.stream) return;
    el.srcObject = props.stream;
    el.play().catch(() => undefined);
  }, [props.stream]);
  return <video ref={ref} class={props.class} autoPlay playsInline muted aria-label={props.label} />;
}

/** The audio tracks of a stream in an <audio> (a new stream object only when its audio tracks change). */
function AudioOut(props: { stream: MediaStream; sink: string | undefined; label: string }): preact.JSX.Element {
  const ref = useRef<HTMLAudioElement>(null);
  const tracks = props.stream.getAudioTracks();
  const key = tracks.map((t) => t.id).join();
  const audio = useMemo(() => new MediaStream(tracks), [props.stream, key]);
  useEffect(() => {
    const el = ref.current;
    if (!el || el.srcObject === audio) return;
    el.srcObject = audio;
    el.play().catch(() => undefined); // autoplay may wait for a gesture; answering or calling was one
  }, [audio]);
  // The chosen audio output ('' is the system default); a device that went away leaves the element where it was.
  useEffect(() => {
    const el = ref.current;
    const sink = props.sink;
    if (!el || sink === undefined || typeof el.setSinkId !== 'function' || el.sinkId === sink) return;
    el.setSinkId(sink).catch((err: unknown) => console.warn('parley: audio output', err));
  }, [props.sink, audio]);
  return <audio ref={ref} class="call-audio-out" autoPlay aria-label={props.label} />;
}

function statusText(view: CallView, kind: string): string {
  switch (view.state) {
    case 'dialing':
      return 'Calling…';
    case 'ringing':
      return view.direction === 'incoming' ? `Incoming ${kind}` : 'Ringing…';
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      if (view.ringingOthers) return 'Ringing…';
      return duration(Date.now() - (view.connectedAt ?? Date.now()));
    case 'ended':
      return view.endedText ?? 'Call ended';
  }
}

function initials(title: string): string {
  const t = title.replace(/^\+/, '');
  return t.slice(0, 2).toUpperCase();
}

/** A call's record in the conversation, with "Call back". */
export function CallRecordNote(props: { session: Session; m: MessageRecord }): preact.JSX.Element {
  const { session, m } = props;
  useCalls(session.calls);
  const missed = m.call?.outcome === 'missed';
  const peer = m.conversationId;
  return (
    <div class={missed ? 'system call-record missed' : 'system call-record'} role="note" data-id={m.id} data-outcome={m.call?.outcome}>
      {m.call?.media === 'video' ? '🎥' : '📞'} {callText(m)} · {clockTime(m.timestamp)}{' '}
      {!isGroupId(peer) && m.direction === 'incoming' && m.call?.outcome !== 'answered' && (
        <button class="link" disabled={session.calls.busy} onClick={() => void session.calls.place(peer, m.call?.media ?? 'audio')}>
          Call back
        </button>
      )}
    </div>
  );
}

/** The ringtone and the default audio output, for the Settings screen (kept in the profile). */
export function CallSoundSettings(props: { session: Session }): preact.JSX.Element {
  const calls = props.session.calls;
  useCalls(calls);
  useEffect(() => void calls.refreshOutputs().catch(() => undefined), [calls]);
  const outputs = calls.outputs;
  return (
    <>
      <label class="check">
        <input type="checkbox" checked={calls.ringtone} onChange={(e) => (calls.ringtone = e.currentTarget.checked)} /> Ringtone (incoming calls ring aloud)
      </label>
      {calls.canChooseOutput && outputs.length > 1 && (
        <label>
          Play calls on
          <OutputSelect calls={calls} label="Call audio output" />
        </label>
      )}
    </>
  );
}

/** The "always relay calls" choice, for the Settings screen (kept in this browser). */
export function AlwaysRelaySetting(props: { session: Session }): preact.JSX.Element {
  const calls = props.session.calls;
  useCalls(calls);
  return (
    <label class="check">
      <input type="checkbox" checked={calls.alwaysRelay} onChange={(e) => (calls.alwaysRelay = e.currentTarget.checked)} /> Always relay calls (the people you call never see your
      IP address; calls go through the server’s TURN relay)
    </label>
  );
}

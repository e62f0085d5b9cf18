// The sound choices of calls (src/web/model/call-audio.ts): which tone plays in which call state, the audio
// outputs offered and the one used, and the stored call preferences.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CALL_PREFS, outputChoices, pickAudioOutput, readCallPrefs, toneFor, type ToneInput } from '../../../src/web/model/call-audio.ts';

describe('toneFor', () => {
  const states: ToneInput['state'][] = ['dialing', 'ringing', 'connecting', 'connected', 'ended'];

  it('rings while an incoming call (1:1 or group) rings, and only then', () => {
    for (const group of [false, true]) {
      for (const state of states) assert.equal(toneFor({ direction: 'incoming', state, group }, true), state === 'ringing' ? 'ring' : undefined, `${state} group=${group}`);
    }
  });

  it('plays the ringback tone while a 1:1 call we placed rings at the other end, and only then', () => {
    for (const state of states) assert.equal(toneFor({ direction: 'outgoing', state, group: false }, true), state === 'ringing' ? 'ringback' : undefined, state);
    for (const state of states) assert.equal(toneFor({ direction: 'outgoing', state, group: true }, true), undefined, `group ${state}`);
  });

  it('plays the ringback tone while a group call we started rings the others and nobody joined, until it ends', () => {
    for (const state of states) {
      assert.equal(toneFor({ direction: 'outgoing', state, group: true, ringingOthers: true }, false), state === 'ended' ? undefined : 'ringback', state);
      assert.equal(toneFor({ direction: 'outgoing', state, group: true, ringingOthers: false }, true), undefined, state);
    }
    // Only for the one who started it: an incoming group call rings as any other.
    assert.equal(toneFor({ direction: 'incoming', state: 'ringing', group: true, ringingOthers: true }, true), 'ring');
  });

  it('keeps quiet for incoming calls with the ringtone off (the caller still hears ringback), and without a call', () => {
    assert.equal(toneFor({ direction: 'incoming', state: 'ringing', group: false }, false), undefined);
    assert.equal(toneFor({ direction: 'outgoing', state: 'ringing', group: false }, false), 'ringback');
    assert.equal(toneFor(undefined, true), undefined);
  });
});

// As Chromium lists them once a microphone was allowed.
const DEVICES = [
  { kind: 'audioinput', deviceId: 'default', label: 'Default - Mic' },
  { kind: 'audiooutput', deviceId: 'default', label: 'Default - Speakers (Built-in)' },
  { kind: 'audiooutput', deviceId: 'communications', label: 'Communications - Speakers (Built-in)' },
  { kind: 'audiooutput', deviceId: 'spk', label: 'Speakers (Built-in)' },
  { kind: 'audiooutput', deviceId: 'hs', label: 'Headset' },
  { kind: 'audiooutput', deviceId: 'x', label: '' },
  { kind: 'videoinput', deviceId: 'cam', label: 'Camera' },
];

describe('audio outputs', () => {
  it('offers the system default first, then each output once (no default/communications aliases), with a label', () => {
    assert.deepEqual(outputChoices(DEVICES), [
      { id: '', label: 'System default (Speakers (Built-in))' },
      { id: 'spk', label: 'Speakers (Built-in)' },
      { id: 'hs', label: 'Headset' },
      { id: 'x', label: 'Speaker 4' },
    ]);
    // Before any permission Chromium lists one output without id or label: only the default is offered.
    assert.deepEqual(outputChoices([{ kind: 'audiooutput', deviceId: '', label: '' }]), [{ id: '', label: 'System default' }]);
    assert.deepEqual(outputChoices([]), [{ id: '', label: 'System default' }]);
  });

  it('plays on the saved output while it is present, else on the system default', () => {
    assert.equal(pickAudioOutput('hs', DEVICES), 'hs');
    assert.equal(pickAudioOutput('gone', DEVICES), '');
    assert.equal(pickAudioOutput('', DEVICES), '');
    assert.equal(pickAudioOutput('cam', DEVICES), '', 'a camera is no output');
  });
});

describe('readCallPrefs', () => {
  it('reads stored preferences and falls back field by field', () => {
    assert.deepEqual(readCallPrefs({ ringtone: false, audioOutput: 'hs', layout: 'speaker' }), { ringtone: false, audioOutput: 'hs', layout: 'speaker' });
    assert.deepEqual(readCallPrefs({ ringtone: 'no', audioOutput: 3, layout: 'tiles' }), DEFAULT_CALL_PREFS);
    for (const junk of [undefined, null, 'x', 1, []]) assert.deepEqual(readCallPrefs(junk), DEFAULT_CALL_PREFS);
    assert.equal(DEFAULT_CALL_PREFS.ringtone, true);
  });
});

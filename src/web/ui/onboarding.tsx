/**
 * First start: register this browser as a primary device (a phone number and the code the server sent), or
 * link it as a companion of a phone by showing a QR code that the primary scans or pastes.
 */
import { useEffect, useState } from 'preact/hooks';
import { register, requestVerificationCode, startLinking, type PendingLink } from '../../client/index.js';
import { WebCryptoProvider } from '../../protocol/webcrypto-provider.js';
import { errorInWords } from '../model/errors.js';
import { browserFetch, type Profile } from '../model/profile.js';
import { Session } from '../model/session.js';
import { RestoreOffer } from './backups.js';
import { QrCode } from './qr.js';

type Props = { profile: Profile; onReady: (session: Session) => void };

export function Onboarding(props: Props): preact.JSX.Element {
  const [mode, setMode] = useState<'register' | 'link'>('register');
  // Registered: a backup of this number on the server is offered first (./backups.tsx), without the tabs.
  const [registered, setRegistered] = useState<Session | undefined>();
  return (
    <main class="onboarding">
      <div class="card">
        <h1>Parley</h1>
        <p class="hint">Messages are encrypted in this browser. The server only ever sees ciphertext.</p>
        {registered ? (
          <RestoreOffer session={registered} onDone={() => props.onReady(registered)} />
        ) : (
          <>
            <div class="tabs" role="tablist">
              <button role="tab" aria-selected={mode === 'register'} onClick={() => setMode('register')}>
                Register a number
              </button>
              <button role="tab" aria-selected={mode === 'link'} onClick={() => setMode('link')}>
                Link to my phone
              </button>
            </div>
            {mode === 'register' ? <Register {...props} onRegistered={setRegistered} /> : <Link {...props} />}
          </>
        )}
      </div>
    </main>
  );
}

function Register(props: Props & { onRegistered: (session: Session) => void }): preact.JSX.Element {
  const [number, setNumber] = useState('');
  const [code, setCode] = useState('');
  const [step, setStep] = useState<'number' | 'code'>('number');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const serverUrl = location.origin;
  const clean = number.replace(/[\s()-]/g, '');

  const ask = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await requestVerificationCode({ serverUrl, number: clean, fetch: browserFetch });
      setStep('code');
    } catch (err) {
      setError(errorInWords(err));
    } finally {
      setBusy(false);
    }
  };
  const verify = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await register({ serverUrl, number: clean, code: code.trim(), crypto: new WebCryptoProvider(), store: props.profile.store, fetch: browserFetch });
      props.onRegistered(await Session.open(props.profile));
    } catch (err) {
      setError(errorInWords(err));
      setBusy(false);
    }
  };

  return step === 'number' ? (
    <form onSubmit={(e) => void ask(e)}>
      <label>
        Phone number (with country code)
        <input name="number" type="tel" autoComplete="tel" placeholder="+15550100001" value={number} required onInput={(e) => setNumber(e.currentTarget.value)} />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button class="primary" type="submit" disabled={busy || clean === ''}>
        {busy ? 'Sending code…' : 'Send code'}
      </button>
    </form>
  ) : (
    <form onSubmit={(e) => void verify(e)}>
      <p>We sent a code to {clean}.</p>
      <label>
        Verification code
        <input name="code" inputMode="numeric" autoComplete="one-time-code" value={code} required onInput={(e) => setCode(e.currentTarget.value)} />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button class="primary" type="submit" disabled={busy || code.trim() === ''}>
        {busy ? 'Creating keys…' : 'Register'}
      </button>
      <button type="button" class="link" onClick={() => setStep('number')} disabled={busy}>
        Use another number
      </button>
    </form>
  );
}

function Link(props: Props): preact.JSX.Element {
  const [pending, setPending] = useState<PendingLink | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let link: PendingLink | undefined;
    let live = true;
    setError(undefined);
    setPending(undefined);
    startLinking({ serverUrl: location.origin, crypto: new WebCryptoProvider(), store: props.profile.store, deviceName: 'Browser', fetch: browserFetch })
      .then(async (l) => {
        link = l;
        if (!live) return l.cancel();
        setPending(l);
        await l.done;
        if (live) props.onReady(await Session.open(props.profile));
      })
      .catch((err: unknown) => live && setError(errorInWords(err)));
    return () => {
      live = false;
      link?.cancel();
    };
  }, [attempt]);
  if (error) {
    return (
      <div>
        <p class="error" role="alert">{error}</p>
        <button class="primary" onClick={() => setAttempt(attempt + 1)}>
          Show a new code
        </button>
      </div>
    );
  }
  if (!pending) return <p aria-busy="true">Making this browser’s keys…</p>;
  return (
    <div class="link-code">
      <p>On your phone, open Parley → Linked devices → Link a device, and scan this code (or paste the text below).</p>
      <QrCode text={pending.uri} label="Linking QR code" />
      <label>
        Linking code
        <textarea readOnly rows={3} value={pending.uri} aria-label="Linking code" onFocus={(e) => e.currentTarget.select()} />
      </label>
      <p class="hint" aria-live="polite">Waiting for your phone…</p>
    </div>
  );
}

/** Settings → Notifications: the Web Push toggle (notifications while Parley is closed; src/web/model/push.ts). */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { PushError, WebPush, type PushState } from '../model/push.js';
import type { Session } from '../model/session.js';
import { errorInWords } from '../model/errors.js';

const inWords = (err: unknown): string => (err instanceof PushError ? err.message : errorInWords(err));

export function PushToggle(props: { session: Session }): preact.JSX.Element {
  const push = useMemo(() => new WebPush(props.session.profile.store), [props.session]);
  const [state, setState] = useState<PushState | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    push
      .state()
      .then(setState)
      .catch((err: unknown) => setError(inWords(err)));
  }, [push]);
  const flip = async (on: boolean): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      if (on) await push.enable();
      else await push.disable();
    } catch (err) {
      setError(inWords(err));
    } finally {
      setState(await push.state().catch(() => undefined));
      setBusy(false);
    }
  };
  if (state?.kind === 'unavailable') return <p class="hint">{state.reason} Notifications arrive while Parley is open.</p>;
  return (
    <div class="push-toggle">
      <label>
        <input
          type="checkbox"
          role="switch"
          checked={state?.kind === 'on'}
          disabled={busy || state === undefined || state.kind === 'blocked'}
          onChange={(e) => void flip(e.currentTarget.checked)}
        />{' '}
        Notify me while Parley is closed
      </label>
      <p class="hint">
        {state?.kind === 'blocked'
          ? 'Notifications are blocked for this site in the browser’s settings.'
          : 'The server only tells your browser that something arrived: the notification says “New message”, never who wrote or what.'}
      </p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** Logout: deletes this device's push subscription on the server and in the browser (errors ignored: the data goes anyway). */
export async function disablePushOnLogout(session: Session): Promise<void> {
  await new WebPush(session.profile.store).disable().catch(() => undefined);
}

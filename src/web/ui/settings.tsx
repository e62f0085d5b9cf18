/** Settings: this account, linked devices (link a companion by its QR code), backups, notifications, calls, theme, logging out. */
import { useEffect, useState } from 'preact/hooks';
import type { DeviceView } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import type { Session } from '../model/session.js';
import { lastSeen } from './format.js';
import { BackupsSection } from './backups.js';
import { AlwaysRelaySetting, CallSoundSettings } from './call-screen.js';
import { Modal } from './modal.js';
import { QrScanner } from './qr-scanner.js';
import { askForNotifications, notificationsAllowed } from './notify.js';
import { disablePushOnLogout, PushToggle } from './push-toggle.js';
import { setTheme, storedTheme, type Theme } from './theme.js';

export function Settings(props: { session: Session; onClose: () => void; onLoggedOut: () => void }): preact.JSX.Element {
  const { session } = props;
  const c = session.client;
  const [theme, setThemeState] = useState<Theme>(storedTheme());
  const [notify, setNotify] = useState(notificationsAllowed());
  return (
    <Modal title="Settings" onClose={props.onClose} wide>
      <section>
        <h3>Account</h3>
        <p>
          <span aria-label="Your number">{c.number}</span> · device {c.deviceId} {c.isPrimary ? '(primary)' : '(linked)'}
        </p>
        {!session.profile.persistent && <p class="hint">This browser keeps nothing after the tab closes (no persistent storage yet).</p>}
      </section>
      <Devices session={session} />
      <BackupsSection session={session} />
      <section>
        <h3>Notifications</h3>
        {notify ? (
          <p>Notifications are on while Parley is open in a tab.</p>
        ) : (
          <button onClick={() => void askForNotifications().then((p) => setNotify(p === 'granted'))}>Turn on notifications</button>
        )}
        <PushToggle session={session} />
      </section>
      <section>
        <h3>Calls</h3>
        <CallSoundSettings session={session} />
        <AlwaysRelaySetting session={session} />
      </section>
      <section>
        <h3>Theme</h3>
        <div class="choices" role="radiogroup" aria-label="Theme">
          {(['system', 'light', 'dark'] as const).map((t) => (
            <button
              key={t}
              role="radio"
              aria-checked={theme === t}
              onClick={() => {
                setTheme(t);
                setThemeState(t);
              }}
            >
              {t === 'system' ? 'Like the system' : t === 'light' ? 'Light' : 'Dark'}
            </button>
          ))}
        </div>
      </section>
      <section>
        <h3>Log out</h3>
        <p class="hint">Deletes this browser’s keys and messages. {c.isPrimary ? 'Your number stays registered; register again to use it here.' : 'This device is unlinked from your phone.'}</p>
        <button
          class="danger"
          onClick={() => {
            if (!confirm('Delete everything Parley keeps in this browser?')) return;
            const work = async (): Promise<void> => {
              await disablePushOnLogout(session);
              if (!c.isPrimary) await c.removeDevice(c.deviceId).catch(() => undefined);
              await session.close();
              await session.profile.destroy();
              props.onLoggedOut();
            };
            work().catch((err: unknown) => session.toast(errorInWords(err), true));
          }}
        >
          Log out and delete data
        </button>
      </section>
    </Modal>
  );
}

function Devices(props: { session: Session }): preact.JSX.Element {
  const { session } = props;
  const c = session.client;
  const [devices, setDevices] = useState<DeviceView[] | undefined>();
  const [uri, setUri] = useState('');
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  const [scanning, setScanning] = useState(false);
  useEffect(() => {
    c.devices()
      .then(setDevices)
      .catch((err: unknown) => setError(errorInWords(err)));
  }, [version]);
  const link = async (e: Event | undefined, code = uri): Promise<void> => {
    e?.preventDefault();
    setBusy(true);
    setError(undefined);
    setStatus('Linking… keep this open until the other device shows your chats.');
    try {
      const r = await c.linkDevice(code.trim());
      setStatus(`Linked as device ${r.deviceId}.`);
      setUri('');
      setVersion(version + 1);
    } catch (err) {
      setStatus(undefined);
      setError(errorInWords(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h3>Linked devices</h3>
      {devices && (
        <ul class="devices" aria-label="Devices">
          {devices.map((d) => (
            <li key={d.deviceId}>
              <span>
                {d.primary ? 'Primary' : (d.name ?? `Device ${d.deviceId}`)}
                {d.self ? ' (this browser)' : ''}
              </span>
              <span class="hint">{d.lastSeen > 0 ? lastSeen(d.lastSeen) : ''}</span>
              {c.isPrimary && !d.primary && (
                <button
                  aria-label={`Unlink device ${d.deviceId}`}
                  onClick={() => {
                    if (confirm('Unlink this device?'))
                      c.removeDevice(d.deviceId)
                        .then(() => setVersion(version + 1))
                        .catch((err: unknown) => setError(errorInWords(err)));
                  }}
                >
                  Unlink
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {c.isPrimary && (
        <form onSubmit={(e) => void link(e)}>
          <label>
            Link a device: paste the code it shows (parley://link/…)
            <textarea name="link-uri" rows={2} value={uri} onInput={(e) => setUri(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={busy || uri.trim() === ''}>
            {busy ? 'Linking…' : 'Link device'}
          </button>
          {!scanning && (
            <button type="button" onClick={() => setScanning(true)} disabled={busy}>
              Scan QR code
            </button>
          )}
          {scanning && (
            <QrScanner
              label="Scan the linking QR code"
              accept={(text) => text.startsWith('parley://link/')}
              rejectHint="That QR code is not a Parley linking code."
              onClose={() => setScanning(false)}
              onResult={(text) => {
                setScanning(false);
                setUri(text);
                void link(undefined, text);
              }}
            />
          )}
        </form>
      )}
      {status && <p role="status">{status}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

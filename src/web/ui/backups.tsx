/**
 * Backups in the web app (docs/backups.md "In the web app"): the Settings → Backups section (status, back up
 * now with progress, protection by a recovery key shown once and confirmed or by a password with a strength
 * hint, export to a file, automatic backups, deletion) and the restore offer shown after registering a number
 * that has a backup on the server. The work is done by ../model/backups.ts.
 */
import { useEffect, useState } from 'preact/hooks';
import type { BackupStatus } from '../../client/index.js';
import { autoBackupOf, backupErrorInWords, countOf, exportFileName, passwordStrength, progressInWords, sizeInWords, type AutoBackup, type BackupRun, type WebBackups } from '../model/backups.js';
import type { Session } from '../model/session.js';
import './backups.css';

/** Re-renders whenever the backups model notifies. */
function useBackups(backups: WebBackups): void {
  const [, setTick] = useState(0);
  useEffect(() => backups.subscribe(() => setTick((n) => n + 1)), [backups]);
}

function when(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The running backup or restore: a progress bar and its words. */
function Progress(props: { run: BackupRun }): preact.JSX.Element {
  const { text, fraction } = progressInWords(props.run.progress, props.run.kind);
  const label = props.run.kind === 'restore' ? 'Restore progress' : 'Backup progress';
  return (
    <div class="backup-progress">
      {/* Without a known total the bar is indeterminate (no value). */}
      <progress aria-label={label} max={1} value={fraction} />
      <span class="hint" aria-live="polite">
        {text}
      </span>
    </div>
  );
}

// ---- Settings → Backups -----------------------------------------------------------------------------------

/** The Backups section of Settings. */
export function BackupsSection(props: { session: Session }): preact.JSX.Element {
  const { backups } = props.session;
  useBackups(backups);
  const [loadError, setLoadError] = useState<string | undefined>();
  const [editing, setEditing] = useState(false);
  const [notice, setNotice] = useState<string | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  useEffect(() => {
    if (!backups.available) return;
    backups.refresh().catch((err: unknown) => setLoadError(backupErrorInWords(err)));
  }, [backups]);

  if (!backups.available) {
    return (
      <section aria-label="Backups">
        <h3>Backups</h3>
        <p class="hint">Backups are made by your primary device.</p>
      </section>
    );
  }
  const s = backups.status;
  const run = backups.running;
  const act = (work: () => Promise<string | undefined>): void => {
    setNotice(undefined);
    setActionError(undefined);
    work()
      .then((text) => setNotice(text))
      .catch((err: unknown) => setActionError(backupErrorInWords(err)));
  };
  const backUp = (): void => act(async () => {
    const r = await backups.backUpNow();
    return `Backed up ${countOf(r.counts.messages, 'message')}${r.counts.files > 0 ? ` and ${countOf(r.counts.files, 'file')}` : ''} (${sizeInWords(r.size)}).`;
  });
  const exportFile = (): void => act(async () => {
    const { blob, result } = await backups.exportToFile();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = exportFileName(result.createdAt);
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return `Saved ${a.download} (${sizeInWords(result.size)}). It opens only with your ${result.protectedBy.includes('recovery-key') ? 'recovery key' : 'password'}.`;
  });
  const remove = (): void => {
    if (!confirm('Delete the backup on the server? Your messages stay in this browser.')) return;
    act(async () => ((await backups.deleteFromServer()) ? 'The backup on the server was deleted.' : 'There was no backup on the server.'));
  };

  return (
    <section aria-label="Backups" class="backups">
      <h3>Backups</h3>
      <p class="hint">An end-to-end encrypted copy of your chats, kept on the server (or in a file) to restore on a new device. The server cannot read it.</p>
      {!s && !loadError && <p aria-busy="true">Checking…</p>}
      {loadError && (
        <p class="error" role="alert">
          {loadError}
        </p>
      )}
      {s && <StatusLines status={s} />}
      {s && (!s.configured || editing) && (
        <SetUp
          backups={backups}
          status={s}
          onCancel={s.configured ? () => setEditing(false) : undefined}
          onDone={(first) => {
            setEditing(false);
            if (first) backUp();
          }}
        />
      )}
      {s?.configured && !editing && (
        <>
          <div class="backup-actions">
            <button class="primary" disabled={run !== undefined} onClick={backUp}>
              Back up now
            </button>
            <button disabled={run !== undefined} onClick={exportFile}>
              Export to a file
            </button>
            <button disabled={run !== undefined} onClick={() => setEditing(true)}>
              Change protection
            </button>
          </div>
          <label class="check">
            <input
              type="checkbox"
              checked={s.includeMedia}
              disabled={run !== undefined}
              onChange={(e) => act(async () => (await backups.setIncludeMedia(e.currentTarget.checked), undefined))}
            />
            Include photos, videos and files
          </label>
          <Automatic backups={backups} status={s} onError={setActionError} />
          {s.server && (
            <button class="danger" disabled={run !== undefined} onClick={remove}>
              Delete backup on the server
            </button>
          )}
        </>
      )}
      {run && run.kind !== 'restore' && <Progress run={run} />}
      {notice && <p role="status">{notice}</p>}
      {(actionError ?? (run ? undefined : backups.error)) && (
        <p class="error" role="alert">
          {actionError ?? backups.error}
        </p>
      )}
    </section>
  );
}

function StatusLines(props: { status: BackupStatus }): preact.JSX.Element {
  const s = props.status;
  const protection = s.protectedBy.length === 0 ? 'not set up' : s.protectedBy.map((p) => (p === 'recovery-key' ? 'recovery key' : 'password')).join(' and ');
  return (
    <dl class="backup-status" aria-label="Backup status">
      <dt>Last backup</dt>
      <dd data-testid="last-backup">{s.server ? `${when(s.server.createdAt)} · ${sizeInWords(s.server.size)}` : 'none on the server'}</dd>
      <dt>Protection</dt>
      <dd>{protection}</dd>
      {s.nextBackupAt !== undefined && (
        <>
          <dt>Next automatic backup</dt>
          <dd>{s.nextBackupAt <= Date.now() ? 'due now' : when(s.nextBackupAt)}</dd>
        </>
      )}
      {s.server?.password?.locked && (
        <>
          <dt>Password</dt>
          <dd class="error">locked after too many wrong tries: set a new one</dd>
        </>
      )}
    </dl>
  );
}

/** Off, daily or weekly: kept in the profile's store; runs while the app is open. */
function Automatic(props: { backups: WebBackups; status: BackupStatus; onError: (text: string) => void }): preact.JSX.Element {
  const current = autoBackupOf(props.status.everyMs);
  const words: Record<AutoBackup, string> = { off: 'Off', daily: 'Daily', weekly: 'Weekly' };
  return (
    <div>
      <p id="auto-backup-label">Automatic backups</p>
      <div class="choices" role="radiogroup" aria-labelledby="auto-backup-label">
        {(['off', 'daily', 'weekly'] as const).map((c) => (
          <button key={c} role="radio" aria-checked={current === c} onClick={() => void props.backups.setAutomatic(c).catch((err: unknown) => props.onError(backupErrorInWords(err)))}>
            {words[c]}
          </button>
        ))}
      </div>
      <p class="hint">Made while Parley is open in this browser, once the last backup is older than a day or a week.</p>
    </div>
  );
}

/** Choosing the protection: a recovery key (shown once, confirmed) or a password (with a strength hint). */
function SetUp(props: { backups: WebBackups; status: BackupStatus; onCancel: (() => void) | undefined; onDone: (first: boolean) => void }): preact.JSX.Element {
  const { backups, status } = props;
  const [kind, setKind] = useState<'recovery-key' | 'password'>('recovery-key');
  const [includeMedia, setIncludeMedia] = useState(status.configured ? status.includeMedia : true);
  return (
    <div class="backup-setup">
      <p id="protection-label">Protect backups with</p>
      <div class="choices" role="radiogroup" aria-labelledby="protection-label">
        <button role="radio" aria-checked={kind === 'recovery-key'} onClick={() => setKind('recovery-key')}>
          A recovery key
        </button>
        <button role="radio" aria-checked={kind === 'password'} onClick={() => setKind('password')}>
          A password
        </button>
      </div>
      <label class="check">
        <input type="checkbox" checked={includeMedia} onChange={(e) => setIncludeMedia(e.currentTarget.checked)} />
        Include photos, videos and files
      </label>
      {kind === 'recovery-key' ? (
        <RecoveryKeySetUp key="rk" backups={backups} includeMedia={includeMedia} onDone={() => props.onDone(!status.configured)} />
      ) : (
        <PasswordSetUp key="pw" backups={backups} includeMedia={includeMedia} onDone={() => props.onDone(!status.configured)} />
      )}
      {props.onCancel && (
        <button type="button" class="link" onClick={props.onCancel}>
          Cancel
        </button>
      )}
    </div>
  );
}

function RecoveryKeySetUp(props: { backups: WebBackups; includeMedia: boolean; onDone: () => void }): preact.JSX.Element {
  const [key] = useState(() => props.backups.newRecoveryKey());
  const [step, setStep] = useState<'show' | 'confirm'>('show');
  const [copied, setCopied] = useState(false);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const lastGroup = key.slice(-4);
  if (step === 'show') {
    return (
      <div>
        <p>Your recovery key. Write it down or keep it in a password manager: it is shown only now, and without it (or a password) a backup cannot be opened — not even by us.</p>
        <output class="recovery-key" aria-label="Recovery key">
          {key}
        </output>
        <div class="backup-actions">
          <button
            type="button"
            onClick={() => {
              navigator.clipboard
                .writeText(key)
                .then(() => setCopied(true))
                .catch(() => setError('Copying is not allowed here: select the key and copy it yourself.'));
            }}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
          <button type="button" class="primary" onClick={() => setStep('confirm')}>
            I saved it
          </button>
        </div>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </div>
    );
  }
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (typed.replace(/\s/g, '') !== lastGroup) {
      setError('Those are not the last four digits of the key. Look at what you saved (or go back).');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await props.backups.useRecoveryKey(key, props.includeMedia);
      props.onDone();
    } catch (err) {
      setError(backupErrorInWords(err));
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)}>
      <label>
        To check that you saved it: the last four digits of the recovery key
        <input name="recovery-key-check" inputMode="numeric" autoComplete="off" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </label>
      <div class="backup-actions">
        <button type="button" onClick={() => setStep('show')} disabled={busy}>
          Show the key again
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Saving…' : 'Confirm'}
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function PasswordSetUp(props: { backups: WebBackups; includeMedia: boolean; onDone: () => void }): preact.JSX.Element {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const strength = passwordStrength(password);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (password !== again) {
      setError('The two passwords differ.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await props.backups.usePassword(password, props.includeMedia);
      props.onDone();
    } catch (err) {
      setError(backupErrorInWords(err));
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)}>
      <label>
        Backup password
        <input name="backup-password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      </label>
      {password !== '' && (
        <p class={`hint strength s${strength.score}`} role="status" data-score={strength.score}>
          <meter min={0} max={3} low={1.5} high={2.5} optimum={3} value={strength.score} aria-label="Password strength" /> {strength.words}
        </p>
      )}
      <label>
        The password again
        <input name="backup-password-again" type="password" autoComplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
      </label>
      <p class="hint">After 10 wrong tries the server stops helping to open a backup with this password. Whoever runs the server could still try guesses at its own pace: make it long.</p>
      <button type="submit" class="primary" disabled={busy || strength.score === 0}>
        {busy ? 'Deriving the key…' : 'Use this password'}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

// ---- restore after registration ---------------------------------------------------------------------------

/**
 * After registering a number: when the server holds a backup of this account, offers to restore it (recovery
 * key or password, from the server or a file) or to skip; otherwise calls `onDone` at once.
 */
export function RestoreOffer(props: { session: Session; onDone: () => void }): preact.JSX.Element {
  const { session } = props;
  const { backups } = session;
  useBackups(backups);
  const [checked, setChecked] = useState(false);
  const [kind, setKind] = useState<'recovery-key' | 'password'>('recovery-key');
  const [secret, setSecret] = useState('');
  const [file, setFile] = useState<File | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    backups
      .refresh()
      .then((s) => {
        if (!live) return;
        // Nothing to restore (or another release's server without backups): straight on.
        if (!s.server) props.onDone();
        else setChecked(true);
      })
      .catch(() => live && props.onDone());
    return () => {
      live = false;
    };
  }, [backups]);
  const server = backups.status?.server;
  if (!checked || !server) return <p aria-busy="true">Looking for a backup…</p>;
  const run = backups.running;
  const password = server.password;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      const r = await backups.restore(kind === 'recovery-key' ? { recoveryKey: secret, file } : { password: secret, file });
      await session.refreshChats();
      session.toast(`Restored ${countOf(r.imported.messages, 'message')}${r.imported.files > 0 ? ` and ${countOf(r.imported.files, 'file')}` : ''} from your backup. Set up backups for this browser in Settings.`);
      props.onDone();
    } catch (err) {
      setError(backupErrorInWords(err));
    }
  };
  return (
    <form class="restore" aria-label="Restore from backup" onSubmit={(e) => void submit(e)}>
      <h2>Restore from backup</h2>
      <p>
        This number has a backup from {when(server.createdAt)} ({sizeInWords(server.size)}). Restore your chats into this browser? Your contacts will see that your safety number
        changed.
      </p>
      <div class="choices" role="radiogroup" aria-label="Open it with">
        <button type="button" role="radio" aria-checked={kind === 'recovery-key'} onClick={() => setKind('recovery-key')}>
          Recovery key
        </button>
        {password && (
          <button type="button" role="radio" aria-checked={kind === 'password'} onClick={() => setKind('password')}>
            Password
          </button>
        )}
      </div>
      {kind === 'recovery-key' ? (
        <label>
          Recovery key (64 digits)
          <textarea name="recovery-key" rows={2} autoComplete="off" spellcheck={false} value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </label>
      ) : (
        <label>
          Backup password
          <input name="backup-password" type="password" autoComplete="current-password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </label>
      )}
      {kind === 'password' && password && (
        <p class="hint">{password.locked ? 'Too many wrong passwords were tried: only the recovery key opens this backup now.' : `${password.attemptsLeft} tries left before the server stops helping with the password.`}</p>
      )}
      <label>
        Or restore from an exported file (optional)
        <input name="backup-file" type="file" accept=".parleybackup,application/octet-stream" onChange={(e) => setFile(e.currentTarget.files?.[0])} />
      </label>
      {run && <Progress run={run} />}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="backup-actions">
        <button type="submit" class="primary" disabled={run !== undefined || secret.trim() === ''}>
          {run ? 'Restoring…' : 'Restore'}
        </button>
        <button type="button" disabled={run !== undefined} onClick={props.onDone}>
          Skip
        </button>
      </div>
    </form>
  );
}

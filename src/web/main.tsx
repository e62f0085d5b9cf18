/**
 * The web app's entry: opens the browser profile, shows onboarding when it holds no account, else the
 * messenger. All encryption happens here, in the page: the server only ever sees ciphertext.
 */
import { render } from 'preact';
import { useState } from 'preact/hooks';
import { openProfile, type Profile } from './model/profile.js';
import { Session } from './model/session.js';
import { errorInWords } from './model/errors.js';
import { Messenger } from './ui/messenger.js';
import { Onboarding } from './ui/onboarding.js';
import { applyTheme } from './ui/theme.js';
import { registerServiceWorker } from './pwa.js';
import './styles.css';

function Root(props: { profile: Profile; session: Session | undefined }): preact.JSX.Element {
  const [session, setSession] = useState(props.session);
  if (session) {
    return (
      <Messenger
        session={session}
        onLoggedOut={() => {
          location.hash = '';
          location.reload();
        }}
      />
    );
  }
  return <Onboarding profile={props.profile} onReady={setSession} />;
}

async function boot(): Promise<void> {
  applyTheme();
  const el = document.getElementById('app') as HTMLElement;
  try {
    const profile = await openProfile();
    const account = await profile.store.transaction((tx) => tx.account.get());
    const session = account ? await Session.open(profile) : undefined;
    el.textContent = '';
    render(<Root profile={profile} session={session} />, el);
  } catch (err) {
    console.error('parley: start failed', err);
    el.innerHTML = '';
    const p = document.createElement('p');
    p.className = 'boot error';
    p.setAttribute('role', 'alert');
    p.textContent = `Parley could not start: ${errorInWords(err)}`;
    el.append(p);
  }
  registerServiceWorker();
}

void boot();

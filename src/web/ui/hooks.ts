/** Small hooks shared by the screens. */
import { useEffect, useState } from 'preact/hooks';
import type { Session } from '../model/session.js';

/** Re-renders the component whenever the session notifies. */
export function useSession(session: Session): void {
  const [, setTick] = useState(0);
  useEffect(() => session.subscribe(() => setTick((n) => n + 1)), [session]);
}

/** The location hash (`#/chat/<id>`), kept in sync with the browser's history. */
export function useHashRoute(): [string, (to: string) => void] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return [hash, (to) => (location.hash = to)];
}

/** Whether the browser thinks it is online (navigator.onLine and its events). */
export function useBrowserOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const up = (): void => setOnline(true);
    const down = (): void => setOnline(false);
    addEventListener('online', up);
    addEventListener('offline', down);
    return () => {
      removeEventListener('online', up);
      removeEventListener('offline', down);
    };
  }, []);
  return online;
}

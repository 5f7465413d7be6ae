/**
 * Runs `load` now and every `everyMs` while the component is mounted (for useEffect).
 * `load` is told whether its run is still current: once the effect is cleaned up (its
 * inputs changed, say a new search), an answer it was waiting for must not be shown,
 * as it may land after the answer to the newer run.
 */
export function poll(load: (current: () => boolean) => Promise<void>, everyMs: number): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const current = (): boolean => !stopped;
  const run = async (): Promise<void> => {
    await load(current);
    if (!stopped) timer = setTimeout(() => void run(), everyMs);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

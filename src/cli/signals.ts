/**
 * One AbortSignal for the whole command, fired by Ctrl-C or SIGTERM: every engine call takes it, so
 * an interrupted copy or build stops where it is, leaving nothing half-visible (destinations commit
 * last). A second signal exits at once.
 */
export function signalOnInterrupt(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller.signal;
}

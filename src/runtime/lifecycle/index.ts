export { containerState, waitMonitorGone, type ContainerLiveness } from './state.js';
export { signalContainer, stopContainer, DEFAULT_STOP_GRACE_MS, type StopOptions } from './stop.js';
export { removeContainer, ContainerRunningError, type RemoveOptions } from './remove.js';
export { startDetached, writeJobFile, runMonitorJob, type DetachedStart, type MonitorJob, type StartFailure } from './monitor.js';
export { startFailureExitCode } from './exit-status.js';

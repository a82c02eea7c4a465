export { runContainer, ContainerStartError, type ExitReason, type RunOptions, type RunResult } from './container.js';
export {
  generateSpec,
  commandLine,
  mergeEnv,
  parseEntrypoint,
  NoCommandError,
  DEFAULT_CAPABILITIES,
  type RuntimeSpec,
  type SpecOptions,
  type BindMount,
} from './spec.js';
export { ociRuntime, classifyStartFailure, RuntimeUnavailableError, RUNTIME_NAMES, type OciRuntime, type RuntimeName } from './oci-runtime.js';
export { resolveUser, UnknownUserError, type ResolvedUser } from './users.js';
export { K8sFileLog, parseK8sLog, rfc3339Nano } from './logs.js';
export { rootlessMappings, subordinateRanges } from './idmap.js';
export { callerLimits, parseProcLimits, type CallerLimits } from './limits.js';
export { cgroupMode, availableControllers, type CgroupMode } from './cgroups.js';
export { defaultSeccompProfile } from './seccomp.js';
export * from './store/index.js';

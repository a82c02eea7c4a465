// The mapping lives with the container lifecycle (runtime/lifecycle/exit-status.ts): the detached
// monitor and the node agent need it too.
export { startFailureExitCode } from '../runtime/lifecycle/exit-status.js';

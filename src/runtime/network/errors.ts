import { StevedoreError } from '../../util/errors.js';

/** The private network could not be made: no pasta/slirp4netns, a port already bound, a failed namespace. */
export class NetworkSetupError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('NETWORK_SETUP_FAILED', message, opts);
  }
}

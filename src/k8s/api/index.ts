export * from './common.js';
export * from './schema.js';
export * from './kind.js';
export * from './imagebuild.js';
export * from './imagemirror.js';
export * from './containerrun.js';

import { containerRunKind } from './containerrun.js';
import { imageBuildKind } from './imagebuild.js';
import { imageMirrorKind } from './imagemirror.js';
import type { KindDefinition } from './kind.js';

/** The three Stevedore kinds, in the order their CRDs are generated. */
export const KINDS: readonly KindDefinition[] = [imageBuildKind, imageMirrorKind, containerRunKind];

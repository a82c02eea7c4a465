/**
 * Exit codes, as Podman's: 125 for an error of the tool itself (bad flag, failed copy), 126 when the
 * container's command cannot be invoked, 127 when it is not found. Kept free of imports: main.ts
 * loads this for every verb.
 */
export const EXIT_TOOL_ERROR = 125;
export const EXIT_CANNOT_INVOKE = 126;
export const EXIT_NOT_FOUND = 127;

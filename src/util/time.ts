/**
 * Timestamps as Kubernetes and the OCI/SPDX documents write them. `Date.toISOString()` always has
 * milliseconds (`2026-12-06T12:00:00.123Z`), which is neither form:
 *
 * - `rfc3339Seconds`: whole seconds, `2026-12-06T12:00:00Z`: Kubernetes `metav1.Time` (condition
 *   transition times, status timestamps), OCI `created` annotations, SPDX/CycloneDX creation times.
 * - `rfc3339Micro`: six fraction digits, `2026-12-06T12:00:00.123000Z`: Kubernetes
 *   `metav1.MicroTime` (an Event's `eventTime`, a Lease's `acquireTime`/`renewTime`).
 */
export function rfc3339Seconds(d: Date = new Date()): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export function rfc3339Micro(d: Date = new Date()): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}

import { parseStanzas, type FoundPackage } from './found.js';

/** `…/*.dist-info/METADATA`, `…/*.egg-info/PKG-INFO`, or an `…/*.egg-info` file (setuptools' single-file form). */
export function isPythonMetadata(path: string): boolean {
  return /\.dist-info\/METADATA$/.test(path) || /\.egg-info\/PKG-INFO$/.test(path) || /\.egg-info$/.test(path);
}

/** Trove classifiers that name a license, reduced to the name after the last `::`. */
function classifierLicense(classifier: string): string | undefined {
  if (!classifier.startsWith('License ::')) return undefined;
  const name = classifier.split('::').pop()!.trim();
  return name === 'OSI Approved' ? undefined : name;
}

/**
 * Core metadata (PEP 241/314/345/566/639): email-style headers up to the first blank line (the
 * body is the description). License, in order of preference: `License-Expression` (metadata 2.4),
 * a short one-line `License:`, else the license classifiers.
 */
export function parsePythonMetadata(text: string): FoundPackage[] {
  const head = parseStanzas(text, { stopAtBlank: true })[0];
  if (!head) return [];
  const name = head.fields.get('Name');
  const version = head.fields.get('Version');
  if (!name || !version) return [];
  let licenses: string[] = [];
  const expr = head.fields.get('License-Expression');
  const lic = head.fields.get('License');
  if (expr) licenses = [expr];
  else if (lic && !lic.includes('\n') && lic.length <= 80 && lic.toUpperCase() !== 'UNKNOWN') licenses = [lic];
  else licenses = (head.all.get('Classifier') ?? []).map(classifierLicense).filter((l): l is string => l !== undefined);
  return [{ type: 'pypi', name, version, licenses, foundBy: 'python-metadata' }];
}

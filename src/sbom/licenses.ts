/**
 * License names as packages write them, mapped to SPDX license identifiers where the mapping is
 * unambiguous. Everything else is kept as a name: SPDX output turns it into a `LicenseRef-`, and
 * CycloneDX into `license.name`, so nothing is claimed that the package did not say.
 */

/** SPDX identifiers this module may emit (all on the SPDX license list). */
const SPDX_IDS = [
  '0BSD',
  'AFL-2.1',
  'AFL-3.0',
  'AGPL-3.0-only',
  'AGPL-3.0-or-later',
  'Apache-1.1',
  'Apache-2.0',
  'APSL-2.0',
  'Artistic-1.0',
  'Artistic-1.0-Perl',
  'Artistic-2.0',
  'Beerware',
  'BlueOak-1.0.0',
  'BSD-1-Clause',
  'BSD-2-Clause',
  'BSD-3-Clause',
  'BSD-4-Clause',
  'BSL-1.0',
  'bzip2-1.0.6',
  'CC-BY-3.0',
  'CC-BY-4.0',
  'CC-BY-SA-3.0',
  'CC-BY-SA-4.0',
  'CC0-1.0',
  'CDDL-1.0',
  'CDDL-1.1',
  'curl',
  'EPL-1.0',
  'EPL-2.0',
  'EUPL-1.2',
  'FSFAP',
  'FSFUL',
  'FSFULLR',
  'FTL',
  'GFDL-1.2-only',
  'GFDL-1.2-or-later',
  'GFDL-1.3-only',
  'GFDL-1.3-or-later',
  'GPL-1.0-only',
  'GPL-1.0-or-later',
  'GPL-2.0-only',
  'GPL-2.0-or-later',
  'GPL-3.0-only',
  'GPL-3.0-or-later',
  'HPND',
  'ICU',
  'IJG',
  'ISC',
  'LGPL-2.0-only',
  'LGPL-2.0-or-later',
  'LGPL-2.1-only',
  'LGPL-2.1-or-later',
  'LGPL-3.0-only',
  'LGPL-3.0-or-later',
  'Libpng',
  'libtiff',
  'MIT',
  'MIT-0',
  'MPL-1.1',
  'MPL-2.0',
  'MS-PL',
  'NCSA',
  'OFL-1.1',
  'OpenSSL',
  'PHP-3.01',
  'PostgreSQL',
  'PSF-2.0',
  'Python-2.0',
  'Ruby',
  'Sleepycat',
  'TCL',
  'Unicode-DFS-2016',
  'Unlicense',
  'UPL-1.0',
  'Vim',
  'W3C',
  'WTFPL',
  'X11',
  'Zlib',
  'ZPL-2.1',
];
const BY_LOWER = new Map(SPDX_IDS.map((id) => [id.toLowerCase(), id]));

/** Debian (DEP-5) short names, Python classifier names and common spellings, lower-cased. */
const ALIASES: Record<string, string> = {
  'gpl-1': 'GPL-1.0-only',
  'gpl-1+': 'GPL-1.0-or-later',
  'gpl-2': 'GPL-2.0-only',
  'gpl-2+': 'GPL-2.0-or-later',
  'gpl-3': 'GPL-3.0-only',
  'gpl-3+': 'GPL-3.0-or-later',
  'lgpl-2': 'LGPL-2.0-only',
  'lgpl-2+': 'LGPL-2.0-or-later',
  'lgpl-2.1': 'LGPL-2.1-only',
  'lgpl-2.1+': 'LGPL-2.1-or-later',
  'lgpl-3': 'LGPL-3.0-only',
  'lgpl-3+': 'LGPL-3.0-or-later',
  'agpl-3': 'AGPL-3.0-only',
  'agpl-3+': 'AGPL-3.0-or-later',
  'gfdl-1.2': 'GFDL-1.2-only',
  'gfdl-1.2+': 'GFDL-1.2-or-later',
  'gfdl-1.3': 'GFDL-1.3-only',
  'gfdl-1.3+': 'GFDL-1.3-or-later',
  'gpl-2.0': 'GPL-2.0-only',
  'gpl-2.0+': 'GPL-2.0-or-later',
  'gpl-3.0': 'GPL-3.0-only',
  'gpl-3.0+': 'GPL-3.0-or-later',
  'lgpl-2.1-or-later': 'LGPL-2.1-or-later',
  'apache-2': 'Apache-2.0',
  'apache 2.0': 'Apache-2.0',
  apache2: 'Apache-2.0',
  'apache license 2.0': 'Apache-2.0',
  'apache software license': 'Apache-2.0',
  expat: 'MIT',
  'mit license': 'MIT',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'isc license': 'ISC',
  'isc license (iscl)': 'ISC',
  'mozilla public license 2.0 (mpl 2.0)': 'MPL-2.0',
  'mpl-2': 'MPL-2.0',
  zlib: 'Zlib',
  psf: 'PSF-2.0',
  'python software foundation license': 'PSF-2.0',
  cc0: 'CC0-1.0',
  boost: 'BSL-1.0',
  'artistic-2': 'Artistic-2.0',
};

/** The SPDX identifier for one license name, or undefined when it has none we can be sure of. */
export function spdxId(name: string): string | undefined {
  const key = name.trim().toLowerCase();
  const alias = ALIASES[key];
  if (alias) return alias;
  return BY_LOWER.get(key);
}

const EXPR_TOKEN = /\(|\)|[^\s()]+/g;

/**
 * A license value as an SPDX expression over identifiers we know (e.g. `MIT OR Apache-2.0`,
 * `GPL-2.0-or-later WITH Classpath-exception-2.0` is not, since the exception is not listed here),
 * or undefined when any part is unknown.
 */
export function spdxExpression(value: string): string | undefined {
  const tokens = value.match(EXPR_TOKEN) ?? [];
  if (tokens.length === 0) return undefined;
  const out: string[] = [];
  for (const t of tokens) {
    const upper = t.toUpperCase();
    if (t === '(' || t === ')') out.push(t);
    else if (upper === 'AND' || upper === 'OR') out.push(upper);
    else {
      const id = spdxId(t);
      if (!id) return undefined;
      out.push(id);
    }
  }
  return out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
}

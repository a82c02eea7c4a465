import { describe, expect, it } from 'vitest';
import { expandWord, expandWords, ExpansionError } from '../../src/build/containerfile/index.js';

const env = new Map([
  ['A', 'a'],
  ['EMPTY', ''],
  ['SPACED', 'x  y'],
  ['PATHV', '/usr/local/bin/app.tar.gz'],
  ['_u1', 'under'],
]);

describe('expandWord: BuildKit shell-lexer semantics', () => {
  it.each([
    ['$A', 'a', 'plain $name'],
    ['${A}', 'a', 'braced ${name}'],
    ['${A}b', 'ab', 'braces delimit the name'],
    ['$Ab', '', '$Ab is the (unset) variable Ab'],
    ['$_u1', 'under', 'names may hold _ and digits'],
    ['$UNSET', '', 'unset expands to empty'],
    ['$', '$', 'a lone $ is literal'],
    ['$/x', '$/x', '$ followed by a non-name character is literal'],
    ['${UNSET:-d}', 'd', ':- default when unset'],
    ['${EMPTY:-d}', 'd', ':- default when empty'],
    ['${EMPTY-d}', '', '- default only when unset, empty stays empty'],
    ['${UNSET-d}', 'd', '- default when unset'],
    ['${A:-d}', 'a', ':- keeps a set value'],
    ['${A:+alt}', 'alt', ':+ alternative when set and non-empty'],
    ['${EMPTY:+alt}', '', ':+ nothing when empty'],
    ['${EMPTY+alt}', 'alt', '+ alternative when set, even empty'],
    ['${UNSET+alt}', '', '+ nothing when unset'],
    ['${UNSET:-$A}', 'a', 'the default word is itself expanded'],
    ['${UNSET:-"x y"}', 'x y', 'the default word handles quotes'],
    ['${A:?must}', 'a', ':? passes a set value through'],
    ['${PATHV#*/}', 'usr/local/bin/app.tar.gz', '# removes the shortest prefix match'],
    ['${PATHV##*/}', 'app.tar.gz', '## removes the longest prefix match'],
    ['${PATHV%.*}', '/usr/local/bin/app.tar', '% removes the shortest suffix match'],
    ['${PATHV%%.*}', '/usr/local/bin/app', '%% removes the longest suffix match'],
    ['${PATHV/local/opt}', '/usr/opt/bin/app.tar.gz', '/ replaces the first match'],
    ['${A//a/bb}', 'bb', '// replaces every match'],
    ['\\$A', '$A', 'the escape character protects $'],
    ['a\\ b', 'a b', 'an escaped blank is kept'],
    ['\\x', 'x', 'outside quotes the escape just drops'],
    ["'$A'", '$A', 'single quotes suppress expansion'],
    ["'a\\b'", 'a\\b', 'no escapes inside single quotes'],
    ['"$A"', 'a', 'double quotes allow expansion'],
    ['"\\$A"', '$A', 'inside double quotes \\$ escapes $'],
    ['"a\\nb"', 'a\\nb', 'inside double quotes other escapes stay literal (as in sh)'],
    ['"q\\"q"', 'q"q', 'inside double quotes \\" is a quote'],
    ['x"$SPACED"y', 'xx  yy', 'quotes concatenate with neighbours'],
    ['$SPACED', 'x  y', 'expandWord keeps whitespace of values'],
    ['trailing\\', 'trailing', 'a trailing escape vanishes'],
  ])('%s → %s (%s)', (word, want) => {
    expect(expandWord(word, env)).toBe(want);
  });

  it('uses the file escape character (# escape=`): `$A is literal, \\ is an ordinary character', () => {
    expect(expandWord('`$A', env, { escape: '`' })).toBe('$A');
    expect(expandWord('C:\\dir\\$A', env, { escape: '`' })).toBe('C:\\dir\\a');
  });

  it.each([
    ['${UNSET:?}', 'UNSET: is not allowed to be unset'],
    ['${UNSET?}', 'UNSET: is not allowed to be unset'],
    ['${EMPTY:?}', 'EMPTY: is not allowed to be empty'],
    ['${UNSET:?custom message}', 'UNSET: custom message'],
    ['${A', "syntax error: missing '}'"],
    ['${}', 'syntax error: bad substitution'],
    ['${:x}', 'syntax error: bad substitution'],
    ['${A:x}', 'unsupported modifier (:x) in substitution'],
    ['${A:#x}', 'unsupported modifier (:#) in substitution'],
    ["'open", 'unexpected end of statement while looking for matching single-quote'],
    ['"open', 'unexpected end of statement while looking for matching double-quote'],
  ])('%s fails: %s', (word, message) => {
    expect(() => expandWord(word, env)).toThrow(ExpansionError);
    expect(() => expandWord(word, env)).toThrow(message);
  });

  it('${X?msg} fails only when unset, ${X:?} also when empty', () => {
    expect(expandWord('${EMPTY?msg}', env)).toBe('');
  });

  it('accepts a record or a lookup function as the variables', () => {
    expect(expandWord('$A', { A: '1' })).toBe('1');
    expect(expandWord('$A-$B', (n) => (n === 'A' ? 'x' : undefined))).toBe('x-');
    expect(expandWord('$constructor', {})).toBe('');
  });

  it('skipUnset leaves unknown references as written', () => {
    expect(expandWord('$A $B ${C:-d}', env, { skipUnset: true })).toBe('a $B ${C:-d}');
  });
});

describe('expandWords: word splitting', () => {
  it.each([
    ['a b  c', ['a', 'b', 'c']],
    ['"a b" c', ['a b', 'c']],
    ["'a b'c d", ['a bc', 'd']],
    ['$SPACED z', ['x', 'y', 'z']],
    ['"$SPACED" z', ['x  y', 'z']],
    ['a\\ b', ['a b']],
    ['"" x', ['x']],
  ])('%s → %j (unquoted variable values split, quoted ones do not)', (word, want) => {
    expect(expandWords(word, env)).toEqual(want);
  });
});

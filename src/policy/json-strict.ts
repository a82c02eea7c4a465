/**
 * JSON.parse keeps the last of two equal keys silently; containers/image refuses a policy with a
 * duplicated field (the file is ambiguous: which requirement did the author mean?). This scans the
 * text once, after JSON.parse has vouched for its syntax, and names the first duplicated key.
 */
export function findDuplicateKey(text: string): { key: string; path: string } | undefined {
  const stack: Array<{ keys: Set<string> | null; path: string; pendingKey?: string; index: number }> = [];
  let i = 0;
  const readString = (): string => {
    let out = '';
    i++; // opening quote
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return JSON.parse(`"${out}"`) as string;
      }
      if (c === '\\') {
        out += c + text[i + 1];
        i += 2;
        continue;
      }
      out += c;
      i++;
    }
    return out;
  };
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    if (top.keys)
      return `${top.path}${JSON.stringify([top.pendingKey ?? ''])
        .slice(1, -1)
        .replace(/^"(.*)"$/, '.$1')}`;
    return `${top.path}[${top.index}]`;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{' || c === '[') {
      stack.push({ keys: c === '{' ? new Set() : null, path: childPath(), index: 0 });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === '"') {
      const s = readString();
      const top = stack[stack.length - 1];
      // A string in an object followed by ':' is a key.
      let j = i;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      if (top?.keys && text[j] === ':') {
        if (top.keys.has(s)) return { key: s, path: top.path || '(top level)' };
        top.keys.add(s);
        top.pendingKey = s;
      }
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.index++;
      i++;
    } else {
      i++;
    }
  }
  return undefined;
}

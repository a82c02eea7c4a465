/**
 * When a scheduled object runs next: standard 5-field cron expressions (minute hour day-of-month
 * month day-of-week; `*`, lists, ranges, steps, month and day names; day-of-month and day-of-week
 * OR-ed as in Vixie cron) in an IANA time zone. Intervals are Go durations (util/duration.ts).
 */

interface CronFields {
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domStar: boolean;
  dowStar: boolean;
}

const NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};

function field(text: string, min: number, max: number, what: string): Set<number> {
  const out = new Set<number>();
  const num = (s: string) => {
    const v = NAMES[s.toLowerCase()] ?? (/^\d+$/.test(s) ? Number(s) : NaN);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`cron ${what}: "${s}" is not in ${min}-${max}`);
    return v;
  };
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`cron ${what}: bad step in "${part}"`);
    let lo: number;
    let hi: number;
    if (range === '*') [lo, hi] = [min, max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      [lo, hi] = [num(a), num(b)];
      if (lo > hi) throw new Error(`cron ${what}: empty range "${range}"`);
    } else {
      lo = num(range);
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): CronFields {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`cron expression "${expr}" must have 5 fields`);
  const [mi, h, dom, mo, dow] = parts as [string, string, string, string, string];
  const dowSet = field(dow, 0, 7, 'day of week');
  if (dowSet.delete(7)) dowSet.add(0);
  return {
    minute: field(mi, 0, 59, 'minute'),
    hour: field(h, 0, 23, 'hour'),
    dom: field(dom, 1, 31, 'day of month'),
    month: field(mo, 1, 12, 'month'),
    dow: dowSet,
    domStar: dom.startsWith('*'),
    dowStar: dow.startsWith('*'),
  };
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function localFields(fmt: Intl.DateTimeFormat, t: number) {
  const p: Record<string, string> = {};
  for (const x of fmt.formatToParts(new Date(t))) p[x.type] = x.value;
  return { month: Number(p.month), day: Number(p.day), dow: WEEKDAYS[p.weekday!]!, hour: Number(p.hour) % 24, minute: Number(p.minute) };
}

/** The first time strictly after `from` that matches the expression in `timeZone` (default UTC). */
export function nextCron(expr: string, from: Date, timeZone = 'UTC'): Date {
  const c = parseCron(expr);
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    month: 'numeric',
    day: 'numeric',
    weekday: 'short',
    hour: 'numeric',
    minute: 'numeric',
  });
  let t = Math.floor(from.getTime() / 60_000) * 60_000 + 60_000;
  const limit = t + 5 * 366 * 86_400_000;
  while (t < limit) {
    const l = localFields(fmt, t);
    const domOk = c.dom.has(l.day);
    const dowOk = c.dow.has(l.dow);
    const dayOk = c.domStar || c.dowStar ? domOk && dowOk : domOk || dowOk;
    if (!c.month.has(l.month) || !dayOk) t += ((23 - l.hour) * 60 + (60 - l.minute)) * 60_000;
    else if (!c.hour.has(l.hour)) t += (60 - l.minute) * 60_000;
    else if (!c.minute.has(l.minute)) t += 60_000;
    else return new Date(t);
  }
  throw new Error(`cron expression "${expr}" never matches`);
}

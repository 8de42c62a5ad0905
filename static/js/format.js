// Dates and numbers for people.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const shortDayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const time = (iso) => timeFmt.format(new Date(iso));
export const full = (iso) => (iso ? fullFmt.format(new Date(iso)) : '');
export const dayKey = (iso) => {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
};

export function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return dayFmt.format(d);
}

/** List timestamps: time today, else a short date. */
export function when(iso) {
  if (!iso) return '';
  return dayKey(iso) === dayKey(new Date()) ? time(iso) : shortDayFmt.format(new Date(iso));
}

/** "in 3 h 20 min" / "5 min ago" */
export function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const abs = Math.abs(ms);
  const mins = Math.round(abs / 60000);
  const text = mins < 60 ? `${mins} min` : `${Math.floor(mins / 60)} h ${mins % 60} min`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** +15550100111 style from stored digits. */
export function phone(digits) {
  if (!digits) return '';
  const d = String(digits);
  return d.startsWith('+') ? d : `+${d}`;
}

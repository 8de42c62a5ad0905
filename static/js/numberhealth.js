// A number's health as Meta reports it (quality rating, messaging limit, account status) and
// the warning admins get when it is flagged, restricted or its quality drops: on the Numbers
// page and, for admins and members who manage numbers, in the header (live on number.updated).

import { h } from './dom.js';
import { phone } from './format.js';

const QUALITY = {
  FLAGGED: 'Meta flagged this number’s quality',
  RED: 'Quality rating is low (red)',
  YELLOW: 'Quality rating dropped to medium (yellow)',
};
const ACCOUNT = {
  restricted: 'Meta restricted this account’s messaging',
  scheduled_for_disable: 'Meta scheduled this account to be disabled',
  disabled: 'Meta disabled this account',
  disconnected: 'Meta disconnected this number',
  deleted: 'Meta deleted this account',
};

/** What is wrong with a connected number (a list of sentences; empty when nothing is). */
export function healthProblems(n) {
  if (!n || n.connected === false || n.disconnected_at) return [];
  return [QUALITY[n.quality_rating], ACCOUNT[n.account_status]].filter(Boolean);
}

/** Readable values for the facts list. */
export function qualityText(q) {
  return q ? { GREEN: 'High (green)', YELLOW: 'Medium (yellow)', RED: 'Low (red)', FLAGGED: 'Flagged', UNKNOWN: 'Unknown' }[q] || q : 'Not reported yet';
}
export function tierText(t) {
  if (!t) return 'Not reported yet';
  const m = /^TIER_(.+)$/.exec(t);
  if (!m) return t;
  return m[1] === 'UNLIMITED' ? 'Unlimited' : m[1] === 'NOT_SET' ? 'Not set' : `${m[1]} conversations a day`;
}
export function accountText(s) {
  return s ? s.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()) : 'Not reported yet';
}

/**
 * The header's warning: a link to the Numbers page naming what is wrong, hidden while every
 * number is fine. Only for those who may manage numbers.
 */
export function healthAlert(ctx) {
  const link = h('a', { href: '#/numbers', class: 'health-alert', id: 'number-health-alert', hidden: true });
  if (!(ctx.isAdmin || ctx.perms.manage_integrations)) return { el: link, destroy() {} };
  const numbers = new Map();
  const show = () => {
    const bad = [...numbers.values()].filter((n) => healthProblems(n).length);
    link.hidden = !bad.length;
    if (!bad.length) {
      link.textContent = '';
      return;
    }
    const what = bad.length === 1 ? `${phone(bad[0].display_phone_number)}: ${healthProblems(bad[0])[0]}` : `${bad.length} numbers need attention`;
    link.textContent = `⚠ ${what}`;
    link.title = 'WhatsApp number health: open the Numbers settings';
  };
  const load = async () => {
    try {
      const page = await ctx.api.get('/numbers');
      numbers.clear();
      for (const n of page.numbers) numbers.set(n.id, n);
      show();
    } catch {
      /* stays as it was */
    }
  };
  const off = ctx.live.on((e) => {
    if (e.type === 'number.updated' && e.data && e.data.id) {
      numbers.set(e.data.id, e.data);
      show();
    } else if (e.type === 'resync') load();
  });
  load();
  return { el: link, destroy: off };
}

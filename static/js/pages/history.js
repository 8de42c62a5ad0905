// Distribution history (admins and members with manage_integrations): one row per lead and
// recipient, newest first, with each channel's delivery (queued, sent, failed with the
// reason). Paged with "Show older"; "Refresh" reads the newest again.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full, phone } from '../format.js';
import { settingsFrame, notAllowed, errorLine } from '../settings.js';

const CHANNEL = { app: 'Switchboard', email: 'Email', whatsapp: 'WhatsApp' };
const STATUS = { queued: 'Queued', sent: 'Sent', failed: 'Failed' };

export function render(root, ctx) {
  if (!(ctx.isAdmin || ctx.perms.manage_integrations)) return notAllowed(root, 'Distribution history', 'admins and members with the “Manage integrations” permission');
  const body = settingsFrame(root, 'Distribution history', 'Which lead went to whom, by which channel, and whether it arrived. Newest first.');
  let destroyed = false;
  let cursor = null;

  const error = errorLine('history-error');
  const rows = h('tbody', { id: 'history-rows' });
  const table = h(
    'table',
    { class: 'data-table', 'aria-label': 'Distribution history' },
    h('thead', {}, h('tr', {}, ['When', 'Lead', 'Rule', 'Recipient', 'Deliveries', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
    rows,
  );
  const more = h('button', { type: 'button', class: 'btn', id: 'history-more', hidden: true }, 'Show older');
  more.addEventListener('click', () => load(false));
  const refresh = h('button', { type: 'button', class: 'btn', id: 'history-refresh' }, 'Refresh');
  refresh.addEventListener('click', () => load(true));
  const empty = h('p', { class: 'muted', id: 'history-empty', hidden: true }, 'Nothing distributed yet. Rules are set on the Distribution page.');
  replace(body, h('div', { class: 'form-actions' }, refresh, h('a', { href: '#/distribution', class: 'btn ghost' }, 'Distribution rules')), error, empty, h('div', { class: 'table-scroll' }, table), h('div', { class: 'form-actions' }, more));

  async function load(fresh) {
    let page;
    try {
      page = await api.get('/distribution/history', { limit: 50, cursor: fresh ? null : cursor });
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    if (destroyed) return;
    error.textContent = '';
    if (fresh) replace(rows);
    rows.append(...page.entries.map(row));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    empty.hidden = rows.children.length > 0;
  }

  function row(e) {
    const lead = [e.lead.name, e.lead.phone ? phone(e.lead.phone) : null, e.lead.source].filter(Boolean);
    const deliveries = h(
      'ul',
      { class: 'plain' },
      (e.deliveries || []).map((d) => h('li', { dataset: { channel: d.channel, status: d.status } }, `${CHANNEL[d.channel] || d.channel}: ${STATUS[d.status] || d.status}`, d.reason ? h('span', { class: 'muted small' }, ` — ${d.reason}`) : null)),
    );
    return h(
      'tr',
      { dataset: { entry: e.id } },
      h('td', {}, h('time', { datetime: e.at }, full(e.at))),
      h('td', {}, h('span', { class: 'member-name' }, lead[0]), lead.length > 1 ? h('span', { class: 'muted small' }, ` ${lead.slice(1).join(' · ')}`) : null),
      h('td', {}, e.rule),
      h('td', {}, e.recipient_email),
      h('td', {}, deliveries),
      h('td', {}, h('span', { class: `chip state state-${e.status}`, dataset: { status: e.status } }, STATUS[e.status] || e.status)),
    );
  }

  load(true);
  return {
    destroy() {
      destroyed = true;
    },
  };
}

// Activity: the timeline across every lead the caller can see (GET /activities), newest
// first, filtered by type, member, number and dates, paged by cursor. Each row opens its lead
// (on the Leads page) and, for an activity of a chat, the chat.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full, when } from '../format.js';
import { field, errorLine } from '../settings.js';

export const KINDS = [
  ['', 'Any activity'],
  ['whatsapp_session', 'WhatsApp sessions'],
  ['note', 'Notes'],
  ['assigned', 'Assignments'],
  ['claimed', 'Claims'],
  ['status_changed', 'Status changes'],
  ['lead_created', 'New leads'],
  ['label_added', 'Labels added'],
  ['label_removed', 'Labels removed'],
  ['message_sent', 'Messages sent'],
  ['access_granted', 'Access granted'],
  ['access_revoked', 'Access revoked'],
  ['call', 'Calls'],
];

const KIND_TITLE = {
  whatsapp_session: 'WhatsApp session',
  note: 'Note',
  assigned: 'Assigned',
  claimed: 'Claimed',
  status_changed: 'Status changed',
  lead_created: 'New lead',
  label_added: 'Label added',
  label_removed: 'Label removed',
  message_sent: 'Message sent',
  access_granted: 'Access granted',
  access_revoked: 'Access revoked',
  call: 'Call',
};

/** Seconds as "45 s", "12 min", "3 h 5 min". */
export function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  const s = Math.round(secs);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A local date input's value as the start of that day, RFC 3339. */
export function dayStart(value) {
  return value ? new Date(`${value}T00:00:00`).toISOString() : '';
}

/** The day after a local date input's value, RFC 3339 (an exclusive end). */
export function dayAfter(value) {
  if (!value) return '';
  const d = new Date(`${value}T00:00:00`);
  d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** What an activity says, in a line. */
function summary(a, ctx) {
  const d = a.data || {};
  const who = (id) => ctx.memberName(id) || 'nobody';
  switch (a.type) {
    case 'whatsapp_session': {
      const started = d.initiated_by === 'lead' ? 'Started by the lead' : 'Started by the team';
      const counts = `${d.messages_from_lead || 0} from the lead, ${d.messages_from_member || 0} from the team`;
      const responded = [d.lead_responded && 'the lead', d.member_responded && 'the team'].filter(Boolean).join(' and ') || 'nobody';
      const first = d.first_response_seconds !== null && d.first_response_seconds !== undefined ? ` · first response ${duration(d.first_response_seconds)}` : '';
      return `${started} · ${counts} · responded: ${responded}${first}${d.open ? ' · open' : ''}`;
    }
    case 'note':
      return d.text || '';
    case 'assigned':
      return `${d.from_member_id ? `${who(d.from_member_id)} → ` : ''}${who(d.to_member_id)}${d.reason ? ` (${String(d.reason).replace(/_/g, ' ')})` : ''}`;
    case 'status_changed':
      return `${d.from || ''} → ${d.to || d.status || ''}`;
    case 'label_added':
    case 'label_removed':
      return d.label_name || d.name || '';
    case 'access_granted':
    case 'access_revoked':
      return (d.member_ids || []).map(who).join(', ');
    case 'call':
      return [d.direction, d.status, d.duration_secs ? duration(d.duration_secs) : null].filter(Boolean).join(' · ');
    default:
      return '';
  }
}

export async function render(root, ctx, route) {
  const q = route.query;
  const state = {
    type: q.get('type') || '',
    member_id: q.get('member_id') || '',
    number_id: q.get('number_id') || '',
    lead_id: q.get('lead_id') || '',
    from: q.get('from') || '',
    to: q.get('to') || '',
    items: [],
    next: null,
    loading: false,
    gen: 0,
    destroyed: false,
  };

  const type = h('select', { id: 'activity-type' }, KINDS.map(([v, t]) => h('option', { value: v, selected: v === state.type }, t)));
  const member = h('select', { id: 'activity-member' }, h('option', { value: '' }, 'Anyone'));
  for (const m of [...ctx.members.values()].sort((a, b) => (a.name || a.email).localeCompare(b.name || b.email))) {
    member.append(h('option', { value: m.id, selected: m.id === state.member_id }, m.name || m.email));
  }
  const number = h('select', { id: 'activity-number' }, h('option', { value: '' }, 'Any number'));
  const from = h('input', { type: 'date', id: 'activity-from', value: state.from });
  const to = h('input', { type: 'date', id: 'activity-to', value: state.to });
  const refresh = h('button', { type: 'button', class: 'btn', id: 'activity-refresh' }, 'Refresh');
  const newer = h('button', { type: 'button', class: 'btn wide', id: 'activity-newer', hidden: true }, 'New activity: show it');
  const list = h('ol', { class: 'journal activity-list', id: 'activity-list', 'aria-label': 'Activities' });
  const more = h('button', { type: 'button', class: 'btn wide load-more', id: 'activity-more', hidden: true }, 'Load older');
  const empty = h('p', { class: 'muted empty', id: 'activity-empty', hidden: true }, 'No activity matches these filters.');
  const error = errorLine('activity-error');
  const leadNote = h('p', { class: 'muted', id: 'activity-lead', hidden: !state.lead_id });

  replace(
    root,
    h(
      'div',
      { class: 'settings-scroll' },
      h(
        'section',
        { class: 'settings', 'aria-labelledby': 'activity-title' },
        h('h1', { id: 'activity-title' }, 'Activity'),
        h('p', { class: 'muted settings-intro' }, 'Everything that happened on the leads you can see, newest first.'),
        h('div', { class: 'tool-row settings-tools', role: 'search', 'aria-label': 'Filter activities' }, field('Type', type), field('Member', member), field('Number', number), field('From', from), field('To', to), refresh),
        leadNote,
        error,
        newer,
        list,
        empty,
        more,
      ),
    ),
  );

  try {
    const numbers = await api.get('/numbers');
    for (const n of numbers.numbers) number.append(h('option', { value: n.id, selected: n.id === state.number_id }, n.display_phone_number));
  } catch {
    /* the number filter stays "any" */
  }

  for (const [el, key] of [
    [type, 'type'],
    [member, 'member_id'],
    [number, 'number_id'],
    [from, 'from'],
    [to, 'to'],
  ]) {
    el.addEventListener('change', () => {
      state[key] = el.value;
      reload();
    });
  }
  refresh.addEventListener('click', () => reload());
  newer.addEventListener('click', () => reload());
  more.addEventListener('click', () => loadPage());

  function params() {
    return {
      type: state.type,
      member_id: state.member_id,
      number_id: state.number_id,
      lead_id: state.lead_id,
      from: dayStart(state.from),
      to: dayAfter(state.to),
    };
  }

  async function loadPage() {
    if (state.loading) return;
    // A reload while this page loads makes its answer stale: it is dropped.
    const gen = state.gen;
    state.loading = true;
    more.disabled = true;
    list.setAttribute('aria-busy', 'true');
    try {
      const page = await api.get('/activities', { ...params(), cursor: state.next, limit: 50 });
      if (gen !== state.gen) return;
      if (state.destroyed) return;
      state.items.push(...page.activities);
      state.next = page.next_cursor;
      error.textContent = '';
    } catch (e) {
      error.textContent = e.message;
    } finally {
      if (gen === state.gen) {
        state.loading = false;
        more.disabled = false;
        list.setAttribute('aria-busy', 'false');
      }
    }
    renderList();
  }

  function reload() {
    state.gen += 1;
    state.loading = false;
    newer.hidden = true;
    state.items = [];
    state.next = null;
    replace(list);
    loadPage();
  }

  function renderList() {
    replace(list, state.items.map(row));
    empty.hidden = state.items.length > 0 || state.loading;
    more.hidden = !state.next;
    if (state.lead_id) {
      const lead = state.items.find((a) => a.lead_id === state.lead_id);
      replace(leadNote, `Only the activity of ${lead ? lead.lead_name : 'one lead'}. `, h('a', { href: '#/activity' }, 'Show every lead'));
    }
  }

  function row(a) {
    const by = a.member_id ? ctx.memberName(a.member_id) : null;
    return h(
      'li',
      { class: 'journal-entry', dataset: { id: a.id, type: a.type, lead: a.lead_id } },
      h(
        'span',
        { class: 'journal-top' },
        h('time', { datetime: a.created_at, title: full(a.created_at) }, when(a.created_at)),
        h('strong', {}, KIND_TITLE[a.type] || a.type),
        h('a', { href: `#/leads/${a.lead_id}`, 'aria-label': `Open lead ${a.lead_name}` }, a.lead_name),
        by ? h('span', { class: 'muted small' }, `by ${by}`) : null,
      ),
      h('span', { class: 'small' }, summary(a, ctx)),
      a.conversation_id ? h('a', { class: 'small', href: `#/inbox/${a.conversation_id}`, 'aria-label': `Open chat with ${a.lead_name}` }, 'Open chat') : null,
    );
  }

  // Something new happened on a lead the caller sees: offer it without moving the list.
  const off = ctx.live.on((e) => {
    if (e.type === 'timeline.created' && !state.loading) newer.hidden = false;
  });

  reload();
  return {
    destroy() {
      state.destroyed = true;
      off();
    },
  };
}

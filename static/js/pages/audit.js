// Audit trail (admins): every change of who may see or do what, newest first, filtered by the
// member who made it, the action and dates, paged by cursor. Each entry shows the fields it
// changed, before and after.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full, when } from '../format.js';
import { settingsFrame, notAllowed, field, errorLine } from '../settings.js';
import { dayStart, dayAfter } from './activity.js';

export const ACTIONS = [
  ['member.invited', 'Member invited'],
  ['member.updated', 'Member changed'],
  ['member.deactivated', 'Member deactivated'],
  ['member.reactivated', 'Member reactivated'],
  ['invitation.resent', 'Invitation resent'],
  ['invitation.cancelled', 'Invitation cancelled'],
  ['conversation.access_granted', 'Chat access granted'],
  ['conversation.access_revoked', 'Chat access revoked'],
  ['number.connected', 'Number connected'],
  ['number.updated', 'Number changed'],
  ['number.disconnected', 'Number disconnected'],
  ['assignment.updated', 'Assignment settings changed'],
  ['workspace.updated', 'Workspace settings changed'],
  ['label.created', 'Label created'],
  ['label.updated', 'Label changed'],
  ['label.deleted', 'Label deleted'],
  ['group.deleted', 'Group deleted'],
  ['content.visibility_changed', 'Content visibility changed'],
  ['api_key.created', 'API key created'],
  ['api_key.revoked', 'API key revoked'],
  ['agency.linked', 'Agency linked'],
  ['agency.unlinked', 'Agency unlinked'],
];
const ACTION_TITLE = Object.fromEntries(ACTIONS);

/** A value of `changes` for people: ids of members and labels by name, objects as their true flags. */
function show(value, ctx) {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) return value.length ? value.map((v) => show(v, ctx)).join(', ') : 'none';
  if (typeof value === 'object') {
    const on = Object.entries(value).filter(([, v]) => v === true).map(([k]) => k.replace(/_/g, ' '));
    if (Object.values(value).every((v) => typeof v === 'boolean')) return on.length ? on.join(', ') : 'none';
    return JSON.stringify(value);
  }
  if (typeof value === 'string' && /^[0-9a-f-]{36}$/.test(value)) {
    if (ctx.members.has(value) || value === ctx.me.id) return ctx.memberName(value);
    const label = ctx.labels.get(value);
    if (label) return label.name;
  }
  return String(value);
}

function targetName(e, ctx) {
  if (e.target_type === 'member' && e.target_id) {
    const m = ctx.members.get(e.target_id);
    if (m) return m.name || m.email;
    const email = e.changes && e.changes.email && e.changes.email.to;
    return email || 'a member';
  }
  if (e.target_type === 'label' && e.target_id) {
    const l = ctx.labels.get(e.target_id);
    const name = e.changes && e.changes.name && (e.changes.name.to || e.changes.name.from);
    return l ? l.name : name || 'a label';
  }
  if (e.target_type === 'group') return (e.changes && e.changes.name && e.changes.name.from) || 'a group';
  if (e.target_type === 'number') {
    const d = e.changes && e.changes.display_phone_number;
    return d ? `+${d.to || d.from}` : 'a number';
  }
  if (e.target_type === 'conversation') return 'a chat';
  if (e.target_type === 'assignment_settings') return 'assignment settings';
  if (e.target_type === 'workspace') return 'the workspace';
  return e.target_type;
}

export function render(root, ctx, route) {
  if (!ctx.isAdmin) return notAllowed(root, 'Audit trail', 'admins');
  const body = settingsFrame(root, 'Audit trail', 'Every change of who may see or do what: invitations, roles and permissions, chat access, numbers, settings, labels and groups. Entries are never changed or deleted.');
  const q = route.query;
  const state = { actor_id: q.get('actor_id') || '', action: q.get('action') || '', from: q.get('from') || '', to: q.get('to') || '', items: [], next: null, loading: false, gen: 0, destroyed: false };

  const actor = h('select', { id: 'audit-actor' }, h('option', { value: '' }, 'Anyone'));
  for (const m of [...ctx.members.values()].sort((a, b) => (a.name || a.email).localeCompare(b.name || b.email))) {
    actor.append(h('option', { value: m.id, selected: m.id === state.actor_id }, m.name || m.email));
  }
  const action = h('select', { id: 'audit-action' }, h('option', { value: '' }, 'Any change'), ACTIONS.map(([v, t]) => h('option', { value: v, selected: v === state.action }, t)));
  const from = h('input', { type: 'date', id: 'audit-from', value: state.from });
  const to = h('input', { type: 'date', id: 'audit-to', value: state.to });
  const list = h('ol', { class: 'journal audit-list', id: 'audit-list', 'aria-label': 'Audit entries' });
  const more = h('button', { type: 'button', class: 'btn wide load-more', id: 'audit-more', hidden: true }, 'Load older');
  const empty = h('p', { class: 'muted empty', id: 'audit-empty', hidden: true }, 'No changes match these filters.');
  const error = errorLine('audit-error');
  replace(body, h('div', { class: 'tool-row settings-tools', role: 'search', 'aria-label': 'Filter the audit trail' }, field('Changed by', actor), field('Change', action), field('From', from), field('To', to)), error, list, empty, more);

  for (const [el, key] of [
    [actor, 'actor_id'],
    [action, 'action'],
    [from, 'from'],
    [to, 'to'],
  ]) {
    el.addEventListener('change', () => {
      state[key] = el.value;
      reload();
    });
  }
  more.addEventListener('click', () => loadPage());

  async function loadPage() {
    if (state.loading) return;
    // A reload while this page loads makes its answer stale: it is dropped.
    const gen = state.gen;
    state.loading = true;
    more.disabled = true;
    list.setAttribute('aria-busy', 'true');
    try {
      const page = await api.get('/audit', { actor_id: state.actor_id, action: state.action, from: dayStart(state.from), to: dayAfter(state.to), cursor: state.next, limit: 50 });
      if (gen !== state.gen) return;
      if (state.destroyed) return;
      state.items.push(...page.entries);
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
    replace(list, state.items.map(entry));
    empty.hidden = state.items.length > 0;
    more.hidden = !state.next;
  }

  function reload() {
    state.gen += 1;
    state.loading = false;
    state.items = [];
    state.next = null;
    replace(list);
    loadPage();
  }

  function entry(e) {
    const changes = Object.entries(e.changes || {});
    return h(
      'li',
      { class: 'journal-entry', dataset: { id: e.id, action: e.action } },
      h(
        'span',
        { class: 'journal-top' },
        h('time', { datetime: e.at, title: full(e.at) }, when(e.at)),
        h('strong', {}, ACTION_TITLE[e.action] || e.action),
        h('span', {}, targetName(e, ctx)),
        h('span', { class: 'muted small' }, `by ${e.actor_id ? ctx.memberName(e.actor_id) : 'the server'}`),
      ),
      changes.length
        ? h(
            'dl',
            { class: 'small audit-changes' },
            changes.map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, `${show(v.from, ctx)} → ${show(v.to, ctx)}`)]),
          )
        : null,
    );
  }

  reload();
  return {
    destroy() {
      state.destroyed = true;
    },
  };
}

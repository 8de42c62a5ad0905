// Parts of the lead panel: the lead's details edited inline (name, custom fields, groups; only
// when the lead's `can.edit` says so, the server deciding), the lead's chats per number (who
// replied, message counts, last message), and the assignment decision log ("why did I get
// this?").

import { api, all } from './api.js';
import { h, replace } from './dom.js';
import { full, phone } from './format.js';

const human = (s) => (s ? `${s.charAt(0).toUpperCase()}${s.slice(1).replace(/_/g, ' ')}` : '');

/**
 * The details section: `box` is filled with the facts, and an "Edit lead" button when allowed.
 * `onSaved(lead)` gets the lead as the server now has it.
 */
export function renderLeadDetails(ctx, box, lead, { bsuid, groups, onSaved }) {
  const custom = Object.entries(lead.custom_fields || {});
  const groupNames = (lead.group_ids || []).map((id) => (groups.get(id) || {}).name).filter(Boolean);
  const canEdit = !!(lead.can && lead.can.edit);
  const edit = canEdit ? h('button', { type: 'button', class: 'btn ghost small', 'aria-label': 'Edit lead' }, 'Edit') : null;
  if (edit) edit.addEventListener('click', () => replace(box, leadForm(ctx, box, lead, { bsuid, groups, onSaved })));
  replace(
    box,
    h('div', { class: 'panel-head' }, h('h2', { id: 'lead-name' }, lead.name), edit),
    lead.marketing_opt_out ? h('span', { class: 'chip state state-failed opt-out', title: 'They asked WhatsApp to stop marketing messages: marketing templates are refused until they resume.' }, 'Opted out of marketing') : null,
    h(
      'dl',
      { class: 'facts' },
      lead.phone ? [h('dt', {}, 'Phone'), h('dd', {}, phone(lead.phone))] : null,
      !lead.phone && bsuid ? [h('dt', {}, 'WhatsApp user'), h('dd', {}, bsuid)] : null,
      lead.source ? [h('dt', {}, 'Source'), h('dd', {}, lead.source)] : null,
      h('dt', {}, 'Created'),
      h('dd', {}, full(lead.created_at)),
      groupNames.length ? [h('dt', {}, 'Groups'), h('dd', { class: 'lead-groups' }, groupNames.join(', '))] : null,
      custom.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]),
    ),
  );
}

function leadForm(ctx, box, lead, opts) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const name = h('input', { type: 'text', value: lead.name, maxlength: '200', required: true, id: 'lead-edit-name' });
  const rows = h('div', { class: 'custom-rows' });
  const addRow = (k = '', v = '') => {
    const n = rows.childElementCount + 1;
    const key = h('input', { type: 'text', value: k, maxlength: '100', 'aria-label': `Field ${n} name`, class: 'custom-key' });
    const val = h('input', { type: 'text', value: v, maxlength: '1000', 'aria-label': `Field ${n} value`, class: 'custom-value' });
    const remove = h('button', { type: 'button', class: 'btn ghost small', 'aria-label': `Remove field ${n}` }, '×');
    const row = h('div', { class: 'custom-row' }, key, val, remove);
    remove.addEventListener('click', () => row.remove());
    rows.append(row);
    return key;
  };
  for (const [k, v] of Object.entries(lead.custom_fields || {})) addRow(k, typeof v === 'string' ? v : JSON.stringify(v));
  const add = h('button', { type: 'button', class: 'btn ghost small' }, 'Add field');
  add.addEventListener('click', () => addRow().focus());
  const current = new Set(lead.group_ids || []);
  const groupBoxes = [...opts.groups.values()].map((g) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: g.id, checked: current.has(g.id) }), h('span', {}, g.name)));
  const save = h('button', { type: 'submit', class: 'btn primary small' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
  const form = h(
    'form',
    { class: 'lead-form', 'aria-label': 'Edit lead' },
    h('label', { for: 'lead-edit-name' }, 'Name'),
    name,
    h('fieldset', {}, h('legend', {}, 'Custom fields'), rows, add),
    groupBoxes.length ? h('fieldset', { class: 'groups' }, h('legend', {}, 'Groups'), groupBoxes) : null,
    h('div', { class: 'row-actions' }, save, cancel),
    error,
  );
  cancel.addEventListener('click', () => renderLeadDetails(ctx, box, lead, opts));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const custom_fields = {};
    for (const row of rows.querySelectorAll('.custom-row')) {
      const k = row.querySelector('.custom-key').value.trim();
      if (k) custom_fields[k] = row.querySelector('.custom-value').value;
    }
    const body = { name: name.value.trim(), custom_fields, group_ids: [...form.querySelectorAll('.groups input:checked')].map((i) => i.value) };
    save.disabled = true;
    try {
      const saved = await api.patch(`/leads/${lead.id}`, body);
      opts.onSaved(saved);
      renderLeadDetails(ctx, box, saved, opts);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  });
  setTimeout(() => name.focus(), 0);
  return form;
}

/** The lead's chats, one per number: which number, who replied, message counts, last message. */
export async function renderLeadChats(ctx, box, leadId) {
  try {
    const [convs, sessions, numbers] = await Promise.all([
      all('/conversations', 'conversations', { lead_id: leadId }, 200),
      all(`/leads/${leadId}/timeline`, 'activities', { type: 'whatsapp_session' }, 1000),
      api.get('/numbers').then((p) => p.numbers || []).catch(() => []),
    ]);
    const byNumber = new Map(numbers.map((n) => [n.id, n]));
    const stats = new Map();
    for (const a of sessions) {
      const d = a.data || {};
      const s = stats.get(d.conversation_id) || { lead: 0, team: 0, members: new Set() };
      s.lead += d.messages_from_lead || 0;
      s.team += d.messages_from_member || 0;
      for (const m of d.members || []) s.members.add(typeof m === 'string' ? m : m.member_id || m.id);
      stats.set(d.conversation_id, s);
    }
    const items = convs.map((c) => {
      const n = byNumber.get(c.number_id);
      const s = stats.get(c.id) || { lead: 0, team: 0, members: new Set() };
      const who = [...s.members].filter(Boolean).map((id) => ctx.memberName(id));
      return h(
        'li',
        { class: 'lead-chat', dataset: { id: c.id } },
        h('a', { href: `#/inbox/${c.id}` }, n ? `${n.name || phone(n.display_phone_number)}` : 'A number'),
        h('span', { class: 'muted small block' }, `Replied by: ${who.length ? who.join(', ') : 'nobody yet'}`),
        h('span', { class: 'muted small block' }, `${s.lead} from the lead · ${s.team} from the team`),
        h('span', { class: 'muted small block' }, c.last_message_at ? `Last message ${full(c.last_message_at)}` : 'No messages'),
      );
    });
    replace(box, h('h3', {}, 'Chats'), items.length ? h('ul', { class: 'lead-chats', 'aria-label': 'Chats per number' }, items) : h('p', { class: 'muted small' }, 'No chats'));
  } catch (e) {
    replace(box, h('h3', {}, 'Chats'), h('p', { class: 'form-error' }, e.message));
  }
}

/** The assignment decisions about the lead, newest first: why it went to whom. */
export async function renderDecisions(ctx, box, leadId) {
  try {
    const page = await api.get(`/leads/${leadId}/assignment-log`);
    const decisions = [...(page.decisions || [])].reverse();
    const items = decisions.slice(0, 20).map((d) => {
      const chosen = d.chosen_member_id ? ctx.memberName(d.chosen_member_id) : 'nobody';
      const skipped = (d.candidates || []).filter((c) => c.skipped).map((c) => `${ctx.memberName(c.member_id)} (${human(c.skipped).toLowerCase()})`);
      return h(
        'li',
        { class: 'decision' },
        h('span', { class: 'activity-title' }, `Assigned to ${chosen}`),
        h('span', { class: 'activity-detail' }, [d.rule ? `Rule “${d.rule}”` : null, d.reason ? human(d.reason) : null, d.cause ? `when: ${human(d.cause).toLowerCase()}` : null].filter(Boolean).join(' · ')),
        skipped.length ? h('span', { class: 'activity-detail' }, `Skipped: ${skipped.join(', ')}`) : null,
        h('time', { class: 'muted small', datetime: d.at }, full(d.at)),
      );
    });
    replace(box, h('h3', {}, 'Why assigned'), items.length ? h('ol', { class: 'history', 'aria-label': 'Assignment decisions' }, items) : h('p', { class: 'muted small' }, 'No automatic assignment yet'));
  } catch (e) {
    replace(box, h('h3', {}, 'Why assigned'), h('p', { class: 'form-error' }, e.message));
  }
}

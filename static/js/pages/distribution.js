// Settings: Distribution (admins and members with manage_integrations). Rules that forward
// every new lead to people — in this server (app), by email or by WhatsApp — to everyone
// (broadcast) or in turns (round robin). Every rule whose conditions hold applies. The whole
// object is saved with one PUT; the API validates it and its message is shown as is.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { phone } from '../format.js';
import { settingsFrame, notAllowed, panel, field, checkbox, errorLine, statusLine, busy } from '../settings.js';

const FIELDS = [
  ['source', 'Source'],
  ['page', 'Page'],
  ['form', 'Form'],
  ['language', 'Language'],
  ['country', 'Country (ISO code, e.g. DE)'],
  ['custom', 'Custom field…'],
];
const OPS = [
  ['equals', 'equals'],
  ['not_equals', 'does not equal'],
  ['contains', 'contains'],
  ['starts_with', 'starts with'],
  ['ends_with', 'ends with'],
];
const MODES = [
  ['broadcast', 'Send to every recipient'],
  ['round_robin', 'Send to one recipient at a time, in turns'],
];
const CHANNELS = [
  ['app', 'In Switchboard'],
  ['email', 'By email'],
  ['whatsapp', 'By WhatsApp'],
];

export function render(root, ctx) {
  if (!(ctx.isAdmin || ctx.perms.manage_integrations)) return notAllowed(root, 'Distribution', 'admins and members with the “Manage integrations” permission');
  const body = settingsFrame(
    root,
    'Distribution',
    'Forward every new lead to colleagues or clients: in their own Switchboard workspace, by email or by WhatsApp. Every rule whose conditions all hold applies. The history page shows what went where.',
  );
  let s = null; // the settings being edited
  let numbers = []; // connected numbers, for WhatsApp
  let destroyed = false;

  const error = errorLine('dist-error');
  const status = statusLine('dist-status');
  const save = h('button', { type: 'submit', class: 'btn primary', id: 'dist-save' }, 'Save distribution rules');
  const keep = h('input', { type: 'checkbox', role: 'switch', id: 'dist-keep-copy' });
  keep.addEventListener('change', () => {
    s.keep_copy = keep.checked;
  });
  const keepRow = h(
    'label',
    { class: 'check', for: keep.id },
    keep,
    h('span', {}, 'Keep a copy of distributed leads'),
    h('span', { class: 'hint' }, 'Off: a lead that a rule forwarded is removed from this workspace (the history keeps it). Leads that came with a WhatsApp message always stay.'),
  );
  const rules = h('ol', { class: 'rules', id: 'dist-rules', 'aria-label': 'Distribution rules' });
  const addRule = h('button', { type: 'button', class: 'btn', id: 'dist-add-rule' }, 'Add distribution rule');
  addRule.addEventListener('click', () => {
    s.rules.push({ name: `Rule ${s.rules.length + 1}`, criteria: [], mode: 'broadcast', recipients: [newRecipient()] });
    renderRules(`#dist-rule-${s.rules.length - 1}-name`);
  });
  const form = h(
    'form',
    { id: 'dist-form', novalidate: true },
    panel('Copies', keepRow),
    panel('Rules', rules, h('div', { class: 'form-actions' }, addRule)),
    h('div', { class: 'save-bar' }, error, status, h('a', { href: '#/history', class: 'btn ghost' }, 'See the history'), save),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    status.textContent = '';
    const out = await busy(save, error, () => api.put('/distribution', payload()));
    if (!out) {
      markInvalid();
      return;
    }
    s = normalise(out);
    renderAll();
    status.textContent = 'Saved.';
  });
  replace(body, h('p', { class: 'muted', id: 'dist-loading' }, 'Loading…'));

  async function load() {
    try {
      const [settings, nums] = await Promise.all([api.get('/distribution'), api.get('/numbers').catch(() => ({ numbers: [] }))]);
      s = normalise(settings);
      numbers = (nums.numbers || []).filter((n) => !n.disconnected_at);
    } catch (e) {
      replace(body, errorLine(), form);
      error.textContent = e.message;
      return;
    }
    if (destroyed) return;
    replace(body, form);
    renderAll();
  }

  function newRecipient() {
    return { email: '', channels: ['app'], leads_per_round: 1 };
  }

  function payload() {
    return {
      keep_copy: !!s.keep_copy,
      rules: s.rules.map((r) => ({
        name: r.name,
        criteria: r.criteria.map((c) => ({ field: c.field === 'custom' ? `custom.${c.key || ''}` : c.field, op: c.op, value: c.value })),
        mode: r.mode,
        recipients: r.recipients.map((p) => {
          const out = { email: p.email.trim(), channels: p.channels, leads_per_round: Number(p.leads_per_round) || 1 };
          if (p.channels.includes('whatsapp') || (p.whatsapp_phone || '').trim()) out.whatsapp_phone = (p.whatsapp_phone || '').trim();
          if (p.channels.includes('whatsapp')) {
            out.whatsapp_template = { name: (p.template_name || '').trim(), language: (p.template_language || '').trim() };
            if (p.whatsapp_number_id) out.whatsapp_number_id = p.whatsapp_number_id;
          }
          return out;
        }),
      })),
    };
  }

  /** An API message "rules[2]…" marks that rule. */
  function markInvalid() {
    for (const r of rules.querySelectorAll('.rule.invalid')) r.classList.remove('invalid');
    const m = /rules\[(\d+)\]/.exec(error.textContent);
    if (!m) return;
    const el = rules.children[Number(m[1])];
    if (el) {
      el.classList.add('invalid');
      el.scrollIntoView({ block: 'nearest' });
    }
  }

  function renderAll() {
    keep.checked = !!s.keep_copy;
    renderRules();
  }

  function renderRules(focus) {
    replace(rules, s.rules.length ? s.rules.map(ruleEditor) : h('li', { class: 'empty muted' }, 'No rules: leads stay in this workspace only.'));
    if (focus) {
      const el = rules.querySelector(focus);
      if (el) el.focus();
    }
  }

  function ruleEditor(r, i) {
    const nameIn = h('input', { type: 'text', class: 'rule-name', value: r.name, maxlength: 200, id: `dist-rule-${i}-name` });
    nameIn.addEventListener('input', () => {
      r.name = nameIn.value;
    });
    const remove = h('button', { type: 'button', class: 'btn small danger', dataset: { action: 'remove-rule' } }, `Remove rule ${i + 1}`);
    remove.addEventListener('click', () => {
      s.rules.splice(i, 1);
      renderRules(s.rules.length ? `#dist-rule-${Math.min(i, s.rules.length - 1)}-name` : '#dist-add-rule');
    });

    const crit = h('ul', { class: 'criteria', 'aria-label': `Conditions of rule ${i + 1}` }, r.criteria.length ? r.criteria.map((c, j) => criterionRow(r, i, c, j)) : h('li', { class: 'muted small' }, 'No conditions: every new lead.'));
    const addCrit = h('button', { type: 'button', class: 'btn small', dataset: { action: 'add-condition' } }, 'Add condition');
    addCrit.addEventListener('click', () => {
      r.criteria.push({ field: 'source', op: 'equals', value: '' });
      renderRules(`#dist-rule-${i}-crit-${r.criteria.length - 1}-value`);
    });

    const mode = h('select', { id: `dist-rule-${i}-mode` }, MODES.map(([v, t]) => h('option', { value: v, selected: r.mode === v }, t)));
    mode.addEventListener('change', () => {
      r.mode = mode.value;
      renderRules(`#dist-rule-${i}-mode`);
    });
    const people = h('ol', { class: 'settings-list order', 'aria-label': `Recipients of rule ${i + 1}` }, r.recipients.map((p, j) => recipientRow(r, i, p, j)));
    const addPerson = h('button', { type: 'button', class: 'btn small', dataset: { action: 'add-recipient' } }, 'Add recipient');
    addPerson.addEventListener('click', () => {
      r.recipients.push(newRecipient());
      renderRules(`#dist-rule-${i}-r-${r.recipients.length - 1}-email`);
    });

    return h(
      'li',
      { class: 'rule', dataset: { rule: String(i) } },
      h(
        'fieldset',
        {},
        h('legend', {}, `Rule ${i + 1}`),
        h('div', { class: 'rule-head' }, field('Rule name', nameIn), h('div', { class: 'item-actions' }, remove)),
        h('div', { class: 'rule-part' }, h('span', { class: 'rule-word' }, 'If'), crit, addCrit),
        h('div', { class: 'rule-part' }, h('span', { class: 'rule-word' }, 'Then'), field('How', mode), people, addPerson),
      ),
    );
  }

  function criterionRow(r, i, c, j) {
    const id = `dist-rule-${i}-crit-${j}`;
    const fieldIn = h('select', { id: `${id}-field` }, FIELDS.map(([v, t]) => h('option', { value: v, selected: c.field === v }, t)));
    const key = h('input', { type: 'text', id: `${id}-key`, value: c.key || '', maxlength: 100, placeholder: 'key', hidden: c.field !== 'custom', 'aria-label': 'Custom field key' });
    const op = h('select', { id: `${id}-op`, 'aria-label': 'Comparison' }, OPS.map(([v, t]) => h('option', { value: v, selected: c.op === v }, t)));
    const value = h('input', { type: 'text', id: `${id}-value`, value: c.value, maxlength: 500, 'aria-label': 'Value' });
    fieldIn.addEventListener('change', () => {
      c.field = fieldIn.value;
      key.hidden = c.field !== 'custom';
      if (!key.hidden) key.focus();
    });
    key.addEventListener('input', () => {
      c.key = key.value;
    });
    op.addEventListener('change', () => {
      c.op = op.value;
    });
    value.addEventListener('input', () => {
      c.value = value.value;
    });
    const remove = h('button', { type: 'button', class: 'btn small ghost', 'aria-label': `Remove condition ${j + 1} of rule ${i + 1}` }, '✕');
    remove.addEventListener('click', () => {
      r.criteria.splice(j, 1);
      renderRules(r.criteria.length ? `#dist-rule-${i}-crit-${Math.min(j, r.criteria.length - 1)}-value` : `[data-rule="${i}"] [data-action="add-condition"]`);
    });
    return h('li', { class: 'criterion' }, h('label', { class: 'sr-only', for: fieldIn.id }, 'Field'), fieldIn, key, op, value, remove);
  }

  function recipientRow(r, i, p, j) {
    const id = `dist-rule-${i}-r-${j}`;
    const n = r.recipients.length;
    const who = p.email.trim() || `recipient ${j + 1}`;
    const email = h('input', { type: 'email', id: `${id}-email`, value: p.email, maxlength: 254, autocomplete: 'off', placeholder: 'name@example.com' });
    const channels = CHANNELS.map(([value, label]) => {
      const c = checkbox(label, { value, checked: p.channels.includes(value), id: `${id}-ch-${value}` });
      c.input.addEventListener('change', () => {
        p.channels = CHANNELS.map(([v]) => v).filter((v) => (v === value ? c.input.checked : p.channels.includes(v)));
        if (value === 'whatsapp') renderRules(`#${c.input.id}`);
      });
      return c.label;
    });
    const perRound = h('input', { type: 'number', id: `${id}-per-round`, min: 1, max: 10, step: 1, value: String(p.leads_per_round || 1), inputmode: 'numeric' });
    perRound.addEventListener('input', () => {
      p.leads_per_round = perRound.value;
    });
    const parts = [field('Email', email), h('fieldset', { class: 'checks' }, h('legend', {}, 'Channels'), channels)];
    if (r.mode === 'round_robin') parts.push(field('Leads per turn', perRound, '1 to 10.'));
    if (p.channels.includes('whatsapp')) {
      const wa = h('input', { type: 'tel', id: `${id}-wa-phone`, value: p.whatsapp_phone ? (/^\d+$/.test(p.whatsapp_phone) ? phone(p.whatsapp_phone) : p.whatsapp_phone) : '', maxlength: 32, placeholder: '+44 20 7946 0001' });
      wa.addEventListener('input', () => {
        p.whatsapp_phone = wa.value;
      });
      const tname = h('input', { type: 'text', id: `${id}-wa-template`, value: p.template_name || '', maxlength: 512, autocomplete: 'off', placeholder: 'new_lead' });
      tname.addEventListener('input', () => {
        p.template_name = tname.value;
      });
      const tlang = h('input', { type: 'text', id: `${id}-wa-language`, value: p.template_language || '', maxlength: 20, autocomplete: 'off', placeholder: 'en_US' });
      tlang.addEventListener('input', () => {
        p.template_language = tlang.value;
      });
      const number = h(
        'select',
        { id: `${id}-wa-number` },
        h('option', { value: '' }, numbers.length ? 'The first connected number' : 'No connected number'),
        numbers.map((x) => h('option', { value: x.id, selected: p.whatsapp_number_id === x.id }, phone(x.display_phone_number) || x.display_phone_number)),
      );
      number.addEventListener('change', () => {
        p.whatsapp_number_id = number.value || null;
      });
      parts.push(
        h(
          'div',
          { class: 'field-row' },
          field('WhatsApp phone', wa),
          field('Template name', tname, 'An approved template. {{1}} name, {{2}} phone, {{3}} source, {{4}} who sent it.'),
          field('Template language', tlang),
          field('Send from', number),
        ),
      );
    }
    const moves = [
      ['up', '↑', `Move ${who} up`, j === 0, -1],
      ['down', '↓', `Move ${who} down`, j === n - 1, 1],
    ].map(([k, t, label, disabled, by]) => {
      const b = h('button', { type: 'button', class: 'btn small', 'aria-label': label, disabled, dataset: { move: k } }, t);
      b.addEventListener('click', () => {
        const [x] = r.recipients.splice(j, 1);
        r.recipients.splice(j + by, 0, x);
        renderRules(`#dist-rule-${i}-r-${j + by} [data-move="${k}"]:not(:disabled), #dist-rule-${i}-r-${j + by}-email`);
        status.textContent = `${x.email.trim() || "The recipient"} is now number ${j + by + 1}. Save to keep it.`;
      });
      return b;
    });
    const remove = h('button', { type: 'button', class: 'btn small ghost', 'aria-label': `Remove ${who}`, disabled: n === 1 }, '✕');
    remove.addEventListener('click', () => {
      r.recipients.splice(j, 1);
      renderRules(`#dist-rule-${i}-r-${Math.min(j, r.recipients.length - 1)}-email`);
    });
    // The buttons name the recipient as typed.
    email.addEventListener('input', () => {
      p.email = email.value;
      const name = p.email.trim() || `recipient ${j + 1}`;
      moves[0].setAttribute('aria-label', `Move ${name} up`);
      moves[1].setAttribute('aria-label', `Move ${name} down`);
      remove.setAttribute('aria-label', `Remove ${name}`);
    });
    return h(
      'li',
      { class: 'settings-item order-item', id, dataset: { recipient: String(j) } },
      h('div', { class: 'item-main' }, h('span', { class: 'order-pos', 'aria-hidden': 'true' }, String(j + 1)), h('div', { class: 'item-text' }, parts), h('div', { class: 'item-actions' }, moves, remove)),
    );
  }

  load();
  return {
    destroy() {
      destroyed = true;
    },
  };
}

/** The API's settings, with custom.<key> fields split and templates flattened for editing. */
function normalise(settings) {
  const out = structuredClone(settings);
  out.rules = (out.rules || []).map((r) => ({
    ...r,
    criteria: (r.criteria || []).map((c) => (c.field.startsWith('custom.') ? { ...c, field: 'custom', key: c.field.slice(7) } : { ...c })),
    recipients: (r.recipients || []).map((p) => ({
      ...p,
      template_name: p.whatsapp_template ? p.whatsapp_template.name : '',
      template_language: p.whatsapp_template ? p.whatsapp_template.language : '',
    })),
  }));
  return out;
}

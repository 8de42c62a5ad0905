// Settings: Assignment (admins). Who gets a new lead: the default mode, round-robin order and
// toggles, availability and capacity, and rules tried in order. The whole object is saved with
// one PUT; the API validates it and its message is shown as is.

import { api } from '../api.js';
import { h, replace, avatar } from '../dom.js';
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
const ROUTES = [
  ['member', 'Assign to one member'],
  ['round_robin', 'Round robin among'],
  ['team', 'Round robin in a team'],
  ['unassigned', 'Leave unassigned'],
];

export function render(root, ctx) {
  if (!ctx.isAdmin && !ctx.perms.manage_members) return notAllowed(root, 'Assignment', 'admins and members with the “Manage members” permission');
  const body = settingsFrame(root, 'Assignment', 'Who gets a new lead, and a chat a customer re-opens. Rules are tried top to bottom; the first whose conditions all hold decides. When none does, the default applies.');
  let s = null; // the settings being edited
  let destroyed = false;
  let teams = []; // for the team route
  api
    .get('/teams')
    .then((p) => {
      teams = p.teams || [];
      if (s) renderRules();
    })
    .catch(() => {});

  const error = errorLine('assign-error');
  const status = statusLine('assign-status');
  const save = h('button', { type: 'submit', class: 'btn primary', id: 'assign-save' }, 'Save assignment settings');
  const defaults = h('div', { class: 'settings-form' });
  const order = h('ol', { class: 'settings-list order', id: 'assign-members', 'aria-label': 'Round-robin order' });
  const rules = h('ol', { class: 'rules', id: 'assign-rules', 'aria-label': 'Rules' });
  const addRule = h('button', { type: 'button', class: 'btn', id: 'assign-add-rule' }, 'Add rule');
  addRule.addEventListener('click', () => {
    s.rules.push({ name: `Rule ${s.rules.length + 1}`, criteria: [{ field: 'source', op: 'equals', value: '' }], route: { type: 'round_robin', member_ids: [] } });
    renderRules();
    const inputs = rules.querySelectorAll('.rule-name');
    if (inputs.length) inputs[inputs.length - 1].focus();
  });
  const form = h(
    'form',
    { id: 'assign-form', novalidate: true },
    panel('Default', defaults),
    panel('Round-robin order', h('p', { class: 'muted small' }, 'New members join at the end, enabled. Move people with the arrow buttons; switched-off members are skipped.'), order),
    panel('Rules', rules, h('div', { class: 'form-actions' }, addRule)),
    h('div', { class: 'save-bar' }, error, status, save),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    status.textContent = '';
    for (const r of rules.querySelectorAll('.rule.invalid')) r.classList.remove('invalid');
    const out = await busy(save, error, () => api.put('/assignment', payload()));
    if (!out) {
      markInvalidRule();
      return;
    }
    s = normalise(out);
    renderAll();
    status.textContent = 'Saved.';
  });
  replace(body, h('p', { class: 'muted', id: 'assign-loading' }, 'Loading…'));

  async function load() {
    try {
      s = normalise(await api.get('/assignment'));
    } catch (e) {
      replace(body, errorLine(), form);
      error.textContent = e.message;
      return;
    }
    if (destroyed) return;
    replace(body, form);
    renderAll();
  }

  function payload() {
    const num = (v) => (v === '' || v === null || v === undefined ? null : Number(v));
    return {
      mode: s.mode,
      leads_per_round: num(s.leads_per_round) ?? 1,
      only_available: !!s.only_available,
      members: s.members.map((m) => ({ member_id: m.member_id, enabled: !!m.enabled })),
      max_open_per_member: num(s.max_open_per_member),
      rules: s.rules.map((r) => ({
        name: r.name,
        criteria: r.criteria.map((c) => ({ field: c.field === 'custom' ? `custom.${c.key || ''}` : c.field, op: c.op, value: c.value })),
        route: routePayload(r.route),
      })),
    };
  }

  /** An API message "rule 2: …" marks that rule. */
  function markInvalidRule() {
    const m = /^rule (\d+)/.exec(error.textContent);
    if (!m) return;
    const el = rules.children[Number(m[1])];
    if (el) {
      el.classList.add('invalid');
      error.textContent = `Rule ${Number(m[1]) + 1} (${s.rules[Number(m[1])]?.name.trim() || 'unnamed'}): ${error.textContent.replace(/^rule \d+:\s*/, '')}`;
      el.scrollIntoView({ block: 'nearest' });
    }
  }

  function renderAll() {
    renderDefaults();
    renderOrder();
    renderRules();
  }

  function renderDefaults() {
    const modes = [
      ['unassigned', 'Leave new leads unassigned', 'Members with “See unassigned chats” claim them.'],
      ['round_robin', 'Round robin', 'Take turns in the order below.'],
    ].map(([value, title, hint]) => {
      const input = h('input', { type: 'radio', name: 'assign-mode', value, id: `assign-mode-${value}`, checked: s.mode === value });
      input.addEventListener('change', () => {
        if (input.checked) s.mode = value;
      });
      return h('label', { class: 'check', for: input.id }, input, h('span', {}, title), h('span', { class: 'hint' }, hint));
    });
    const perRound = h('input', { type: 'number', id: 'assign-per-round', min: 1, max: 10, step: 1, value: String(s.leads_per_round), inputmode: 'numeric' });
    perRound.addEventListener('input', () => {
      s.leads_per_round = perRound.value;
    });
    const maxOpen = h('input', { type: 'number', id: 'assign-max-open', min: 1, step: 1, value: s.max_open_per_member === null || s.max_open_per_member === undefined ? '' : String(s.max_open_per_member), inputmode: 'numeric', placeholder: 'No limit' });
    maxOpen.addEventListener('input', () => {
      s.max_open_per_member = maxOpen.value;
    });
    const avail = checkbox('Only members who are available', { checked: s.only_available, id: 'assign-only-available', hint: 'Skip members who are away or have no Switchboard open. With nobody left, the lead stays unassigned.' });
    avail.input.addEventListener('change', () => {
      s.only_available = avail.input.checked;
    });
    replace(
      defaults,
      h('fieldset', { class: 'checks modes' }, h('legend', {}, 'When no rule matches'), modes),
      h('div', { class: 'field-row' }, field('Leads per turn', perRound, '1 to 10 leads before the next member’s turn.'), field('Open chats per member at most', maxOpen, 'Empty: no limit. Members at the limit are skipped.')),
      avail.label,
    );
  }

  function renderOrder(focusId, focusDir) {
    replace(
      order,
      s.members.length
        ? s.members.map((m, i) => {
            const name = ctx.memberName(m.member_id);
            const on = checkbox('Takes part', { checked: m.enabled, id: `assign-enabled-${m.member_id}` });
            on.input.dataset.member = m.member_id;
            on.input.addEventListener('change', () => {
              m.enabled = on.input.checked;
            });
            const up = h('button', { type: 'button', class: 'btn small', disabled: i === 0, 'aria-label': `Move ${name} up`, dataset: { move: 'up' } }, '↑');
            const down = h('button', { type: 'button', class: 'btn small', disabled: i === s.members.length - 1, 'aria-label': `Move ${name} down`, dataset: { move: 'down' } }, '↓');
            up.addEventListener('click', () => move(i, -1));
            down.addEventListener('click', () => move(i, 1));
            return h(
              'li',
              { class: ['settings-item order-item', !m.enabled && 'off'], dataset: { member: m.member_id } },
              h('div', { class: 'item-main' }, h('span', { class: 'order-pos', 'aria-hidden': 'true' }, String(i + 1)), avatar(name, m.member_id, 'small'), h('div', { class: 'item-text' }, h('span', { class: 'member-name' }, name)), h('div', { class: 'item-actions' }, on.label, up, down)),
            );
          })
        : h('li', { class: 'empty muted' }, 'No active members yet.'),
    );
    if (focusId) {
      const li = order.querySelector(`[data-member="${focusId}"]`);
      const btn = li && (li.querySelector(`[data-move="${focusDir}"]:not(:disabled)`) || li.querySelector('[data-move]:not(:disabled)'));
      if (btn) btn.focus();
    }
  }

  function move(i, by) {
    const j = i + by;
    if (j < 0 || j >= s.members.length) return;
    const [m] = s.members.splice(i, 1);
    s.members.splice(j, 0, m);
    renderOrder(m.member_id, by < 0 ? 'up' : 'down');
    status.textContent = `${ctx.memberName(m.member_id)} is now number ${j + 1}. Save to keep it.`;
  }

  function renderRules(focus) {
    replace(rules, s.rules.length ? s.rules.map(ruleEditor) : h('li', { class: 'empty muted' }, 'No rules: every lead gets the default above.'));
    if (focus) {
      const el = rules.querySelector(focus);
      if (el) el.focus();
    }
  }

  function ruleEditor(r, i) {
    const n = s.rules.length;
    const nameIn = h('input', { type: 'text', class: 'rule-name', value: r.name, maxlength: 200, id: `rule-${i}-name` });
    nameIn.addEventListener('input', () => {
      r.name = nameIn.value;
    });
    const tools = [
      ['up', '↑', `Move rule ${i + 1} up`, i === 0, () => swapRule(i, i - 1, 'up')],
      ['down', '↓', `Move rule ${i + 1} down`, i === n - 1, () => swapRule(i, i + 1, 'down')],
    ].map(([k, t, label, disabled, fn]) => {
      const b = h('button', { type: 'button', class: 'btn small', 'aria-label': label, disabled, dataset: { ruleMove: k } }, t);
      b.addEventListener('click', fn);
      return b;
    });
    const remove = h('button', { type: 'button', class: 'btn small danger', dataset: { action: 'remove-rule' } }, 'Remove rule');
    remove.addEventListener('click', () => {
      s.rules.splice(i, 1);
      renderRules(s.rules.length ? `#rule-${Math.min(i, s.rules.length - 1)}-name` : '#assign-add-rule');
    });

    const crit = h('ul', { class: 'criteria', 'aria-label': `Conditions of rule ${i + 1}` }, r.criteria.length ? r.criteria.map((c, j) => criterionRow(r, i, c, j)) : h('li', { class: 'muted small' }, 'No conditions: matches every lead.'));
    const addCrit = h('button', { type: 'button', class: 'btn small', dataset: { action: 'add-condition' } }, 'Add condition');
    addCrit.addEventListener('click', () => {
      r.criteria.push({ field: 'source', op: 'equals', value: '' });
      renderRules(`#rule-${i}-crit-${r.criteria.length - 1}-value`);
    });

    return h(
      'li',
      { class: 'rule', dataset: { rule: String(i) } },
      h(
        'fieldset',
        {},
        h('legend', {}, `Rule ${i + 1}`),
        h('div', { class: 'rule-head' }, field('Name', nameIn), h('div', { class: 'item-actions' }, tools, remove)),
        h('div', { class: 'rule-part' }, h('span', { class: 'rule-word' }, 'If'), crit, addCrit),
        h('div', { class: 'rule-part' }, h('span', { class: 'rule-word' }, 'Then'), routeEditor(r, i)),
      ),
    );
  }

  function swapRule(i, j, dir) {
    if (j < 0 || j >= s.rules.length) return;
    [s.rules[i], s.rules[j]] = [s.rules[j], s.rules[i]];
    renderRules(`[data-rule="${j}"] [data-rule-move="${dir}"]:not(:disabled), #rule-${j}-name`);
  }

  function criterionRow(r, i, c, j) {
    const id = `rule-${i}-crit-${j}`;
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
      renderRules(r.criteria.length ? `#rule-${i}-crit-${Math.min(j, r.criteria.length - 1)}-value` : `[data-rule="${i}"] [data-action="add-condition"]`);
    });
    return h('li', { class: 'criterion' }, h('label', { class: 'sr-only', for: fieldIn.id }, 'Field'), fieldIn, key, op, value, remove);
  }

  function routeEditor(r, i) {
    const id = `rule-${i}-route`;
    const type = h('select', { id, 'aria-label': `What rule ${i + 1} does` }, ROUTES.map(([v, t]) => h('option', { value: v, selected: r.route.type === v }, t)));
    const detail = h('div', { class: 'route-detail' });
    const members = [...ctx.members.values()].filter((m) => m.status !== 'deactivated' || r.route.member_id === m.id || (r.route.member_ids || []).includes(m.id));
    const renderDetail = () => {
      if (r.route.type === 'member') {
        const sel = h('select', { id: `${id}-member`, 'aria-label': 'Member' }, h('option', { value: '' }, 'Choose a member…'), members.map((m) => h('option', { value: m.id, selected: r.route.member_id === m.id }, m.name || m.email)));
        sel.addEventListener('change', () => {
          r.route.member_id = sel.value || null;
        });
        replace(detail, sel);
      } else if (r.route.type === 'round_robin') {
        const chosen = new Set(r.route.member_ids || []);
        const boxes = members.map((m) => {
          const c = checkbox(m.name || m.email, { checked: chosen.has(m.id), value: m.id, id: `${id}-rr-${m.id}` });
          c.input.addEventListener('change', () => {
            // The order they were ticked in is the order they take turns in.
            const ids = (r.route.member_ids || []).filter((x) => x !== m.id);
            if (c.input.checked) ids.push(m.id);
            r.route.member_ids = ids;
          });
          return c.label;
        });
        replace(detail, h('fieldset', { class: 'checks' }, h('legend', { class: 'sr-only' }, 'Members taking turns'), boxes));
      } else if (r.route.type === 'team') {
        const sel = h('select', { id: `${id}-team`, 'aria-label': 'Team' }, h('option', { value: '' }, 'Choose a team…'), teams.map((t) => h('option', { value: t.id, selected: r.route.team_id === t.id }, t.name)));
        sel.addEventListener('change', () => {
          r.route.team_id = sel.value || null;
        });
        replace(detail, sel, teams.length ? null : h('span', { class: 'muted small' }, ' No teams yet: create them in Team settings.'));
      } else {
        replace(detail);
      }
    };
    type.addEventListener('change', () => {
      r.route = type.value === 'member' ? { type: 'member', member_id: null } : type.value === 'round_robin' ? { type: 'round_robin', member_ids: [] } : type.value === 'team' ? { type: 'team', team_id: null } : { type: 'unassigned' };
      renderDetail();
    });
    renderDetail();
    return h('div', { class: 'route' }, type, detail);
  }

  load();
  return {
    destroy() {
      destroyed = true;
    },
  };
}

/** A rule's route as the API takes it. */
function routePayload(route) {
  if (route.type === 'member') return { type: 'member', member_id: route.member_id || null };
  if (route.type === 'round_robin') return { type: 'round_robin', member_ids: route.member_ids || [] };
  if (route.type === 'team') return { type: 'team', team_id: route.team_id || null };
  return { type: 'unassigned' };
}

/** The API's settings, with custom.<key> fields split for editing. */
function normalise(settings) {
  const out = structuredClone(settings);
  out.members = out.members || [];
  out.rules = (out.rules || []).map((r) => ({
    ...r,
    criteria: (r.criteria || []).map((c) => (c.field.startsWith('custom.') ? { ...c, field: 'custom', key: c.field.slice(7) } : { ...c })),
    route: { ...r.route },
  }));
  return out;
}

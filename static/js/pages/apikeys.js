// Settings: API keys (admins and members with manage_integrations). Keys for web forms and
// automation tools that push leads (POST /intake/leads). A new key is shown once, right after
// it is created; the list shows each key's name, first characters and use, never the key.
// Revoking takes effect at once.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full } from '../format.js';
import { settingsFrame, notAllowed, panel, field, checkbox, errorLine, statusLine, confirmButton, busy, copyButton } from '../settings.js';

/** The scopes a key can have, with what they open. */
const SCOPES = [['leads:write', 'Send leads', 'POST /api/v1/intake/leads: create or update leads from a form or a tool.']];

export function render(root, ctx) {
  if (!(ctx.isAdmin || ctx.perms.manage_integrations)) return notAllowed(root, 'API keys', 'admins and members with the “Manage integrations” permission');
  const body = settingsFrame(root, 'API keys', 'Keys let web forms and automation tools (Zapier, Make, n8n) send leads to this workspace. A key can only call the routes of its scopes.');
  let destroyed = false;

  // --- create -----------------------------------------------------------------------------
  const name = h('input', { type: 'text', id: 'apikey-name', required: true, maxlength: 200, autocomplete: 'off', placeholder: 'Website contact form' });
  const scopes = SCOPES.map(([value, label, hint]) => checkbox(label, { value, checked: true, hint, id: `apikey-scope-${value.replace(':', '-')}` }));
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'apikey-create' }, 'Create key');
  const error = errorLine('apikey-error');
  const shown = h('div', { id: 'apikey-shown', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'settings-form', id: 'apikey-form', novalidate: true },
    field('Key name', name, 'Where the key is used, to recognise it later.'),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Scopes'), scopes.map((s) => s.label)),
    error,
    h('div', { class: 'form-actions' }, submit),
    shown,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(shown);
    if (!name.value.trim()) {
      error.textContent = 'Enter a name for the key.';
      name.focus();
      return;
    }
    const chosen = scopes.filter((s) => s.input.checked).map((s) => s.input.value);
    if (!chosen.length) {
      error.textContent = 'Choose at least one scope.';
      scopes[0].input.focus();
      return;
    }
    const created = await busy(submit, error, () => api.post('/api-keys', { name: name.value.trim(), scopes: chosen }));
    if (!created) return;
    name.value = '';
    showOnce(created);
    await load();
  });

  /** The new key, in a read-only box with a copy button: the only time it is shown. */
  function showOnce(created) {
    const box = h('input', { type: 'text', id: 'apikey-new', readonly: true, value: created.key, spellcheck: 'false', class: 'mono' });
    const hide = h('button', { type: 'button', class: 'btn small ghost' }, 'I have copied it');
    hide.addEventListener('click', () => {
      replace(shown);
      name.focus();
    });
    replace(
      shown,
      h(
        'div',
        { class: 'notice key-once', role: 'status' },
        h('p', {}, h('strong', {}, `Key “${created.name}” created. `), 'Copy it now: it is shown this once and cannot be shown again.'),
        h('div', { class: 'field-row' }, field('New API key', box), h('div', { class: 'item-actions' }, copyButton(() => created.key), hide)),
      ),
    );
    box.focus();
    box.select();
  }

  // --- list -------------------------------------------------------------------------------
  const list = h('ul', { class: 'settings-list', id: 'apikey-list', 'aria-label': 'API keys' });
  const listStatus = statusLine('apikey-status');
  const listError = errorLine('apikey-list-error');
  const usage = h(
    'div',
    { class: 'muted small' },
    h('p', {}, 'Send a lead with the key as a bearer token:'),
    h('pre', { class: 'code' }, `curl -X POST ${location.origin}/api/v1/intake/leads \\\n  -H "Authorization: Bearer sbk_…" -H "Content-Type: application/json" \\\n  -d '{"name":"Ann Lee","phone":"+44 20 7946 0001","source":"website","external_id":"form-123"}'`),
  );

  replace(body, panel('New key', form), panel('Keys', listError, listStatus, list), panel('Using a key', usage));

  async function load() {
    let page;
    try {
      page = await api.get('/api-keys', { limit: 200 });
    } catch (e) {
      listError.textContent = e.message;
      return;
    }
    if (destroyed) return;
    listError.textContent = '';
    replace(list, page.api_keys.length ? page.api_keys.map(row) : h('li', { class: 'empty muted' }, 'No keys yet.'));
  }

  function row(k) {
    const revoked = !!k.revoked_at;
    const rowError = errorLine();
    const facts = [
      `${k.prefix}…`,
      k.scopes.join(', '),
      `created ${full(k.created_at)}`,
      k.last_used_at ? `last used ${full(k.last_used_at)}` : 'never used',
      revoked ? `revoked ${full(k.revoked_at)}` : null,
    ].filter(Boolean);
    const actions = revoked
      ? h('span', { class: 'chip state state-revoked' }, 'Revoked')
      : confirmButton(`Revoke ${k.name}`, `Revoke ${k.name} now`, async () => {
          const done = await busy(null, rowError, () => api.del(`/api-keys/${k.id}`).then(() => true));
          if (done) {
            listStatus.textContent = `Key “${k.name}” revoked: it no longer works.`;
            await load();
          }
        });
    return h(
      'li',
      { class: ['settings-item', revoked && 'off'], dataset: { key: k.id } },
      h('div', { class: 'item-main' }, h('div', { class: 'item-text' }, h('span', { class: 'member-name' }, k.name), h('span', { class: 'muted small' }, facts.join(' · '))), h('div', { class: 'item-actions' }, actions)),
      rowError,
    );
  }

  load();
  return {
    destroy() {
      destroyed = true;
    },
  };
}

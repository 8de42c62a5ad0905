// Settings: Numbers (admins and members with manage_integrations). Connect a WhatsApp Business
// number (the access token is write-only: sent once, never shown), switch auto-import, pick an
// owner, replace the token when Meta asks for it again (needs_reauth), disconnect.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { phone, full } from '../format.js';
import { healthProblems, qualityText, tierText, accountText } from '../numberhealth.js';
import { settingsFrame, notAllowed, panel, field, checkbox, errorLine, statusLine, confirmButton, busy } from '../settings.js';

export function render(root, ctx) {
  if (!(ctx.isAdmin || ctx.perms.manage_integrations)) return notAllowed(root, 'Numbers', 'admins and members with the “Manage integrations” permission');
  const body = settingsFrame(root, 'Numbers', 'The WhatsApp Business numbers whose chats land in this inbox. Meta’s webhooks for a number arrive here once it is connected.');
  const state = { numbers: [], destroyed: false };

  // --- connect ----------------------------------------------------------------------------
  const pnid = h('input', { type: 'text', id: 'number-pnid', inputmode: 'numeric', required: true, maxlength: 64, autocomplete: 'off', pattern: '[0-9]+' });
  const display = h('input', { type: 'tel', id: 'number-display', required: true, maxlength: 32, autocomplete: 'off', placeholder: '+1 555 010 0100' });
  const token = h('input', { type: 'password', id: 'number-token', required: true, maxlength: 4096, autocomplete: 'off', spellcheck: 'false' });
  const waba = h('input', { type: 'text', id: 'number-waba', inputmode: 'numeric', maxlength: 64, autocomplete: 'off' });
  const owner = ownerSelect(ctx, 'number-owner', null);
  const auto = checkbox('Import unknown contacts as leads', { id: 'number-auto', hint: 'Messages from phones that match no lead create one (source “whatsapp”); otherwise they are not stored.' });
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'number-submit' }, 'Connect number');
  const error = errorLine('number-error');
  const form = h(
    'form',
    { class: 'settings-form', id: 'number-form', novalidate: true },
    h(
      'div',
      { class: 'field-row' },
      field('Phone number ID', pnid, 'Meta’s numeric id of the number (WhatsApp Manager → API setup).'),
      field('Display number', display),
    ),
    h('div', { class: 'field-row' }, field('Access token', token, 'Write-only: stored for sending, never shown again.'), field('WhatsApp Business Account ID', waba, 'Optional.')),
    h('div', { class: 'field-row' }, field('Owner', owner, 'Optional: the member responsible for this number.')),
    auto.label,
    error,
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const missing = [
      [pnid, 'the phone number ID'],
      [display, 'the display number'],
      [token, 'the access token'],
    ].find(([el]) => !el.value.trim());
    if (missing) {
      error.textContent = `Enter ${missing[1]}.`;
      missing[0].focus();
      return;
    }
    const payload = {
      phone_number_id: pnid.value.trim(),
      display_phone_number: display.value.trim(),
      access_token: token.value,
      auto_import_contacts: auto.input.checked,
    };
    if (waba.value.trim()) payload.waba_id = waba.value.trim();
    if (owner.value) payload.owner_member_id = owner.value;
    const n = await busy(submit, error, () => api.post('/numbers', payload));
    token.value = ''; // never kept in the page, whatever the answer
    if (!n) return;
    form.reset();
    upsert(n);
  });

  const list = h('ul', { class: 'settings-list', id: 'numbers', 'aria-label': 'Connected numbers' });
  const listError = errorLine('numbers-error');
  replace(body, panel('Numbers', listError, list), panel('Connect a number', form));

  async function load() {
    try {
      const page = await api.get('/numbers');
      state.numbers = page.numbers;
    } catch (e) {
      listError.textContent = e.message;
    }
    if (!state.destroyed) renderList();
  }

  function upsert(n) {
    const i = state.numbers.findIndex((x) => x.id === n.id);
    if (i >= 0) state.numbers[i] = n;
    else state.numbers.push(n);
    renderList();
  }

  function renderList() {
    const focused = document.activeElement && document.activeElement.id;
    replace(list, state.numbers.length ? state.numbers.map(row) : h('li', { class: 'empty muted' }, 'No number connected yet. Connect one below.'));
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  function row(n) {
    const rowError = errorLine();
    const saved = statusLine();
    const connected = n.connected !== false && !n.disconnected_at;
    const key = n.id.slice(0, 8);
    const save = async (patch, message) => {
      const out = await busy(null, rowError, () => api.patch(`/numbers/${n.id}`, patch));
      if (out) {
        upsert(out);
        const live = list.querySelector(`[data-id="${n.id}"] .status-line`);
        if (live) live.textContent = message;
      }
      return out;
    };

    const autoBox = checkbox('Import unknown contacts as leads', { checked: n.auto_import_contacts, id: `number-${key}-auto` });
    autoBox.input.dataset.action = 'auto-import';
    autoBox.input.disabled = !connected;
    autoBox.input.addEventListener('change', async () => {
      const wanted = autoBox.input.checked;
      const out = await save({ auto_import_contacts: wanted }, wanted ? 'Auto-import is on.' : 'Auto-import is off.');
      if (!out) autoBox.input.checked = !wanted;
    });
    const ownerIn = ownerSelect(ctx, `number-${key}-owner`, n.owner_member_id);
    ownerIn.disabled = !connected;
    ownerIn.addEventListener('change', () => save({ owner_member_id: ownerIn.value || null }, 'Owner saved.'));

    const reauth = n.needs_reauth
      ? h(
          'div',
          { class: 'notice needs-reauth', role: 'alert' },
          h('strong', {}, 'Meta rejected this number’s access token.'),
          ' Nothing can be sent from it until you paste a new one below.',
        )
      : null;
    const problems = healthProblems(n);
    const health = problems.length
      ? h(
          'div',
          { class: 'notice number-health', role: 'alert', 'aria-label': `Health warning for ${phone(n.display_phone_number)}` },
          h('strong', {}, `${problems.join('. ')}.`),
          ' Meta may limit or stop what this number sends; see WhatsApp Manager for the details.',
        )
      : null;
    const tokenIn = h('input', { type: 'password', id: `number-${key}-token`, maxlength: 4096, autocomplete: 'off', spellcheck: 'false' });
    const tokenSave = h('button', { type: 'submit', class: 'btn small' }, 'Replace token');
    const tokenForm = h('form', { class: 'inline-form', 'aria-label': `Replace the access token of ${phone(n.display_phone_number)}` }, field('New access token', tokenIn), tokenSave);
    tokenForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!tokenIn.value.trim()) {
        rowError.textContent = 'Paste the new access token first.';
        tokenIn.focus();
        return;
      }
      const value = tokenIn.value;
      tokenIn.value = '';
      await save({ access_token: value }, 'New access token saved.');
    });

    const disconnect = connected
      ? confirmButton('Disconnect', 'Disconnect it', async () => {
          const done = await busy(null, rowError, () => api.del(`/numbers/${n.id}`).then(() => true));
          if (done) upsert({ ...n, connected: false, disconnected_at: new Date().toISOString() });
        })
      : null;
    const ownerName = n.owner_member_id ? ctx.memberName(n.owner_member_id) : null;
    return h(
      'li',
      { class: ['settings-item number', !connected && 'disconnected', (n.needs_reauth || problems.length) && 'warn'], dataset: { id: n.id, pnid: n.phone_number_id } },
      h(
        'div',
        { class: 'item-main' },
        h(
          'div',
          { class: 'item-text' },
          h('div', { class: 'item-title' }, h('span', { class: 'number-display' }, phone(n.display_phone_number)), connected ? h('span', { class: 'chip state state-active' }, 'Connected') : h('span', { class: 'chip state state-deactivated' }, 'Disconnected'), n.needs_reauth ? h('span', { class: 'chip state state-failed' }, 'Needs a new token') : null),
          h(
            'dl',
            { class: 'facts small' },
            h('dt', {}, 'Phone number ID'), h('dd', {}, n.phone_number_id),
            n.waba_id ? [h('dt', {}, 'WABA ID'), h('dd', {}, n.waba_id)] : null,
            h('dt', {}, 'Access token'), h('dd', {}, n.access_token_set ? 'set (hidden)' : 'missing'),
            h('dt', {}, 'Quality rating'), h('dd', { class: 'number-quality' }, qualityText(n.quality_rating)),
            h('dt', {}, 'Messaging limit'), h('dd', {}, tierText(n.messaging_limit_tier)),
            h('dt', {}, 'Account status'), h('dd', {}, accountText(n.account_status)),
            ownerName ? [h('dt', {}, 'Owner'), h('dd', {}, ownerName)] : null,
            h('dt', {}, connected ? 'Connected' : 'Disconnected'), h('dd', {}, full(connected ? n.created_at : n.disconnected_at)),
          ),
        ),
        h('div', { class: 'item-actions' }, disconnect),
      ),
      reauth,
      health,
      connected ? h('div', { class: 'item-controls' }, autoBox.label, field('Owner', ownerIn), tokenForm) : h('p', { class: 'muted small' }, 'Webhooks for this number are journaled, not stored as chats, and nothing is sent from it. Connect it again with the form below.'),
      rowError,
      saved,
    );
  }

  // Meta's health reports (and a token Meta rejected) arrive live.
  const off = ctx.live.on((e) => {
    if (e.type === 'number.updated' && e.data && state.numbers.some((x) => x.id === e.data.id)) upsert(e.data);
    else if (e.type === 'resync') load();
  });

  load();
  return {
    destroy() {
      state.destroyed = true;
      off();
    },
  };
}

function ownerSelect(ctx, id, current) {
  const members = [...ctx.members.values()].filter((m) => m.status !== 'deactivated' || m.id === current);
  return h(
    'select',
    { id },
    h('option', { value: '' }, 'No owner'),
    members.map((m) => h('option', { value: m.id, selected: m.id === current }, m.name || m.email)),
  );
}

// Quick replies in the composer: "/" at the start of the box opens a searchable list of the
// content the caller sees (by shortcut or title). Enter (or a click) on a message item puts
// its text, variables filled in for this lead and member, into the box to be checked and
// sent; a page (or file) item is sent at once as `{"type":"content"}`.

import { api } from './api.js';
import { h, replace } from './dom.js';

/**
 * `{{lead.name}}`, `{{lead.phone}}`, `{{member.name}}`, `{{lead.custom.KEY}}` filled in, in one
 * pass (as the server does when it sends an item: a value put in is never read again; a
 * missing custom field is empty; other braces stay).
 */
export function fill(text, vars) {
  let out = '';
  let rest = text;
  for (;;) {
    const start = rest.indexOf('{{');
    if (start < 0) break;
    out += rest.slice(0, start);
    const after = rest.slice(start + 2);
    const end = after.indexOf('}}');
    if (end < 0) {
      out += rest.slice(start);
      rest = '';
      break;
    }
    const val = value(after.slice(0, end).trim(), vars);
    if (val === null) {
      out += '{{';
      rest = after;
    } else {
      out += val;
      rest = after.slice(end + 2);
    }
  }
  return out + rest;
}

function value(name, v) {
  if (name === 'lead.name') return v.leadName || '';
  if (name === 'lead.phone') return v.leadPhone ? `+${String(v.leadPhone).replace(/^\+/, '')}` : '';
  if (name === 'member.name') return v.memberName || '';
  if (name.startsWith('lead.custom.') && name.length > 'lead.custom.'.length) {
    const x = (v.custom || {})[name.slice('lead.custom.'.length)];
    if (x === undefined || x === null) return '';
    return typeof x === 'string' ? x : JSON.stringify(x);
  }
  return null;
}

const KIND = { message: 'Quick reply', page: 'Page', file: 'File' };

/**
 * Attaches the list to the composer's `input` (call before the composer's own keydown handler:
 * an Enter the list uses never sends the box). `view` is the chat view: `view.conv`,
 * `view.sendContent(item)`.
 */
export function quickReplies(ctx, view, input) {
  const list = h('ul', { class: 'quick-replies mention-picker', role: 'listbox', 'aria-label': 'Quick replies', hidden: true });
  let items = [];
  let active = 0;
  let seq = 0;
  let lead = null;

  const query = () => (input.value.startsWith('/') && !/\s/.test(input.value.slice(1).trimEnd()) ? input.value.slice(1).trim() : null);

  const close = () => {
    list.hidden = true;
    input.removeAttribute('aria-activedescendant');
    input.setAttribute('aria-expanded', 'false');
    items = [];
  };

  const draw = () => {
    if (!items.length) {
      replace(list, h('li', { class: 'muted small', role: 'presentation' }, 'No quick replies match'));
      return;
    }
    replace(
      list,
      items.map((c, i) => {
        const li = h(
          'li',
          { role: 'option', id: `qr-${c.id}`, 'aria-selected': String(i === active), class: i === active ? 'active' : null },
          h('strong', {}, c.title),
          c.shortcut ? h('span', { class: 'muted small' }, ` /${c.shortcut}`) : null,
          h('span', { class: 'muted small' }, ` · ${KIND[c.kind] || c.kind}`),
        );
        li.addEventListener('mousedown', (ev) => ev.preventDefault());
        li.addEventListener('click', () => pick(c));
        return li;
      }),
    );
    if (items[active]) input.setAttribute('aria-activedescendant', `qr-${items[active].id}`);
  };

  const refresh = async () => {
    const q = query();
    if (q === null) {
      close();
      return;
    }
    const mine = ++seq;
    let page;
    try {
      page = await api.get('/content', { q, limit: 20 });
    } catch {
      return;
    }
    if (mine !== seq || query() === null) return;
    items = page.content || [];
    active = 0;
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    draw();
  };

  const pick = async (c) => {
    close();
    if (c.kind === 'message') {
      if (!lead) {
        try {
          lead = await api.get(`/leads/${view.conv.lead_id}`);
        } catch {
          lead = null;
        }
      }
      const text = fill(c.body || '', {
        leadName: (lead && lead.name) || view.conv.lead_name || '',
        leadPhone: (lead && lead.phone) || view.conv.contact_phone || '',
        memberName: ctx.me.name || ctx.me.email || '',
        custom: (lead && lead.custom_fields) || {},
      });
      input.value = text;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.focus();
      input.setSelectionRange(text.length, text.length);
    } else {
      input.value = '';
      view.sendContent(c);
    }
  };

  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'quick-reply-list');
  list.id = 'quick-reply-list';
  input.addEventListener('input', () => refresh());
  input.addEventListener('blur', () => setTimeout(close, 150));
  input.addEventListener('keydown', (ev) => {
    if (list.hidden) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      if (!items.length) return;
      ev.preventDefault();
      active = (active + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      draw();
    } else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      if (items[active]) pick(items[active]);
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      close();
    }
  });
  return list;
}

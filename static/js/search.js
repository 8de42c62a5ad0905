// Search in messages and notes, and the caller's mentions, beside the conversation list.
//
// messageSearch(): as the inbox search box changes (2 characters or more), GET /search and
// show the hits under the box, each with its chat and a snippet in which the words of the
// query are highlighted (text nodes and <mark>, never HTML). Choosing one opens the chat and
// jumps to the message or note (paging older messages in until it is there).
//
// mentionsButton(): "Mentions" with the count of unread ones, kept live by mention.created;
// the list opens the chat at the note and marks the mention read.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { when } from './format.js';

/** `text` with every word starting with one of `words` wrapped in <mark>. */
export function highlighted(text, words) {
  const out = [];
  const re = /[\p{L}\p{N}]+/gu;
  let last = 0;
  for (const m of text.matchAll(re)) {
    const w = m[0].toLowerCase();
    if (words.some((q) => w.startsWith(q))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h('mark', {}, m[0]));
      last = m.index + m[0].length;
    }
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Opens conversation `conv` under `base` and brings item `id` (message or note) into view. */
export function jumpTo(base, conv, id) {
  location.hash = `${base}/${conv}`;
  if (!id) return;
  const until = Date.now() + 15000;
  const look = () => {
    const el = document.getElementById(`m-${id}`);
    if (el) {
      el.scrollIntoView({ block: 'center' });
      el.classList.add('flash');
      setTimeout(() => el.classList.remove('flash'), 2500);
      return;
    }
    // Not loaded yet: scroll the chat to its top, which pages older messages in.
    const scroller = document.querySelector('.chat .messages');
    if (scroller) scroller.scrollTop = 0;
    if (Date.now() < until) setTimeout(look, 200);
  };
  setTimeout(look, 100);
}

/** The message search results under `input`. Returns { el }. */
export function messageSearch(ctx, base, input) {
  const el = h('section', { class: 'search-hits', 'aria-label': 'Found in messages', hidden: true });
  if (!input) return { el };
  let seq = 0;
  let timer = null;
  const run = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    if ([...q].length < 2) {
      el.hidden = true;
      replace(el);
      return;
    }
    let page;
    try {
      page = await api.get('/search', { q, limit: 20 });
    } catch {
      page = { results: [] };
    }
    if (mine !== seq) return;
    const words = (q.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []);
    const hits = page.results.filter((r) => r.message_id);
    el.hidden = hits.length === 0;
    replace(
      el,
      h('h3', { class: 'small muted' }, 'In messages'),
      h(
        'ul',
        { class: 'hit-list' },
        hits.map((r) => {
          const a = h(
            'a',
            { href: `${base}/${r.conversation_id}`, class: ['hit', r.kind === 'note' && 'hit-note'] },
            h('span', { class: 'hit-head' }, h('strong', {}, r.lead_name), r.kind === 'note' ? h('span', { class: 'muted small' }, ' · note') : null, h('span', { class: 'muted small' }, ` · ${when(r.created_at)}`)),
            h('span', { class: 'hit-snippet' }, highlighted(r.snippet, words)),
          );
          a.addEventListener('click', (ev) => {
            ev.preventDefault();
            jumpTo(base, r.conversation_id, r.message_id);
          });
          return h('li', {}, a);
        }),
      ),
    );
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 300);
  });
  return { el };
}

/** "Mentions (n)" and the list of the caller's mentions. Returns { el, destroy }. */
export function mentionsButton(ctx, base) {
  const count = h('span', { class: 'badge', hidden: true });
  const button = h('button', { type: 'button', class: 'btn ghost small', 'aria-expanded': 'false', id: 'mentions-button' }, 'Mentions ', count);
  const panel = h('div', { class: 'mentions-panel', role: 'region', 'aria-label': 'Mentions', hidden: true });
  const el = h('div', { class: 'mentions' }, button, panel);

  const refresh = async () => {
    try {
      const page = await api.get('/mentions', { limit: 50 });
      const unread = page.mentions.filter((m) => !m.read_at).length;
      count.textContent = String(unread);
      count.hidden = unread === 0;
      button.setAttribute('aria-label', `Mentions, ${unread} unread`);
      replace(
        panel,
        page.mentions.length
          ? h(
              'ul',
              { class: 'hit-list' },
              page.mentions.map((m) => {
                const who = m.by && (m.by.name || m.by.email);
                const a = h('a', { href: `${base}/${m.conversation_id}`, class: ['hit', !m.read_at && 'unread'] }, h('span', { class: 'hit-head' }, h('strong', {}, `${who} in ${m.lead_name}`), h('span', { class: 'muted small' }, ` · ${when(m.created_at)}`), !m.read_at ? h('span', { class: 'muted small' }, ' · unread') : null), h('span', { class: 'hit-snippet' }, m.text));
                a.addEventListener('click', async (ev) => {
                  ev.preventDefault();
                  panel.hidden = true;
                  button.setAttribute('aria-expanded', 'false');
                  jumpTo(base, m.conversation_id, m.note_id);
                  if (!m.read_at) {
                    try {
                      await api.post(`/mentions/${m.id}/read`, {});
                    } catch {
                      /* shown unread until the next refresh */
                    }
                    refresh();
                  }
                });
                return h('li', {}, a);
              }),
            )
          : h('p', { class: 'muted small' }, 'Nobody mentioned you yet.'),
      );
    } catch {
      /* keep what is shown */
    }
  };
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) refresh();
  });
  const off = ctx.live.on((e) => {
    if (e.type === 'mention.created' || e.type === 'resync') refresh();
  });
  refresh();
  return { el, destroy: off };
}
